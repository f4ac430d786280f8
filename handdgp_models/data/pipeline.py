"""Training/evaluation input pipeline: crop box → jitter → rectify → rotate → photometric.

One dataset sample (the sample contract of the loaders) becomes a dict of torch tensors in
the rectified camera of a ``S × S`` crop. The geometry is exact: a single homography ``H``
maps original pixels to output pixels, ``K`` is the output camera and ``R`` rotates
original-camera points into it, so ``project(K, R X) = H · project(K_orig, X)``.

- Rectification (``dgp_ops.rectify.rectification``) gives ``H0, K0, R0``.
- Shift/scale jitter moves and scales the crop box before rectification (``jitter="crop"``,
  the paper: in ``"perspective"``/``"affine"`` mode the image scale stays fixed by the
  canonical focal, so the network always sees ``f_c``), or, with ``jitter="zoom"``, is also
  applied as a zoom ``Z`` about the principal point, so the output focal becomes ``z · f_c``
  (``K`` reports it exactly).
- ``crop_first``: the image is cut to the square crop (``crop_scale`` × the box) before it
  is warped, so everything outside the crop is black, as in the release.
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
_JITTERS = ("crop", "zoom")


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of :class:`HandInputPipeline`.

    Attributes:
        out_size: side ``S`` of the output image in pixels (a run config takes it from
            ``model.input_size``).
        focal: canonical focal length ``f_c`` in pixels (HandDGP: 1000 FreiHAND, 500
            HO3D-v2; a run config takes it from ``model.focal``). Hands at depth ``d`` span
            about ``f_c · 0.2 m / d`` pixels.
        mode: ``"affine"`` (the paper's scale + principal-point map ``K_c K⁻¹``),
            ``"perspective"`` (this project's virtual rotation onto the box centre) or
            ``"crop"`` (no rectification).
        crop_scale: the crop is a square of side ``crop_scale · box side`` (1.3 in the paper).
        crop_first: crop the image to that square before rectifying, so pixels outside it are
            black (the release's order: crop, then rectify).
        jitter: how the training shift/scale acts: ``"crop"`` moves and scales the crop box
            *before* rectification, so the network always sees the canonical intrinsics (the
            paper); ``"zoom"`` (this project's option) also zooms the rectified image about
            its principal point by the scale factor, so the output focal becomes
            ``f_c / factor`` (``K`` reports it exactly). In ``"crop"`` mode both behave alike.
        train: draw the random augmentation below; False gives the deterministic
            evaluation input (box as given, no rotation, no photometric change).
        two_views: return two augmented views of the sample plus their relation.
        shift: centre jitter, uniform in ``[-shift, shift] · side`` per axis.
        scale_jitter: box side factor uniform in ``[1 - x, 1 + x]``.
        rotation_deg: in-plane rotation uniform in ``[-r, r]`` degrees (shared by two views).
        photometric: colour jitter and blur ranges, or None for none.
        padding_mode: warp padding, ``"zeros"``, ``"border"`` or ``"reflection"``.
        root_index: the root keypoint of ``joints3d`` (a run config takes it from the
            template model: the hand's wrist, the body's pelvis).
    """

    out_size: int = field(default=224, metadata={"derived": True})
    focal: float = field(default=1000.0, metadata={"derived": True})
    mode: str = "affine"
    crop_scale: float = 1.3
    crop_first: bool = True
    jitter: str = "crop"
    train: bool = field(default=True, metadata={"derived": True})
    two_views: bool = False
    shift: float = 0.1
    scale_jitter: float = 0.2
    rotation_deg: float = 45.0
    photometric: PhotometricConfig | None = field(default_factory=PhotometricConfig)
    padding_mode: str = "zeros"
    root_index: int = field(default=0, metadata={"derived": True})

    def __post_init__(self) -> None:
        if isinstance(self.out_size, bool) or not isinstance(self.out_size, int) \
                or self.out_size <= 0:
            raise ValueError(f"out_size: must be a positive int, got {self.out_size!r}")
        for name in ("focal", "crop_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be positive, got {getattr(self, name)!r}")
        if self.mode not in _MODES:
            raise ValueError(f"mode: expected one of {_MODES}, got {self.mode!r}")
        if self.jitter not in _JITTERS:
            raise ValueError(f"jitter: expected one of {_JITTERS}, got {self.jitter!r}")
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


def _crop_window(center: torch.Tensor, side: float, scale: float, h: int,
                 w: int) -> tuple[int, int, int, int]:
    """Pixel rows/columns ``(x0, y0, x1, y1)`` (exclusive ends) whose centres lie in the square
    of side ``scale · side`` about ``center``, clipped to a ``h × w`` image."""
    half = 0.5 * scale * side
    cu, cv = float(center[0]), float(center[1])
    x0 = min(max(math.ceil(cu - half), 0), w)
    y0 = min(max(math.ceil(cv - half), 0), h)
    x1 = max(min(math.floor(cu + half) + 1, w), x0)
    y1 = max(min(math.floor(cv + half) + 1, h), y0)
    return x0, y0, x1, y1


def _rectify_and_warp(image: torch.Tensor, mask: torch.Tensor | None, K: torch.Tensor,
                      center: torch.Tensor, side: float, zoom: float, theta: float,
                      cfg: PipelineConfig, origin: tuple[int, int] = (0, 0)):
    """The one place that calls the ``dgp_ops`` geometry.

    Args:
        image: (3, H, W) uint8 (e.g. a channels-last view of the decoded image: warped in
            place, no full-size float copy); mask: (H, W) uint8 0/1 or None.
        K: (3, 3) float64 original intrinsics; center: (2,) float64 box centre (pixels);
        side: box side (pixels); zoom: extra scale about the principal point; theta: in-plane
        rotation (radians) about the output optical axis; origin: original-pixel position
        ``(x0, y0)`` of ``image``'s top-left pixel (a crop of the original image).

    Returns:
        ``(image (3, S, S) float32 in [0, 1], mask (S, S) or None, H, K_out, R)`` with
        float64 (3, 3) matrices.
    """
    import dgp_ops  # noqa: F401  (registers the ops)
    from dgp_ops.rectify import rectification

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
    shift = torch.tensor([[1.0, 0.0, origin[0]], [0.0, 1.0, origin[1]], [0.0, 0.0, 1.0]],
                         dtype=torch.float64)
    H_src = (H @ shift)[None]  # maps the pixels of ``image`` (a crop) to the output
    # uint8 in, uint8 out (rounded as OpenCV does); only the small output becomes float. H is
    # built here from checked inputs, so the warp's value checks (a determinant per call) are off.
    from dgp_ops import warp_perspective

    out = warp_perspective(image[None], H_src, (S, S), "bilinear", cfg.padding_mode,
                           check_values=False)[0].float() / 255.0
    out_mask = None
    if mask is not None:
        out_mask = warp_perspective(mask[None, None], H_src, (S, S), "nearest", "zeros",
                                    check_values=False)[0, 0]
    return out, out_mask, H, K1, R


def _as_tensor(sample: dict, key: str, shape: tuple[int | None, ...] | None) -> torch.Tensor:
    """``sample[key]`` as float64; ``shape`` entries of None accept any size."""
    value = torch.as_tensor(np.asarray(sample[key]), dtype=torch.float64)
    if shape is not None and (value.ndim != len(shape) or any(
            s is not None and s != d for s, d in zip(shape, value.shape, strict=True))):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"sample[{key!r}]: expected shape {want}, got {tuple(value.shape)}")
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
    ``joints2d`` (K, 2) output pixels, ``joints3d`` (K, 3) / ``verts3d`` (V, 3) metres in
    the output camera frame (K keypoints of the template: 21 for the hand, 29 for the body),
    ``joints3d_orig`` (K, 3) original camera, ``root`` (3,) = ``joints3d[root_index]`` (or the
    rotated ``root3d`` of samples without joints), ``mask`` (S, S) uint8; ``eval_joints3d``
    (a benchmark's own joints, original camera), ``index`` and ``name`` pass through. All
    floats are float32.

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
        zoom = 1.0 if cfg.mode == "crop" or cfg.jitter == "crop" else 1.0 / factor
        mask_np = None if sample.get("mask") is None else np.asarray(sample["mask"])
        x0 = y0 = 0
        if cfg.crop_first:
            x0, y0, x1, y1 = _crop_window(center, side * factor, cfg.crop_scale,
                                          image.shape[0], image.shape[1])
            if x1 == x0 or y1 == y0:  # the crop misses the image: all black
                x1, y1 = x0 + 1, y0 + 1
                image = np.zeros((1, 1, 3), dtype=np.uint8)
            else:
                image = image[y0:y1, x0:x1]
            mask_np = None if mask_np is None else mask_np[y0:y1, x0:x1]
        img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)  # uint8, HWC memory
        mask = None
        if mask_np is not None:
            mask = torch.from_numpy(np.ascontiguousarray(mask_np, dtype=np.uint8))
        out_img, out_mask, H, K_out, R = _rectify_and_warp(
            img, mask, K, center, side * factor, zoom, theta, cfg, (x0, y0))
        if cfg.train and cfg.photometric is not None:
            out_img = photometric(out_img, cfg.photometric, generator)
        out = {"image": out_img.contiguous(), "K": K_out.float(), "R": R.float(),
               "H": H.float(), "K_orig": K.float(),
               "box": torch.tensor([center[0], center[1], side * factor], dtype=torch.float32)}
        if out_mask is not None:
            out["mask"] = (out_mask > 0.5).to(torch.uint8)
        if "joints2d" in sample:
            out["joints2d"] = _apply_h(H, _as_tensor(sample, "joints2d", (None, 2))).float()
        if "joints3d" in sample:
            j = _as_tensor(sample, "joints3d", (None, 3))
            if "joints2d" in out and len(out["joints2d"]) != len(j):
                raise ValueError(f"sample: {len(out['joints2d'])} joints2d but {len(j)} joints3d")
            if not 0 <= cfg.root_index < len(j):
                raise ValueError(f"root_index: {cfg.root_index} is not one of the sample's "
                                 f"{len(j)} keypoints")
            out["joints3d_orig"] = j.float()
            out["joints3d"] = (j @ R.T).float()
            out["root"] = out["joints3d"][cfg.root_index].clone()
        elif "root3d" in sample:
            out["root"] = (R @ _as_tensor(sample, "root3d", (3,))).float()
        if "verts3d" in sample:
            out["verts3d"] = (_as_tensor(sample, "verts3d", None) @ R.T).float()
        if "eval_joints3d" in sample:
            out["eval_joints3d"] = _as_tensor(sample, "eval_joints3d", (None, 3)).float()
        for key in ("index", "name"):
            if key in sample:
                out[key] = sample[key]
        return (H, R), out
