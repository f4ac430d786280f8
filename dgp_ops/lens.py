"""Lens distortion of 2D points: OpenCV's pinhole and fisheye models on tensors.

``distort_points`` maps the pixels of an ideal pinhole camera ``K`` to the pixels where the lens
images the same rays (as ``cv2.projectPoints`` / ``cv2.fisheye.distortPoints`` do);
``undistort_points`` inverts it iteratively (as ``cv2.undistortPoints`` /
``cv2.fisheye.undistortPoints`` with ``P = K``). Both are batched, keep the input dtype and are
differentiable in the points, ``K`` and the coefficients.

Models and coefficient order (OpenCV's), for normalised coordinates ``(a, b) = (x/z, y/z)``:

- ``"pinhole"``: ``(k1, k2, p1, p2[, k3[, k4, k5, k6]])``, ``r² = a² + b²``,
  ``a' = a (1 + k1 r² + k2 r⁴ + k3 r⁶) / (1 + k4 r² + k5 r⁴ + k6 r⁶) + 2 p1 a b + p2 (r² + 2a²)``
  and ``b'`` likewise with ``p1 (r² + 2b²) + 2 p2 a b``.
- ``"fisheye"``: ``(k1, k2, k3, k4)``, ``θ = atan r``,
  ``θ_d = θ (1 + k1 θ² + k2 θ⁴ + k3 θ⁶ + k4 θ⁸)``, ``(a', b') = (θ_d / r) (a, b)``.

Pixels: ``u = fx a' + s b' + cx``, ``v = fy b' + cy`` with ``K = [[fx, s, cx], [0, fy, cy],
[0, 0, 1]]``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from . import _C
from ._validation import check_float_tensor

__all__ = [
    "LENS_MODELS",
    "UNDISTORT_ITERATIONS",
    "Distortion",
    "distort_normalised",
    "distort_points",
    "undistort_normalised",
    "undistort_points",
]

#: Lens models, as the kernels name them.
LENS_MODELS: tuple[str, ...] = _C.LENS_MODELS
#: Coefficient counts each model takes (OpenCV's).
COEFF_COUNTS: dict[str, tuple[int, ...]] = {"pinhole": (4, 5, 8), "fisheye": (4,)}
#: Newton iterations of :func:`undistort_points`. For float64 and lenses that are one-to-one
#: over the points' field of view (every real calibration), the undistorted points reproduce
#: their distorted inputs to below 1e-9 pixels (float32: 1e-3 pixels), see the tests.
UNDISTORT_ITERATIONS: int = 20
# Radius (normalised) below which the fisheye map is the identity (as in the kernels).
_FISHEYE_MIN_R = 1e-8


class Distortion(NamedTuple):
    """A lens: OpenCV coefficients and their model.

    Attributes:
        coeffs: ``(B, D)`` or ``(D,)`` (shared by the batch), floating. ``"pinhole"``: D = 4,
            5 or 8 (``k1, k2, p1, p2[, k3[, k4, k5, k6]]``); ``"fisheye"``: D = 4.
        model: ``"pinhole"`` or ``"fisheye"``.
    """

    coeffs: torch.Tensor
    model: str = "pinhole"


def check_distortion(where: str, dist: Distortion, B: int, like: torch.Tensor) -> torch.Tensor:
    """The coefficients of ``dist`` as ``(B, D)`` with the dtype and device of ``like``, after
    checking the model and the coefficient count (ValueError/TypeError naming ``dist``)."""
    if not isinstance(dist, Distortion):
        raise TypeError(f"{where}: dist must be a dgp_ops.lens.Distortion(coeffs, model), got "
                        f"{type(dist).__name__}")
    if dist.model not in LENS_MODELS:
        raise ValueError(f"{where}: dist.model must be 'pinhole' or 'fisheye', got "
                         f"{dist.model!r}")
    check_float_tensor(where, "dist.coeffs", dist.coeffs)
    c = dist.coeffs
    if c.dim() == 1:
        c = c.expand(B, c.shape[0])
    counts = COEFF_COUNTS[dist.model]
    if c.dim() != 2 or c.shape[0] != B or c.shape[1] not in counts:
        raise ValueError(f"{where}: dist.coeffs must be (B, D) or (D,) with B = {B} and D in "
                         f"{counts} for model {dist.model!r}, got {tuple(dist.coeffs.shape)}")
    if c.device != like.device:
        raise ValueError(f"{where}: dist.coeffs is on {c.device} but K is on {like.device}")
    return c.to(like.dtype)


def _pinhole(xy: torch.Tensor, c: torch.Tensor):
    """Pinhole lens map of ``(B, N, 2)`` normalised points with ``(B, 8)`` coefficients:
    distorted points and the Jacobian ``(B, N, 2, 2)``."""
    k1, k2, p1, p2, k3, k4, k5, k6 = (t[:, None] for t in c.unbind(-1))
    a, b = xy.unbind(-1)
    r2 = a * a + b * b
    num = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    den = 1 + r2 * (k4 + r2 * (k5 + r2 * k6))
    radial = num / den
    drad = ((k1 + r2 * (2 * k2 + 3 * k3 * r2)) - radial * (k4 + r2 * (2 * k5 + 3 * k6 * r2))) / den
    ab = a * b
    ad = a * radial + 2 * p1 * ab + p2 * (r2 + 2 * a * a)
    bd = b * radial + p1 * (r2 + 2 * b * b) + 2 * p2 * ab
    j01 = 2 * ab * drad + 2 * p1 * a + 2 * p2 * b
    j00 = radial + 2 * a * a * drad + 2 * p1 * b + 6 * p2 * a
    j11 = radial + 2 * b * b * drad + 6 * p1 * b + 2 * p2 * a
    J = torch.stack([torch.stack([j00, j01], -1), torch.stack([j01, j11], -1)], -2)
    return torch.stack([ad, bd], -1), J


def _fisheye_theta(theta: torch.Tensor, c: torch.Tensor):
    """``θ_d(θ)`` and ``dθ_d/dθ`` for ``(B, N)`` angles and ``(B, 4)`` coefficients."""
    k1, k2, k3, k4 = (t[:, None] for t in c.unbind(-1))
    t2 = theta * theta
    thd = theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))
    dthd = 1 + t2 * (3 * k1 + t2 * (5 * k2 + t2 * (7 * k3 + t2 * 9 * k4)))
    return thd, dthd


def _full_coeffs(c: torch.Tensor, model: str) -> torch.Tensor:
    return torch.nn.functional.pad(c, (0, 8 - c.shape[-1])) if model == "pinhole" else c


def distort_normalised(xy: torch.Tensor, coeffs: torch.Tensor, model: str = "pinhole"
                       ) -> torch.Tensor:
    """The lens map of normalised image coordinates.

    Args:
        xy: ``(B, N, 2)`` ideal normalised coordinates ``(x/z, y/z)``.
        coeffs: ``(B, D)`` coefficients (see the module docstring), dtype of ``xy``.
        model: ``"pinhole"`` or ``"fisheye"``.

    Returns:
        ``(B, N, 2)`` distorted normalised coordinates.
    """
    c = _full_coeffs(coeffs, model)
    if model == "pinhole":
        return _pinhole(xy, c)[0]
    r = torch.linalg.vector_norm(xy, dim=-1)
    small = r <= _FISHEYE_MIN_R
    r_safe = torch.where(small, torch.ones_like(r), r)
    thd, _ = _fisheye_theta(torch.atan(r_safe), c)
    scale = torch.where(small, torch.ones_like(r), thd / r_safe)
    return xy * scale[..., None]


def undistort_normalised(xy_d: torch.Tensor, coeffs: torch.Tensor, model: str = "pinhole",
                         iterations: int = UNDISTORT_ITERATIONS) -> torch.Tensor:
    """Inverse of :func:`distort_normalised`, by Newton's method (a fixed number of steps: no
    synchronisation). Gradients come from one differentiable Newton step at the solution (the
    implicit-function derivative).

    Pinhole: 2D Newton on ``distort(x) = x_d`` from ``x = x_d``. Fisheye: 1D Newton on
    ``θ_d(θ) = |x_d|`` (as OpenCV), then ``x = x_d tan θ / |x_d|``.

    Args:
        xy_d: ``(B, N, 2)`` distorted normalised coordinates.
        coeffs, model: as in :func:`distort_normalised`.
        iterations: Newton steps.

    Returns:
        ``(B, N, 2)`` ideal normalised coordinates.
    """
    c = _full_coeffs(coeffs, model)
    if model == "pinhole":
        def step(x):
            xd, J = _pinhole(x, c)
            r = xd - xy_d
            det = J[..., 0, 0] * J[..., 1, 1] - J[..., 0, 1] * J[..., 1, 0]
            det = torch.where(det.abs() > 1e-12, det, torch.ones_like(det))
            dx = torch.stack([J[..., 1, 1] * r[..., 0] - J[..., 0, 1] * r[..., 1],
                              J[..., 0, 0] * r[..., 1] - J[..., 1, 0] * r[..., 0]], -1)
            return x - dx / det[..., None]

        with torch.no_grad():
            x = xy_d.detach().clone()
            for _ in range(iterations):
                x = step(x)
        return step(x.detach())
    thd_target = torch.linalg.vector_norm(xy_d, dim=-1)
    small = thd_target <= _FISHEYE_MIN_R
    target = torch.where(small, torch.ones_like(thd_target), thd_target)

    def step1(theta):
        thd, dthd = _fisheye_theta(theta, c)
        dthd = torch.where(dthd.abs() > 1e-12, dthd, torch.ones_like(dthd))
        return (theta - (thd - target) / dthd).clamp(0.0, torch.pi / 2 - 1e-9)

    with torch.no_grad():
        theta = target.detach().clone().clamp(max=torch.pi / 2 - 1e-9)
        for _ in range(iterations):
            theta = step1(theta)
    theta = step1(theta.detach())
    scale = torch.where(small, torch.ones_like(target), torch.tan(theta) / target)
    return xy_d * scale[..., None]


def _check_points(where: str, points: torch.Tensor, K: torch.Tensor, dist: Distortion):
    check_float_tensor(where, "points", points)
    check_float_tensor(where, "K", K)
    if K.dim() != 3 or K.shape[1:] != (3, 3):
        raise ValueError(f"{where}: K must be (B, 3, 3), got shape {tuple(K.shape)}")
    B = K.shape[0]
    if points.dim() != 3 or points.shape[0] != B or points.shape[2] != 2:
        raise ValueError(f"{where}: points must be (B, N, 2) with B = {B}, got "
                         f"{tuple(points.shape)}")
    if points.dtype != K.dtype or points.device != K.device:
        raise TypeError(f"{where}: points ({points.dtype}, {points.device}) must match K "
                        f"({K.dtype}, {K.device})")
    return check_distortion(where, dist, B, K)


def _to_normalised(points: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    fx, s, cx = K[:, 0, 0, None], K[:, 0, 1, None], K[:, 0, 2, None]
    fy, cy = K[:, 1, 1, None], K[:, 1, 2, None]
    b = (points[..., 1] - cy) / fy
    a = (points[..., 0] - cx - s * b) / fx
    return torch.stack([a, b], -1)


def _moved(points: torch.Tensor, xy: torch.Tensor, xy_new: torch.Tensor, K: torch.Tensor
           ) -> torch.Tensor:
    """``points`` moved by the pixel offset of ``xy -> xy_new`` (normalised): a lens with zero
    coefficients returns ``points`` bit for bit."""
    fx, s, fy = K[:, 0, 0, None], K[:, 0, 1, None], K[:, 1, 1, None]
    d = xy_new - xy
    return points + torch.stack([fx * d[..., 0] + s * d[..., 1], fy * d[..., 1]], -1)


def distort_points(points: torch.Tensor, K: torch.Tensor, dist: Distortion) -> torch.Tensor:
    """Ideal pinhole pixels of camera ``K`` → the pixels the lens images them at.

    Args:
        points: ``(B, N, 2)`` pixels ``(u, v)`` of the undistorted camera ``K``.
        K: ``(B, 3, 3)`` ``[[fx, s, cx], [0, fy, cy], [0, 0, 1]]`` (pixels).
        dist: :class:`Distortion`.

    Returns:
        ``(B, N, 2)`` distorted pixels (``cv2.projectPoints`` of the rays ``K⁻¹ [u, v, 1]``).

    Example:
        >>> K = torch.tensor([[[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]])
        >>> d = Distortion(torch.tensor([-0.2, 0.05, 0.0, 0.0]))
        >>> distort_points(torch.tensor([[[320.0, 240.0], [600.0, 400.0]]]), K, d).shape
        torch.Size([1, 2, 2])
    """
    c = _check_points("distort_points", points, K, dist)
    xy = _to_normalised(points, K)
    return _moved(points, xy, distort_normalised(xy, c, dist.model), K)


def undistort_points(points: torch.Tensor, K: torch.Tensor, dist: Distortion,
                     iterations: int = UNDISTORT_ITERATIONS) -> torch.Tensor:
    """Distorted pixels → ideal pinhole pixels of camera ``K`` (``cv2.undistortPoints(points,
    K, dist, P=K)``), by :func:`undistort_normalised`; see :data:`UNDISTORT_ITERATIONS` for the
    tolerance.

    Args:
        points: ``(B, N, 2)`` pixels of the distorted image.
        K, dist: as in :func:`distort_points`.
        iterations: Newton steps.

    Returns:
        ``(B, N, 2)`` undistorted pixels.
    """
    c = _check_points("undistort_points", points, K, dist)
    xy = _to_normalised(points, K)
    return _moved(points, xy, undistort_normalised(xy, c, dist.model, iterations), K)
