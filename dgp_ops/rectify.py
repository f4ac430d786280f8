"""Canonical-camera rectification: batched, differentiable tensor geometry.

A crop box (centre, side in original pixels) and the original intrinsics ``K`` define a
homography ``H`` from original pixels to the pixels of a ``S × S`` rectified image seen by a
canonical camera ``K_c`` (focal ``f_c``, principal point ``(S/2, S/2)``), and the rotation
``R`` from the original camera frame to the rectified camera frame. Modes:

- ``"perspective"``: a virtual camera rotation ``R`` (the minimal one turning the crop
  centre's viewing ray onto the optical axis), ``H = K_c R K⁻¹``. The crop centre lands on
  the principal point; camera-space predictions go back with ``Rᵀ``.
- ``"affine"``: the HandDGP release's map ``H = K_c K_crop⁻¹`` applied to the crop, i.e.
  ``H = K_c K⁻¹`` from the original image (scale + translation for zero skew), ``R = I``.
  The original principal point lands at the centre, so off-centre boxes are not centred.
- ``"crop"``: no rectification: ``H`` is the crop's scale + translation, ``K = K_crop``,
  ``R = I``.

Conventions: OpenCV cameras, pixel centres at integers, ``H`` maps source to output pixels.
The crop box centre maps to ``(S/2, S/2)``, the canonical principal point.

Distorted cameras: with ``distortion`` (:class:`dgp_ops.lens.Distortion`, OpenCV's pinhole or
fisheye coefficients) the crop box is given in the distorted image; its centre is undistorted
(:func:`dgp_ops.lens.undistort_points`) before the geometry above, which then maps the
camera's *ideal* pinhole pixels, and :func:`rectify_images` samples the distorted image
directly (:func:`dgp_ops.warp_perspective_distorted`). The rectified camera ``K_c`` stays an
undistorted pinhole and ``(H, K_c, R)`` stay exact for DGP.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ._validation import (
    MIN_REL_DET,
    check_float_tensor,
    has_values,
    invertible,
    items,
    require_items,
)
from .distort import warp_perspective_distorted
from .lens import Distortion, check_distortion, undistort_points
from .warp import warp_perspective

__all__ = [
    "CANONICAL_FOCAL",
    "Rectification",
    "RECTIFICATION_MODES",
    "canonical_intrinsics",
    "crop_intrinsics",
    "rectification",
    "transform_points2d",
    "to_rectified",
    "from_rectified",
    "rectify_images",
]

RECTIFICATION_MODES = ("perspective", "affine", "crop")

# Default focal length of the canonical camera, in pixels (HandDGP's FreiHAND setting).
CANONICAL_FOCAL: float = 1000.0


class Rectification(NamedTuple):
    """Result of :func:`rectification`.

    Attributes:
        H: ``(B, 3, 3)`` original pixels → rectified pixels.
        K: ``(B, 3, 3)`` intrinsics of the rectified image's camera (pixels).
        R: ``(B, 3, 3)`` rotation taking original-camera points to rectified-camera points.
    """

    H: torch.Tensor
    K: torch.Tensor
    R: torch.Tensor


def _check_box(
    where: str, K: torch.Tensor, center: torch.Tensor, side: torch.Tensor, check_values: bool
) -> None:
    check_float_tensor(where, "K", K)
    check_float_tensor(where, "center", center)
    check_float_tensor(where, "side", side)
    if K.dim() != 3 or K.shape[1:] != (3, 3):
        raise ValueError(f"{where}: K must be (B, 3, 3), got shape {tuple(K.shape)}")
    B = K.shape[0]
    if center.shape != (B, 2):
        raise ValueError(
            f"{where}: center must be (B, 2) with B = {B}, got shape {tuple(center.shape)}"
        )
    if side.shape != (B,):
        raise ValueError(f"{where}: side must be (B,) with B = {B}, got shape {tuple(side.shape)}")
    for name, t in (("center", center), ("side", side)):
        if t.dtype != K.dtype:
            raise TypeError(f"{where}: {name} must have the dtype of K ({K.dtype}), got {t.dtype}")
        if t.device != K.device:
            raise ValueError(f"{where}: {name} is on {t.device} but K is on {K.device}")
    if check_values and has_values(K, center, side):
        _check_box_values(where, K, center, side)


def _check_box_values(where: str, K: torch.Tensor, center: torch.Tensor,
                      side: torch.Tensor) -> None:
    """Raise ValueError naming the argument for values the geometry cannot use (without
    synchronising: see :func:`dgp_ops._validation.require_items`)."""
    with torch.no_grad():
        require_items(
            torch.isfinite(K).flatten(1).all(dim=1),
            lambda bad: f"{where}: K has non-finite entries (NaN or Inf) in {items(bad)}",
        )
        require_items(
            invertible(K),
            lambda bad: f"{where}: K is not invertible (|det(K / max|K|)| <= {MIN_REL_DET}) in "
            f"{items(bad)}",
        )
        require_items(
            torch.isfinite(center).all(dim=1),
            lambda bad: f"{where}: center has non-finite entries in {items(bad)}",
        )
        require_items(
            torch.isfinite(side) & (side > 0),
            lambda bad: f"{where}: side must be finite and positive; it is not in {items(bad)}",
        )


def _check_rays_in_front(where: str, rays: torch.Tensor, check_values: bool) -> None:
    """The crop centre's viewing ray must point in front of the camera (z > 0)."""
    if not (check_values and has_values(rays)):
        return
    with torch.no_grad():
        require_items(
            rays[:, 2] > 0,
            lambda bad: f"{where}: center: the viewing ray K^-1 [u, v, 1] of the crop centre must "
            f"point in front of the camera (z > 0); it does not in {items(bad)}",
        )


def _check_positive_number(name: str, value: object) -> float:
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or not value > 0):
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return float(value)


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _focal_tensor(
    focal: float | torch.Tensor, B: int, like: torch.Tensor, check_values: bool
) -> torch.Tensor:
    """Canonical focal length as a ``(B,)`` tensor (scalar or per-item input)."""
    if isinstance(focal, torch.Tensor):
        if focal.dim() == 0:
            focal = focal.expand(B)
        if focal.shape != (B,):
            raise ValueError(
                f"focal must be a scalar or (B,) with B = {B}, got {tuple(focal.shape)}"
            )
        if not focal.is_floating_point():
            raise TypeError(f"focal must be a floating tensor, got {focal.dtype}")
        if check_values and has_values(focal):
            require_items(
                torch.isfinite(focal) & (focal > 0),
                lambda bad: f"focal must be finite and positive; it is not in {items(bad)}",
            )
        return focal.to(dtype=like.dtype, device=like.device)
    _check_positive_number("focal", focal)
    return torch.full((B,), float(focal), dtype=like.dtype, device=like.device)


def _intrinsics(
    f: torch.Tensor, cx: torch.Tensor | float, cy: torch.Tensor | float
) -> torch.Tensor:
    """``(B, 3, 3)`` ``[[f, 0, cx], [0, f, cy], [0, 0, 1]]`` from ``(B,)`` focal lengths."""
    zero, one = torch.zeros_like(f), torch.ones_like(f)
    cx = cx if isinstance(cx, torch.Tensor) else torch.full_like(f, cx)
    cy = cy if isinstance(cy, torch.Tensor) else torch.full_like(f, cy)
    rows = [torch.stack([f, zero, cx], -1), torch.stack([zero, f, cy], -1)]
    rows.append(torch.stack([zero, zero, one], -1))
    return torch.stack(rows, dim=-2)


def canonical_intrinsics(
    focal: float = CANONICAL_FOCAL,
    size: int = 224,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Intrinsics of the canonical camera: ``[[f, 0, S/2], [0, f, S/2], [0, 0, 1]]``.

    Args:
        focal: focal length ``f`` in pixels (HandDGP: 1000 FreiHAND, 500 HO3D-v2, 400 H3.6M).
        size: side ``S`` of the square rectified image in pixels.

    Returns:
        ``(3, 3)`` tensor.
    """
    _check_positive_int("size", size)
    _check_positive_number("focal", focal)
    c = size / 2.0
    return torch.tensor(
        [[float(focal), 0.0, c], [0.0, float(focal), c], [0.0, 0.0, 1.0]],
        dtype=dtype,
        device=device,
    )


def _crop_matrix(center: torch.Tensor, side: torch.Tensor, out_size: int, scale: float):
    """``(B, 3, 3)`` map from original pixels to the pixels of the resized square crop."""
    a = out_size / (scale * side)
    c = out_size / 2.0
    return _intrinsics(a, c - a * center[:, 0], c - a * center[:, 1])


def crop_intrinsics(
    K: torch.Tensor,
    center: torch.Tensor,
    side: torch.Tensor,
    out_size: int,
    scale: float = 1.3,
    *,
    check_values: bool = True,
) -> torch.Tensor:
    """Intrinsics of a square crop resized to ``out_size × out_size``.

    The crop has side ``scale · side`` and is centred at ``center``; its centre maps to pixel
    ``(S/2, S/2)`` of the output and lengths scale by ``S / (scale · side)``.

    Args:
        K: ``(B, 3, 3)`` original intrinsics (pixels).
        center: ``(B, 2)`` box centres ``(u, v)`` in original pixels.
        side: ``(B,)`` box sides in original pixels (positive).
        out_size: output side ``S`` in pixels.
        scale: enlargement of the box before cropping.
        check_values: reject non-finite ``K`` or ``center``, a ``K`` that is not invertible
            and non-positive ``side`` (ValueError; never a synchronisation, see
            :func:`dgp_ops.warp_perspective`).

    Returns:
        ``(B, 3, 3)`` ``K_crop = A K`` with ``A`` the crop's scale + translation.
    """
    _check_box("crop_intrinsics", K, center, side, check_values)
    _check_positive_int("out_size", out_size)
    _check_positive_number("scale", scale)
    return _crop_matrix(center, side, out_size, scale) @ K


def _rotation_to_z(rays: torch.Tensor) -> torch.Tensor:
    """Minimal rotations ``(B, 3, 3)`` taking directions ``(B, 3)`` (z > 0) onto ``+z``.

    Rodrigues with axis ``r × e_z``: ``R = I + [v]× + [v]×² / (1 + cos)``; ``cos = r_z > 0``
    for rays in front of the camera, so the division is safe.
    """
    r = rays / torch.linalg.vector_norm(rays, dim=-1, keepdim=True)
    x, y, z = r.unbind(-1)
    zero = torch.zeros_like(x)
    # v = r × e_z = (y, -x, 0)
    vx = torch.stack(
        [
            torch.stack([zero, zero, -x], -1),
            torch.stack([zero, zero, -y], -1),
            torch.stack([x, y, zero], -1),
        ],
        dim=-2,
    )
    eye = torch.eye(3, dtype=r.dtype, device=r.device).expand_as(vx)
    return eye + vx + (vx @ vx) / (1.0 + z)[:, None, None]


def rectification(
    K: torch.Tensor,
    center: torch.Tensor,
    side: torch.Tensor,
    *,
    focal: float | torch.Tensor = CANONICAL_FOCAL,
    out_size: int = 224,
    scale: float = 1.3,
    mode: str = "perspective",
    distortion: Distortion | None = None,
    check_values: bool = True,
) -> Rectification:
    """Homography, intrinsics and rotation of the rectified view of a crop box.

    Args:
        K: ``(B, 3, 3)`` original intrinsics (pixels).
        center: ``(B, 2)`` box centres ``(u, v)`` in original pixels.
        side: ``(B,)`` box sides in original pixels (used by ``mode="crop"``; the other
            modes fix the scale by the canonical focal length).
        focal: canonical focal length in pixels, a number or a ``(B,)`` tensor.
        out_size: side ``S`` of the rectified image in pixels.
        scale: crop enlargement (``mode="crop"``).
        mode: ``"perspective"``, ``"affine"`` or ``"crop"`` (see the module docstring).
        distortion: the original camera's lens (``None``: an ideal pinhole, the default);
            ``center`` is then a point of the distorted image and ``H`` maps the camera's
            ideal pixels (see the module docstring).
        check_values: as in :func:`crop_intrinsics`, plus a crop centre behind the camera and
            a non-positive per-item ``focal``.

    Returns:
        :class:`Rectification` ``(H, K, R)``, each ``(B, 3, 3)``.
    """
    _check_box("rectification", K, center, side, check_values)
    if distortion is not None:
        check_distortion("rectification", distortion, K.shape[0], K)
        center = undistort_points(center[:, None], K, distortion)[:, 0]
    _check_positive_int("out_size", out_size)
    if mode not in RECTIFICATION_MODES:
        raise ValueError(f"mode must be one of {RECTIFICATION_MODES}, got {mode!r}")
    B = K.shape[0]
    eye = torch.eye(3, dtype=K.dtype, device=K.device).expand(B, 3, 3)
    if mode == "crop":
        _check_positive_number("scale", scale)
        A = _crop_matrix(center, side, out_size, scale)
        return Rectification(A, A @ K, eye.clone())
    f = _focal_tensor(focal, B, K, check_values)
    Kc = _intrinsics(f, out_size / 2.0, out_size / 2.0)
    # inv_ex: no error check, which would read the status back from a GPU (K's values are
    # checked above, without synchronising).
    Kinv = torch.linalg.inv_ex(K).inverse
    if mode == "affine":
        return Rectification(Kc @ Kinv, Kc, eye.clone())
    ones = torch.ones_like(center[:, :1])
    rays = (Kinv @ torch.cat([center, ones], dim=-1)[..., None])[..., 0]
    _check_rays_in_front("rectification", rays, check_values)
    R = _rotation_to_z(rays)
    return Rectification(Kc @ R @ Kinv, Kc, R)


def transform_points2d(H: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply homographies to 2D points.

    Args:
        H: ``(B, 3, 3)``.
        points: ``(B, N, 2)`` pixel coordinates ``(u, v)``.

    Returns:
        ``(B, N, 2)`` ``dehomogenise(H [u, v, 1]ᵀ)``.
    """
    check_float_tensor("transform_points2d", "H", H)
    check_float_tensor("transform_points2d", "points", points)
    if H.dim() != 3 or H.shape[1:] != (3, 3):
        raise ValueError(f"H must be (B, 3, 3), got shape {tuple(H.shape)}")
    if points.dim() != 3 or points.shape[-1] != 2 or points.shape[0] != H.shape[0]:
        raise ValueError(
            f"points must be (B, N, 2) with B = {H.shape[0]}, got {tuple(points.shape)}"
        )
    if points.dtype != H.dtype or points.device != H.device:
        raise TypeError(
            f"points ({points.dtype}, {points.device}) must match H ({H.dtype}, {H.device})"
        )
    hom = points @ H[:, :, :2].transpose(1, 2) + H[:, None, :, 2]
    return hom[..., :2] / hom[..., 2:]


def _check_rotation_points(where: str, R: torch.Tensor, X: torch.Tensor) -> None:
    check_float_tensor(where, "R", R)
    check_float_tensor(where, "X", X)
    if R.dim() != 3 or R.shape[1:] != (3, 3):
        raise ValueError(f"R must be (B, 3, 3), got shape {tuple(R.shape)}")
    if X.dim() != 3 or X.shape[-1] != 3 or X.shape[0] != R.shape[0]:
        raise ValueError(f"X must be (B, N, 3) with B = {R.shape[0]}, got {tuple(X.shape)}")
    if X.dtype != R.dtype or X.device != R.device:
        raise TypeError(f"X ({X.dtype}, {X.device}) must match R ({R.dtype}, {R.device})")


def to_rectified(R: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Original-camera points ``(B, N, 3)`` (metres) → rectified-camera points ``R X``."""
    _check_rotation_points("to_rectified", R, X)
    return X @ R.transpose(1, 2)


def from_rectified(R: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Rectified-camera points ``(B, N, 3)`` (metres) → original-camera points ``Rᵀ X``."""
    _check_rotation_points("from_rectified", R, X)
    return X @ R


def rectify_images(
    images: torch.Tensor,
    K: torch.Tensor,
    center: torch.Tensor,
    side: torch.Tensor,
    *,
    focal: float | torch.Tensor = CANONICAL_FOCAL,
    out_size: int = 224,
    scale: float = 1.3,
    mode: str = "perspective",
    padding_mode: str = "zeros",
    distortion: Distortion | None = None,
    check_values: bool = True,
) -> tuple[torch.Tensor, Rectification]:
    """Crop and rectify full-size images in one warp.

    Args:
        images: ``(B, C, H, W)`` float32/float64, same dtype and device as ``K``.
        K, center, side, focal, out_size, scale, mode: as in :func:`rectification`.
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"`` (see
            :func:`dgp_ops.warp_perspective`).
        distortion: the lens of the cameras that took ``images`` (``None``: ideal pinholes).
            The distorted images are sampled directly into the rectified views, in one pass
            (:func:`dgp_ops.warp_perspective_distorted`).
        check_values: as in :func:`rectification`.

    Returns:
        ``(crops, rect)``: ``(B, C, S, S)`` rectified images (bilinear) and the
        :class:`Rectification` that produced them.
    """
    check_float_tensor("rectify_images", "images", images)
    if images.dim() != 4 or images.shape[0] != K.shape[0]:
        raise ValueError(
            f"images must be (B, C, H, W) with B = K.shape[0], got shape {tuple(images.shape)}"
        )
    if images.dtype != K.dtype or images.device != K.device:
        raise TypeError(
            f"images ({images.dtype}, {images.device}) must match K ({K.dtype}, {K.device})"
        )
    rect = rectification(K, center, side, focal=focal, out_size=out_size, scale=scale, mode=mode,
                         distortion=distortion, check_values=check_values)
    if distortion is None:
        crops = warp_perspective(images, rect.H, (out_size, out_size), padding_mode=padding_mode,
                                 check_values=check_values)
    else:
        crops = warp_perspective_distorted(images, rect.H, K, distortion, (out_size, out_size),
                                           padding_mode=padding_mode, check_values=check_values)
    return crops, rect
