"""Training/evaluation input pipeline: crop box → jitter → rectify → rotate → photometric.

One dataset sample (the sample contract of the loaders) becomes a dict of torch tensors in
the rectified camera of a ``S × S`` crop. The geometry is exact: a single homography ``H``
maps original pixels to output pixels, ``K`` is the output camera and ``R`` rotates
original-camera points into it, so ``project(K, R X) = H · project(K_orig, X)``.

- Rectification (``dgp_ops.rectify.rectification``) gives ``H0, K0, R0``.
- Scale jitter: in ``"crop"`` mode the box side is jittered (the crop's zoom follows it);
  in ``"perspective"``/``"affine"`` mode the image scale is fixed by the canonical focal, so
  the same jitter is a zoom ``Z`` about the principal point, i.e. the output focal becomes
  ``z · f_c`` (``K`` reports it exactly).
- In-plane rotation by ``θ`` about the optical axis of the output camera: a 3D rotation
  ``Rz`` of the camera frame, which is the homography ``K Rz K⁻¹`` in pixels. It is folded
  into ``H`` and ``R``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .augment import PhotometricConfig, photometric

__all__ = ["HandInputPipeline", "PipelineConfig"]

_MODES = ("perspective", "affine", "crop")
_PADDING = ("zeros", "border", "reflection")


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of :class:`HandInputPipeline`.

    Attributes:
        out_size: side ``S`` of the output image in pixels.
        focal: canonical focal length ``f_c`` in pixels (HandDGP: 1000 FreiHAND, 500
            HO3D-v2). Hands at depth ``d`` span about ``f_c · 0.2 m / d`` pixels, so close
            cameras (synthetic data at 0.3 m) need a smaller ``f_c`` (~300) to fit.
        mode: ``"perspective"`` (virtual rotation onto the box centre), ``"affine"`` (the
            HandDGP release's scale + translation) or ``"crop"`` (no rectification).
        crop_scale: box enlargement of the ``"crop"`` mode (side ``crop_scale · box side``).
        train: draw the random augmentation below; False gives the deterministic
            evaluation input (box as given, no rotation, no photometric change).
        two_views: return two augmented views of the sample plus their relation.
        shift: centre jitter, uniform in ``[-shift, shift] · side`` per axis.
        scale_jitter: box side factor uniform in ``[1 - x, 1 + x]``.
        rotation_deg: in-plane rotation uniform in ``[-r, r]`` degrees (shared by two views).
        photometric: colour jitter and blur ranges, or None for none.
        padding_mode: warp padding, ``"zeros"``, ``"border"`` or ``"reflection"``.
    """

    out_size: int = 224
    focal: float = 1000.0
    mode: str = "perspective"
    crop_scale: float = 1.3
    train: bool = True
    two_views: bool = False
    shift: float = 0.1
    scale_jitter: float = 0.2
    rotation_deg: float = 45.0
    photometric: PhotometricConfig | None = field(default_factory=PhotometricConfig)
    padding_mode: str = "zeros"

    def __post_init__(self) -> None:
        if isinstance(self.out_size, bool) or not isinstance(self.out_size, int) \
                or self.out_size <= 0:
            raise ValueError(f"out_size: must be a positive int, got {self.out_size!r}")
        for name in ("focal", "crop_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be positive, got {getattr(self, name)!r}")
        if self.mode not in _MODES:
            raise ValueError(f"mode: expected one of {_MODES}, got {self.mode!r}")
        if self.padding_mode not in _PADDING:
            raise ValueError(f"padding_mode: expected one of {_PADDING}, "
                             f"got {self.padding_mode!r}")
        if not 0 <= self.shift < 1:
            raise ValueError(f"shift: must be in [0, 1), got {self.shift!r}")
        if not 0 <= self.scale_jitter < 1:
            raise ValueError(f"scale_jitter: must be in [0, 1), got {self.scale_jitter!r}")
        if not 0 <= self.rotation_deg <= 180:
            raise ValueError(f"rotation_deg: must be in [0, 180], got {self.rotation_deg!r}")


def _uniform(lo: float, hi: float, generator: torch.Generator | None) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=generator, dtype=torch.float64))


def _rot_z(theta: float) -> torch.Tensor:
    c, s = math.cos(theta), math.sin(theta)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def _zoom(z: float, cx: float, cy: float) -> torch.Tensor:
    """Pixel scaling by ``z`` about ``(cx, cy)``."""
    return torch.tensor([[z, 0.0, (1 - z) * cx], [0.0, z, (1 - z) * cy], [0.0, 0.0, 1.0]],
                        dtype=torch.float64)


def _rectify_and_warp(image: torch.Tensor, mask: torch.Tensor | None, K: torch.Tensor,
                      center: torch.Tensor, side: float, zoom: float, theta: float,
                      cfg: PipelineConfig):
    """The one place that calls the ``dgp_ops`` geometry.

    Args:
        image: (3, H, W) uint8 (e.g. a channels-last view of the decoded image: warped in
            place, no full-size float copy); mask: (H, W) float32 0/1 or None.
        K: (3, 3) float64 original intrinsics; center: (2,) float64 box centre (pixels);
        side: box side (pixels); zoom: extra scale about the principal point; theta: in-plane
        rotation (radians) about the output optical axis.

    Returns:
        ``(image (3, S, S) float32 in [0, 1], mask (S, S) or None, H, K_out, R)`` with
        float64 (3, 3) matrices.
    """
    from dgp_ops.rectify import rectification
    from dgp_ops.warp import warp_perspective

    S = cfg.out_size
    side_t = torch.tensor([side], dtype=torch.float64)
    rect = rectification(K[None], center[None], side_t, focal=float(cfg.focal), out_size=S,
                         scale=cfg.crop_scale, mode=cfg.mode)
    H0, K0, R0 = rect.H[0], rect.K[0], rect.R[0]
    K1 = _zoom(zoom, float(K0[0, 2]), float(K0[1, 2])) @ K0
    Rz = _rot_z(theta)
    H = K1 @ Rz @ torch.linalg.inv(K0) @ H0
    H = H / H[2, 2]
    R = Rz @ R0
    H32 = H.to(torch.float32)[None]
    # uint8 in, uint8 out (rounded as OpenCV does); only the small output becomes float.
    out = warp_perspective(image[None], H[None], (S, S), padding_mode=cfg.padding_mode)[0]
    out = out.float() / 255.0
    out_mask = None
    if mask is not None:
        out_mask = warp_perspective(mask[None, None], H32, (S, S), mode="nearest")[0, 0]
    return out, out_mask, H, K1, R


def _as_tensor(sample: dict, key: str, shape: tuple[int, ...] | None) -> torch.Tensor:
    value = torch.as_tensor(np.asarray(sample[key]), dtype=torch.float64)
    if shape is not None and tuple(value.shape) != shape:
        raise ValueError(f"sample[{key!r}]: expected shape {shape}, got {tuple(value.shape)}")
    return value


def _apply_h(H: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    hom = pts @ H[:, :2].T + H[:, 2]
    return hom[:, :2] / hom[:, 2:]


class HandInputPipeline:
    """Turn one dataset sample into the network input (see :class:`PipelineConfig`).

    ``pipeline(sample, generator=None)`` returns a dict of tensors:
    ``image`` (3, S, S) float32 in [0, 1]; ``K`` (3, 3) output intrinsics; ``R`` (3, 3)
    rotation original camera → output camera; ``H`` (3, 3) original pixels → output pixels;
    ``K_orig`` (3, 3); ``box`` (3,) the (jittered) box used; and when the sample has them
    ``joints2d`` (21, 2) output pixels, ``joints3d`` (21, 3) / ``verts3d`` (V, 3) metres in
    the output camera frame, ``joints3d_orig`` (21, 3) original camera, ``root`` (3,) =
    ``joints3d[0]`` (or the rotated ``root3d`` of samples without joints), ``mask`` (S, S)
    uint8; ``index`` and ``name`` pass through. All floats are float32.

    With ``two_views`` the result is ``{"view1": ..., "view2": ..., "T12": (3, 3), "R12":
    (3, 3)}``: ``T12`` maps view-1 output pixels to view-2 output pixels and ``R12`` maps
    view-1 camera points to view-2 camera points. Both views share one rotation angle;
    shift, scale and photometric changes are drawn per view.
    """

    def __init__(self, config: PipelineConfig | None = None) -> None:
        if config is not None and not isinstance(config, PipelineConfig):
            raise TypeError(f"config: expected a PipelineConfig, got {type(config).__name__}")
        self.config = config or PipelineConfig()

    def __call__(self, sample: dict, generator: torch.Generator | None = None) -> dict:
        if not isinstance(sample, dict):
            raise TypeError(f"sample: expected a dict, got {type(sample).__name__}")
        for key in ("image", "K", "box"):
            if key not in sample:
                raise ValueError(f"sample: missing key {key!r}")
        cfg = self.config
        theta = 0.0
        if cfg.train and cfg.rotation_deg > 0:
            theta = math.radians(_uniform(-cfg.rotation_deg, cfg.rotation_deg, generator))
        if not cfg.two_views:
            _, out = self._view(sample, theta, generator)
            return out
        (H1, R1), v1 = self._view(sample, theta, generator)
        (H2, R2), v2 = self._view(sample, theta, generator)
        T12 = H2 @ torch.linalg.inv(H1)
        return {"view1": v1, "view2": v2, "T12": (T12 / T12[2, 2]).float(),
                "R12": (R2 @ R1.T).float()}

    def _view(self, sample: dict, theta: float, generator: torch.Generator | None):
        cfg = self.config
        image = np.asarray(sample["image"])
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"sample['image']: expected uint8 (H, W, 3), got {image.dtype} "
                             f"{image.shape}")
        K = _as_tensor(sample, "K", (3, 3))
        box = _as_tensor(sample, "box", (3,))
        center, side = box[:2].clone(), float(box[2])
        if not side > 0:
            raise ValueError(f"sample['box']: side must be positive, got {side}")
        factor = 1.0
        if cfg.train:
            center += torch.tensor([_uniform(-cfg.shift, cfg.shift, generator),
                                    _uniform(-cfg.shift, cfg.shift, generator)],
                                   dtype=torch.float64) * side
            factor = _uniform(1 - cfg.scale_jitter, 1 + cfg.scale_jitter, generator)
        zoom = 1.0 if cfg.mode == "crop" else 1.0 / factor
        img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        mask = None
        if sample.get("mask") is not None:
            mask = torch.from_numpy(np.asarray(sample["mask"])).float()
        out_img, out_mask, H, K_out, R = _rectify_and_warp(
            img, mask, K, center, side * factor, zoom, theta, cfg)
        if cfg.train and cfg.photometric is not None:
            out_img = photometric(out_img, cfg.photometric, generator)
        out = {"image": out_img.contiguous(), "K": K_out.float(), "R": R.float(),
               "H": H.float(), "K_orig": K.float(),
               "box": torch.tensor([center[0], center[1], side * factor], dtype=torch.float32)}
        if out_mask is not None:
            out["mask"] = (out_mask > 0.5).to(torch.uint8)
        if "joints2d" in sample:
            out["joints2d"] = _apply_h(H, _as_tensor(sample, "joints2d", (21, 2))).float()
        if "joints3d" in sample:
            j = _as_tensor(sample, "joints3d", (21, 3))
            out["joints3d_orig"] = j.float()
            out["joints3d"] = (j @ R.T).float()
            out["root"] = out["joints3d"][0].clone()
        elif "root3d" in sample:
            out["root"] = (R @ _as_tensor(sample, "root3d", (3,))).float()
        if "verts3d" in sample:
            out["verts3d"] = (_as_tensor(sample, "verts3d", None) @ R.T).float()
        for key in ("index", "name"):
            if key in sample:
                out[key] = sample[key]
        return (H, R), out
