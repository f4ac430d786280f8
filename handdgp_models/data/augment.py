"""Photometric augmentation of float images (colour jitter, Gaussian blur), torch RNG driven."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..config import PhotometricConfig

__all__ = ["PhotometricConfig", "photometric"]


# ITU-R 601 luma weights, as torchvision's rgb_to_grayscale
_LUMA = np.array([0.2989, 0.587, 0.114])
_NUM_DRAWS = 6  # brightness, contrast, saturation, hue, blur?, sigma


def photometric(image: torch.Tensor, cfg: PhotometricConfig,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Colour jitter then optional blur of one ``(3, H, W)`` float image in [0, 1].

    The jitter has torchvision's semantics (``adjust_brightness``, ``adjust_contrast``,
    ``adjust_saturation``, ``adjust_hue`` in that order, each clamped to [0, 1]); it runs on
    one HWC float32 copy with OpenCV (a 3×3 colour matrix per pixel for contrast and
    saturation, HSV for hue), several times faster than the torch kernels on one image.
    Geometry is untouched. Random numbers come from ``generator`` (torch's default when
    None): six uniform draws per call. Returns a new contiguous ``(3, H, W)`` tensor of the
    input's dtype and device (computed in float32 on the CPU).
    """
    if image.ndim != 3 or image.shape[0] != 3 or not image.is_floating_point():
        raise ValueError(f"image: expected a float (3, H, W) tensor, got {tuple(image.shape)} "
                         f"{image.dtype}")
    # one call, the same values as six scalar draws
    u = torch.rand(_NUM_DRAWS, generator=generator).tolist()
    b = _between(1 - cfg.brightness, 1 + cfg.brightness, u[0])
    c = _between(1 - cfg.contrast, 1 + cfg.contrast, u[1])
    s = _between(1 - cfg.saturation, 1 + cfg.saturation, u[2])
    h = _between(-cfg.hue, cfg.hue, u[3])
    blur = u[4] < cfg.blur_prob
    sigma = _between(*cfg.blur_sigma, u[5])

    chw = image.detach().to("cpu", torch.float32).contiguous().numpy()
    # OpenCV's channel split/merge are ~5x faster than a strided torch/numpy transpose
    hwc = cv2.merge(list(chw))
    if b != 1.0:
        np.multiply(hwc, np.float32(b), out=hwc)
        _clamp01(hwc)
    if c != 1.0:
        mean = float(_LUMA @ cv2.mean(hwc)[:3])  # mean of the grey image
        hwc = _colour_matrix(hwc, np.hstack([np.eye(3) * c, np.full((3, 1), (1 - c) * mean)]))
    if s != 1.0:
        hwc = _colour_matrix(hwc, np.eye(3) * s + (1 - s) * np.tile(_LUMA, (3, 1)))
    if h != 0.0:
        hsv = cv2.cvtColor(hwc, cv2.COLOR_RGB2HSV)  # float input: H in degrees [0, 360)
        _shift_hue(hsv, 360.0 * h)
        hwc = _clamp01(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB))
    if blur:
        hwc = _clamp01(cv2.GaussianBlur(hwc, (0, 0), sigmaX=sigma,
                                        borderType=cv2.BORDER_REFLECT_101))
    out = np.empty_like(chw)
    cv2.split(hwc, list(out))  # writes into the three planes of ``out``
    return torch.from_numpy(out).to(image.device, image.dtype)


def _between(lo: float, hi: float, u: float) -> float:
    return lo + (hi - lo) * u


def _clamp01(img: np.ndarray) -> np.ndarray:
    """Clamp a float32 image to [0, 1] in place (two OpenCV thresholds: faster than np.clip)."""
    cv2.threshold(img, 1.0, 1.0, cv2.THRESH_TRUNC, dst=img)
    cv2.threshold(img, 0.0, 0.0, cv2.THRESH_TOZERO, dst=img)
    return img


def _colour_matrix(hwc: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``m[:, :3] @ rgb (+ m[:, 3])`` per pixel of an (H, W, 3) float32 image, clamped."""
    return _clamp01(cv2.transform(hwc, m.astype(np.float32)))


def _shift_hue(hsv: np.ndarray, degrees: float) -> None:
    """Add ``degrees`` (|degrees| ≤ 180) to the hue plane of a float HSV image, modulo 360,
    in place (on a contiguous copy of the plane: the strided channel is ~4x slower)."""
    hue = np.empty(hsv.shape[:2], dtype=np.float32)
    cv2.mixChannels([hsv], [hue], [0, 0])
    cv2.add(hue, degrees, dst=hue)
    if degrees > 0:
        cv2.subtract(hue, 360.0, dst=hue, mask=cv2.compare(hue, 360.0, cv2.CMP_GE))
    else:
        cv2.add(hue, 360.0, dst=hue, mask=cv2.compare(hue, 0.0, cv2.CMP_LT))
    cv2.mixChannels([hue], [hsv], [0, 0])
