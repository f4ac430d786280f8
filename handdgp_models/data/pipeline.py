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
- Mirroring (a sample's ``mirror``: a left hand shown to a right-hand model): the world is
  mirrored, ``X ↦ M X`` with ``M = diag(-1, 1, 1)`` in the original camera, and the output
  image is flipped about its vertical centre line ``u = S/2``, ``F = [[-1, 0, S], [0, 1, 0],
  [0, 0, 1]]`` (the warp fills ``S + 1`` columns, reversed: an exact copy, no second
  resampling). Then ``H ← F H``,
  ``K ← F K M`` and ``R ← M R M``, so ``project(K, R (M X)) = H · project(K_orig, X)``
  holds exactly. In the ``perspective`` and ``affine`` modes the canonical camera is symmetric
  about its principal point ``(S/2, S/2)``, so ``K`` is unchanged; a prediction ``Y`` of the
  mirrored world goes back as ``M Y``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..config import PipelineConfig
from .augment import photometric

__all__ = ["InputPipeline", "PipelineConfig"]

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


#: The mirror ``M = diag(-1, 1, 1)`` of camera space (x ↦ -x).
MIRROR = torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))


def _flip(size: int) -> torch.Tensor:
    """The pixel map ``u ↦ S - u`` of an ``S``-wide image (its vertical centre line fixed)."""
    return torch.tensor([[-1.0, 0.0, float(size)], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
                        dtype=torch.float64)


def _rectify_and_warp(image: torch.Tensor, mask: torch.Tensor | None, K: torch.Tensor,
                      center: torch.Tensor, side: float, zoom: float, theta: float,
                      pipe: InputPipeline, origin: tuple[int, int] = (0, 0),
                      mirror: bool = False, lens=None):
    """The one place that calls the ``dgp_ops`` geometry.

    Args:
        image: (3, H, W) uint8 (e.g. a channels-last view of the decoded image: warped in
            place, no full-size float copy); mask: (H, W) uint8 0/1 or None.
        K: (3, 3) float64 original intrinsics; center: (2,) float64 box centre (pixels);
        side: box side (pixels); zoom: extra scale about the principal point; theta: in-plane
        rotation (radians) about the output optical axis; pipe: the pipeline (output size,
        canonical focal, settings); origin: original-pixel position ``(x0, y0)`` of
        ``image``'s top-left pixel (a crop of the original image); mirror: show the mirrored
        world (see the module docstring); lens: the camera's ``dgp_ops.lens.Distortion``
        (``center`` is then a point of the distorted image and ``H`` maps ideal pixels), or
        None for an ideal pinhole.

    Returns:
        ``(image (3, S, S) float32 in [0, 1], mask (S, S) or None, H, K_out, R)`` with
        float64 (3, 3) matrices.
    """
    import dgp_ops  # noqa: F401  (registers the ops)
    from dgp_ops.rectify import rectification

    S, cfg = pipe.out_size, pipe.config
    side_t = torch.tensor([side], dtype=torch.float64)
    rect = rectification(K[None], center[None], side_t, focal=pipe.focal, out_size=S,
                         scale=cfg.crop_scale, mode=cfg.mode, distortion=lens)
    H0, K0, R0 = rect.H[0], rect.K[0], rect.R[0]
    K1 = _zoom(zoom, float(K0[0, 2]), float(K0[1, 2])) @ K0
    Rz = _rot_z(theta)
    H = K1 @ Rz @ torch.linalg.inv(K0) @ H0
    R = Rz @ R0
    H = H / H[2, 2]
    shift = torch.tensor([[1.0, 0.0, origin[0]], [0.0, 1.0, origin[1]], [0.0, 0.0, 1.0]],
                         dtype=torch.float64)
    H_src = (H @ shift)[None]  # maps the pixels of ``image`` (a crop) to the output
    # uint8 in, uint8 out (rounded as OpenCV does); only the small output becomes float. H is
    # built here from checked inputs, so the warp's value checks (a determinant per call) are off.
    # A mirrored view is warped unmirrored into S + 1 columns, whose reversal is exactly the
    # flip u -> S - u (a copy, no second resampling).
    from dgp_ops import warp_perspective, warp_perspective_distorted

    width = S + 1 if mirror else S
    if lens is None:
        def warp(x, interp, padding):
            return warp_perspective(x, H_src, (S, width), interp, padding, check_values=False)
    else:  # the camera of ``image`` (a crop) is K with its principal point moved by ``origin``
        K_src = (torch.linalg.inv(shift) @ K)[None]

        def warp(x, interp, padding):
            return warp_perspective_distorted(x, H_src, K_src, lens, (S, width), interp, padding,
                                              check_values=False)
    out = warp(image[None], "bilinear", cfg.padding_mode)[0]
    out_mask = None
    if mask is not None:
        out_mask = warp(mask[None, None], "nearest", "zeros")[0, 0]
    if mirror:
        F = _flip(S)
        H, K1, R = F @ H, F @ K1 @ MIRROR, MIRROR @ R @ MIRROR
        H = H / H[2, 2]
        out = out.flip(-1)[..., :S]
        out_mask = None if out_mask is None else out_mask.flip(-1)[..., :S]
    return out.float() / 255.0, out_mask, H, K1, R


def _as_tensor(sample: dict, key: str, shape: tuple[int | None, ...] | None) -> torch.Tensor:
    """``sample[key]`` as float64; ``shape`` entries of None accept any size."""
    value = torch.as_tensor(np.asarray(sample[key]), dtype=torch.float64)
    if shape is not None and (value.ndim != len(shape) or any(
            s is not None and s != d for s, d in zip(shape, value.shape, strict=True))):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"sample[{key!r}]: expected shape {want}, got {tuple(value.shape)}")
    return value


#: Coefficients in a pipeline output's ``dist`` (OpenCV's longest pinhole vector; a fisheye's
#: four come first), zero-padded.
DIST_COEFFS = 8


def _lens(sample: dict):
    """``(dist (8,) float64, model index, dgp_ops Distortion or None)`` of a sample: its
    ``dist`` coefficients and ``dist_model`` (``"pinhole"`` when absent); no lens for a pinhole
    without coefficients or with all of them zero."""
    from dgp_ops.lens import LENS_MODELS, Distortion

    model = str(sample.get("dist_model", "pinhole"))
    if model not in LENS_MODELS:
        raise ValueError(f"sample['dist_model']: expected one of {list(LENS_MODELS)}, got "
                         f"{model!r}")
    dist = torch.zeros(DIST_COEFFS, dtype=torch.float64)
    if sample.get("dist") is None:  # a fisheye without coefficients is the equidistant lens
        lens = Distortion(dist[:4], model) if model == "fisheye" else None
        return dist, LENS_MODELS.index(model), lens
    coeffs = _as_tensor(sample, "dist", (None,))
    if not torch.isfinite(coeffs).all() or len(coeffs) > DIST_COEFFS:
        raise ValueError(f"sample['dist']: expected at most {DIST_COEFFS} finite coefficients, "
                         f"got {coeffs.tolist()}")
    dist[:len(coeffs)] = coeffs
    if model == "pinhole" and not bool(coeffs.any()):
        return dist, 0, None
    n = 4 if model == "fisheye" else (len(coeffs) if len(coeffs) in (4, 5, 8) else DIST_COEFFS)
    return dist, LENS_MODELS.index(model), Distortion(dist[:max(n, 4)], model)


def _apply_h(H: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    hom = pts @ H[:, :2].T + H[:, 2]
    return hom[:, :2] / hom[:, 2:]


class InputPipeline:
    """Turn one dataset sample into the network input (see :class:`PipelineConfig`).

    Args:
        config: the ``input`` section's settings.
        out_size: side ``S`` of the output image in pixels (the network's input size).
        focal: canonical focal length ``f_c`` in pixels (the network's ``model.focal``).
            Hands at depth ``d`` span about ``f_c · 0.2 m / d`` pixels.
        train: draw the random augmentation; False gives the deterministic evaluation input
            (box as given, no rotation, no photometric change, one view).
        root_index: the root keypoint of ``joints3d`` (the template's: the hand's wrist, the
            body's pelvis).

    ``pipeline(sample, generator=None)`` returns a dict of tensors:
    ``image`` (3, S, S) float32 in [0, 1]; ``K`` (3, 3) output intrinsics; ``R`` (3, 3)
    rotation original camera → output camera; ``H`` (3, 3) original pixels → output pixels;
    ``K_orig`` (3, 3); ``box`` (3,) the (jittered) box used; ``dist`` (8,) the sample's lens
    coefficients (zeros without distortion) and ``dist_model`` (0 pinhole, 1 fisheye; a
    distorted sample's ``box`` and ``joints2d`` are in the distorted image and ``H`` maps its
    camera's ideal pixels); and when the sample has them
    ``joints2d`` (K, 2) output pixels, ``joints3d`` (K, 3) / ``verts3d`` (V, 3) metres in
    the output camera frame (K keypoints of the template: 21 for the hand, 29 for the body),
    ``joints3d_orig`` (K, 3) original camera, ``root`` (3,) = ``joints3d[root_index]`` (or the
    rotated ``root3d`` of samples without joints), ``mask`` (S, S) uint8; ``eval_joints3d``
    (a benchmark's own joints, original camera), ``index`` and ``name`` pass through. All
    floats are float32. A sample with ``mirror`` True is shown mirrored (x ↦ -x in the
    original camera; see the module docstring): its 3D points are mirrored too, so a left
    hand becomes a right hand and every relation above still holds.

    With ``two_views`` (training only) the result is ``{"view1": ..., "view2": ..., "T12":
    (3, 3), "R12": (3, 3)}``: ``T12`` maps view-1 output pixels to view-2 output pixels and
    ``R12`` maps view-1 camera points to view-2 camera points. Both views share one rotation
    angle; shift, scale and photometric changes are drawn per view.
    """

    def __init__(self, config: PipelineConfig, *, out_size: int, focal: float,
                 train: bool = True, root_index: int = 0) -> None:
        if not isinstance(config, PipelineConfig):
            raise TypeError(f"config: expected a PipelineConfig, got {type(config).__name__}")
        if isinstance(out_size, bool) or not isinstance(out_size, int) or out_size <= 0:
            raise ValueError(f"out_size: must be a positive int, got {out_size!r}")
        if not focal > 0:
            raise ValueError(f"focal: must be positive, got {focal!r}")
        self.config = config
        self.out_size, self.focal = out_size, float(focal)
        self.train, self.root_index = bool(train), int(root_index)
        self.two_views = config.two_views and self.train

    def __call__(self, sample: dict, generator: torch.Generator | None = None) -> dict:
        if not isinstance(sample, dict):
            raise TypeError(f"sample: expected a dict, got {type(sample).__name__}")
        for key in ("image", "K", "box"):
            if key not in sample:
                raise ValueError(f"sample: missing key {key!r}")
        cfg = self.config
        theta = 0.0
        if self.train and cfg.rotation_deg > 0:
            theta = math.radians(_uniform(-cfg.rotation_deg, cfg.rotation_deg, generator))
        if not self.two_views:
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
        if self.train:
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
        mirror = bool(sample.get("mirror", False))
        dist, dist_model, lens = _lens(sample)
        if not cfg.undistort:
            lens = None
        out_img, out_mask, H, K_out, R = _rectify_and_warp(
            img, mask, K, center, side * factor, zoom, theta, self, (x0, y0), mirror, lens)
        M = MIRROR if mirror else torch.eye(3, dtype=torch.float64)  # 3D points of the world
        if self.train and cfg.photometric is not None:
            out_img = photometric(out_img, cfg.photometric, generator)
        out = {"image": out_img.contiguous(), "K": K_out.float(), "R": R.float(),
               "H": H.float(), "K_orig": K.float(),
               "box": torch.tensor([center[0], center[1], side * factor], dtype=torch.float32),
               "dist": dist.float(), "dist_model": torch.tensor(dist_model)}
        if out_mask is not None:
            out["mask"] = (out_mask > 0.5).to(torch.uint8)
        if "joints2d" in sample:
            uv = _as_tensor(sample, "joints2d", (None, 2))
            if lens is not None:  # distorted pixels -> the camera's ideal pixels
                from dgp_ops.lens import undistort_points

                uv = undistort_points(uv[None], K[None], lens)[0]
            out["joints2d"] = _apply_h(H, uv).float()
        if "joints3d" in sample:
            j = _as_tensor(sample, "joints3d", (None, 3)) @ M
            if "joints2d" in out and len(out["joints2d"]) != len(j):
                raise ValueError(f"sample: {len(out['joints2d'])} joints2d but {len(j)} joints3d")
            if not 0 <= self.root_index < len(j):
                raise ValueError(f"root_index: {self.root_index} is not one of the sample's "
                                 f"{len(j)} keypoints")
            out["joints3d_orig"] = j.float()
            out["joints3d"] = (j @ R.T).float()
            out["root"] = out["joints3d"][self.root_index].clone()
        elif "root3d" in sample:
            out["root"] = (R @ M @ _as_tensor(sample, "root3d", (3,))).float()
        if "verts3d" in sample:
            out["verts3d"] = (_as_tensor(sample, "verts3d", None) @ M @ R.T).float()
        if "eval_joints3d" in sample:
            out["eval_joints3d"] = (_as_tensor(sample, "eval_joints3d", (None, 3)) @ M).float()
        for key in ("index", "name"):
            if key in sample:
                out[key] = sample[key]
        return (H, R), out
