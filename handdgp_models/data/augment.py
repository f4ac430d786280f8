"""Photometric augmentation of float images (colour jitter, Gaussian blur), torch RNG driven."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

__all__ = ["PhotometricConfig", "photometric"]


@dataclass(frozen=True)
class PhotometricConfig:
    """Ranges of the per-view photometric augmentation.

    brightness, contrast, saturation: factors drawn uniformly in ``[1 - x, 1 + x]``.
    hue: shift drawn uniformly in ``[-hue, hue]`` (fraction of the colour wheel, ≤ 0.5).
    blur_prob: probability of a Gaussian blur with sigma uniform in ``blur_sigma`` (pixels).
    """

    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    hue: float = 0.05
    blur_prob: float = 0.3
    blur_sigma: tuple[float, float] = (0.1, 1.5)

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "saturation"):
            v = getattr(self, name)
            if not 0 <= v < 1:
                raise ValueError(f"{name}: must be in [0, 1), got {v!r}")
        if not 0 <= self.hue <= 0.5:
            raise ValueError(f"hue: must be in [0, 0.5], got {self.hue!r}")
        if not 0 <= self.blur_prob <= 1:
            raise ValueError(f"blur_prob: must be in [0, 1], got {self.blur_prob!r}")
        lo, hi = self.blur_sigma
        if not 0 < lo <= hi:
            raise ValueError(f"blur_sigma: need 0 < low <= high, got {self.blur_sigma!r}")


def _uniform(lo: float, hi: float, generator: torch.Generator | None) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=generator))


def photometric(image: torch.Tensor, cfg: PhotometricConfig,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Colour jitter then optional blur of one ``(3, H, W)`` float image in [0, 1].

    Geometry is untouched. Random numbers come from ``generator`` (torch's default when None).
    """
    if image.ndim != 3 or image.shape[0] != 3 or not image.is_floating_point():
        raise ValueError(f"image: expected a float (3, H, W) tensor, got {tuple(image.shape)} "
                         f"{image.dtype}")
    b = _uniform(1 - cfg.brightness, 1 + cfg.brightness, generator)
    c = _uniform(1 - cfg.contrast, 1 + cfg.contrast, generator)
    s = _uniform(1 - cfg.saturation, 1 + cfg.saturation, generator)
    h = _uniform(-cfg.hue, cfg.hue, generator)
    blur = float(torch.rand((), generator=generator)) < cfg.blur_prob
    sigma = _uniform(*cfg.blur_sigma, generator)
    out = TF.adjust_brightness(image, b)
    out = TF.adjust_contrast(out, c)
    out = TF.adjust_saturation(out, s)
    if h == 0.0 and not blur:
        return out.clamp_(0.0, 1.0)
    # hue and blur through OpenCV on the HWC view: ~10x faster than the torch versions
    hwc = np.ascontiguousarray(out.clamp(0.0, 1.0).permute(1, 2, 0).numpy(), dtype=np.float32)
    if h != 0.0:
        hsv = cv2.cvtColor(hwc, cv2.COLOR_RGB2HSV)  # float input: H in degrees [0, 360)
        hsv[..., 0] = np.mod(hsv[..., 0] + 360.0 * h, 360.0)
        hwc = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if blur:
        hwc = cv2.GaussianBlur(hwc, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT_101)
    return torch.from_numpy(np.ascontiguousarray(hwc)).permute(2, 0, 1).clamp_(0.0, 1.0)
