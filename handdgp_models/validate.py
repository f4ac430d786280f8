"""Checks of values where they enter the project: intrinsics, crop boxes, 3D points.

Each function returns the checked value as a numpy array or raises :class:`ValueError` whose
message starts with ``name`` (an option such as ``--box`` or a file and item such as
``training_K.json item 7: K``) and says what is wrong. Conventions: ``K = [[fx, s, cx],
[0, fy, cy], [0, 0, 1]]`` in pixels; a box is ``(centre_u, centre_v, side)`` in pixels with
integer coordinates at pixel centres; camera space has z forward.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["require_box", "require_finite", "require_in_front", "require_intrinsics"]

_K_TOLERANCE = 1e-6  # on the fixed entries of K (zeros below the diagonal, K[2, 2] = 1)


def _as_float_array(value: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected numbers, got {type(value).__name__} ({exc})") from exc
    return arr


def require_finite(value: Any, name: str) -> np.ndarray:
    """``value`` as a float64 array; ValueError naming the first NaN/Inf entry."""
    arr = _as_float_array(value, name)
    if not np.isfinite(arr).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        where = f" at index {list(bad)}" if bad else ""
        raise ValueError(f"{name}: non-finite value {arr[bad]}{where}")
    return arr


def require_intrinsics(K: Any, name: str) -> np.ndarray:
    """A valid pinhole ``K`` (3, 3): finite, positive focal lengths, upper triangular, invertible.

    Returns:
        ``K`` as float64 (3, 3).
    """
    K = require_finite(K, name)
    if K.shape != (3, 3):
        raise ValueError(f"{name}: expected a 3x3 matrix, got shape {K.shape}")
    fx, fy = K[0, 0], K[1, 1]
    if not (fx > 0 and fy > 0):
        raise ValueError(f"{name}: focal lengths must be positive, got fx={fx:g}, fy={fy:g}")
    fixed = np.array([K[1, 0], K[2, 0], K[2, 1], K[2, 2] - 1.0])
    if np.abs(fixed).max() > _K_TOLERANCE:
        raise ValueError(f"{name}: expected K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]], "
                         f"got {K.tolist()}")
    import torch

    from dgp_ops import MIN_REL_DET, invertible  # the ops' definition of invertible

    if not bool(invertible(torch.from_numpy(K)[None])[0]):
        raise ValueError(f"{name}: K is not invertible (|det(K / max|K|)| <= {MIN_REL_DET}), "
                         f"got {K.tolist()}")
    return K


def require_box(box: Any, height: int, width: int, name: str) -> np.ndarray:
    """A square crop box ``(centre_u, centre_v, side)`` that is finite and overlaps the image.

    Args:
        box: three numbers, pixels.
        height, width: image size in pixels; the image covers ``[-0.5, width - 0.5] x
            [-0.5, height - 0.5]`` (pixel centres at integers).
        name: what to call the box in errors.

    Returns:
        ``box`` as float64 (3,).
    """
    box = require_finite(box, name)
    if box.shape != (3,):
        raise ValueError(f"{name}: expected 3 numbers (centre_u, centre_v, side), got "
                         f"shape {box.shape}")
    cu, cv, side = box
    if not side > 0:
        raise ValueError(f"{name}: side must be positive, got {side:g}")
    half = side / 2
    if (cu + half <= -0.5 or cu - half >= width - 0.5
            or cv + half <= -0.5 or cv - half >= height - 0.5):
        raise ValueError(f"{name}: the box centred at ({cu:g}, {cv:g}) with side {side:g} lies "
                         f"outside the {width}x{height} image")
    return box


def require_in_front(points: Any, name: str) -> np.ndarray:
    """Finite camera-space points ``(N, 3)`` (metres) with every depth z > 0.

    Returns:
        ``points`` as float64 (N, 3).
    """
    pts = require_finite(points, name)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"{name}: expected (N, 3) points, got shape {pts.shape}")
    if len(pts) and not (pts[:, 2] > 0).all():
        i = int(np.argmin(pts[:, 2]))
        raise ValueError(f"{name}: point {i} is not in front of the camera (z = "
                         f"{pts[i, 2]:g} m; camera space has z > 0 forward)")
    return pts
