"""How much of each hand the paper's ``affine`` rectification keeps in its window.

The ``affine`` map is ``H = K_c K⁻¹`` (``dgp_ops.rectify``): the ``S``-pixel window is centred
on the original principal point and magnified by ``f_c / f``, whatever the crop box. A
camera-space point ``(x, y, z)`` lands at ``u' = f_c x / z + S/2``, ``v' = f_c y / z + S/2``
for any ``K``, so it is inside the window iff both lie in ``[-0.5, S - 0.5]`` (pixel centres
at integers): within about ``atan(S / (2 f_c))`` of the optical axis — 6.4° for FreiHAND
(``f_c`` = 1000, ``S`` = 224), 12.6° for HO3D-v2 (``f_c`` = 500). A hand off the axis or close
to the camera leaves it (the ``perspective`` mode turns the camera to the box instead).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["WindowCoverage", "box_fraction_outside", "keypoint_fraction_outside"]


def _window_coords(rays: np.ndarray, focal: float, size: int) -> np.ndarray:
    """Window pixels ``f_c (x/z, y/z) + S/2`` of camera-space points or rays (..., 3);
    points with ``z <= 0`` become NaN (outside)."""
    rays = np.asarray(rays, dtype=np.float64)
    z = rays[..., 2:]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = np.where(z > 0, focal * rays[..., :2] / z + size / 2, np.nan)
    return uv


def keypoint_fraction_outside(points3d: np.ndarray, focal: float, size: int) -> np.ndarray:
    """Fraction of each sample's keypoints outside the affine window.

    Args:
        points3d: (N, K, 3) camera-space keypoints (metres; any unit works).
        focal: canonical focal ``f_c`` in pixels; size: window side ``S`` in pixels.

    Returns:
        (N,) fractions in [0, 1].
    """
    uv = _window_coords(points3d, focal, size)
    with np.errstate(invalid="ignore"):
        inside = ((uv >= -0.5) & (uv <= size - 0.5)).all(-1)
    return 1.0 - inside.mean(-1)


def box_fraction_outside(K: np.ndarray, boxes: np.ndarray, focal: float,
                         size: int) -> np.ndarray:
    """Fraction of each box's area outside the affine window (for splits with a hand box and
    no keypoints, such as HO3D-v2's evaluation split).

    Args:
        K: (N, 3, 3) intrinsics; boxes: (N, 4) ``(u0, v0, u1, v1)`` pixels.

    Returns:
        (N,) fractions in [0, 1] (the box's corners are mapped to the window; with skew the
        bounding rectangle of the mapped corners is used).
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    corners = np.stack([boxes[:, [0, 1]], boxes[:, [2, 1]], boxes[:, [0, 3]],
                        boxes[:, [2, 3]]], axis=1)  # (N, 4, 2)
    hom = np.concatenate([corners, np.ones_like(corners[..., :1])], -1)
    rays = hom @ np.linalg.inv(np.asarray(K, dtype=np.float64)).transpose(0, 2, 1)
    uv = _window_coords(rays, focal, size)
    lo, hi = uv.min(1), uv.max(1)  # (N, 2)
    area = np.prod(hi - lo, axis=-1)
    inter = np.prod(np.clip(np.minimum(hi, size - 0.5) - np.maximum(lo, -0.5), 0, None), -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(area > 0, 1.0 - inter / area, 1.0)
    return np.nan_to_num(frac, nan=1.0)


@dataclass
class WindowCoverage:
    """How many samples of a split leave the affine window.

    Attributes:
        split: the split; points: what was tested (``"keypoints"`` or ``"box area"``);
        samples: images counted; outside: images with some of it outside;
        mean_fraction: mean over images of the fraction outside; note: why a split has no
            numbers (no ground truth), or None.
    """

    split: str
    points: str = "keypoints"
    samples: int = 0
    outside: int = 0
    mean_fraction: float = 0.0
    note: str | None = None

    @classmethod
    def of(cls, split: str, fractions: np.ndarray, points: str = "keypoints",
           repeat: int = 1) -> WindowCoverage:
        """From per-sample fractions (each sample standing for ``repeat`` images)."""
        f = np.asarray(fractions, dtype=np.float64)
        return cls(split, points, len(f) * repeat, int((f > 0).sum()) * repeat,
                   float(f.mean()) if len(f) else 0.0)
