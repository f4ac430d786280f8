"""Drawing: keypoint skeletons and mesh wireframes over images (OpenCV), prediction overlays,
image grids and PCK plots (matplotlib)."""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np

from .hand import HAND_BONES, NUM_KEYPOINTS

__all__ = ["FINGER_COLORS", "SKELETON", "draw_mesh_overlay", "draw_skeleton", "image_grid",
           "plot_pck", "render_overlay"]

# The hand's bones, grouped by finger (thumb .. little); one colour per finger.
SKELETON = HAND_BONES
FINGER_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 60, 60), (255, 200, 40), (60, 220, 60), (40, 160, 255), (200, 80, 255)
)


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image: expected (H, W, 3) uint8, got {image.shape} {image.dtype}")
    return image


def _pt(p: np.ndarray, shift: int) -> tuple[int, int]:
    return int(round(p[0] * (1 << shift))), int(round(p[1] * (1 << shift)))


def draw_skeleton(image: np.ndarray, joints2d: np.ndarray, *,
                  bones: tuple[tuple[int, int], ...] | None = None, radius: int | None = None,
                  thickness: int | None = None) -> np.ndarray:
    """Draw a keypoint skeleton: the hand's, one colour per finger, or any ``bones``.

    Args:
        image: (H, W, 3) uint8 RGB (not modified).
        joints2d: (K, 2) pixel coordinates (u, v); the hand's 21 in OpenPose order when
            ``bones`` is None.
        bones: keypoint index pairs to join (e.g. a body model's ``bones``), coloured in turn;
            None for the hand.
        radius, thickness: keypoint radius and bone width in pixels (scaled to the image
            size when None).

    Returns:
        A new (H, W, 3) uint8 image.
    """
    img = _check_image(image).copy()
    j = np.asarray(joints2d, dtype=np.float64)
    hand = bones is None or tuple(bones) == SKELETON  # the hand's bones: one colour a finger
    if hand and j.shape != (NUM_KEYPOINTS, 2):
        raise ValueError(f"joints2d: expected shape ({NUM_KEYPOINTS}, 2), got {j.shape}")
    if j.ndim != 2 or j.shape[1] != 2:
        raise ValueError(f"joints2d: expected shape (K, 2), got {j.shape}")
    bones = SKELETON if hand else tuple(bones)
    if any(not (0 <= a < len(j) and 0 <= c < len(j)) for a, c in bones):
        raise ValueError(f"bones: indices must lie in [0, {len(j)})")
    scale = max(img.shape[:2]) / 256
    radius = radius if radius is not None else max(1, int(round(2.5 * scale)))
    thickness = thickness if thickness is not None else max(1, int(round(1.5 * scale)))
    shift = 4

    def bone_color(b: int) -> tuple[int, int, int]:
        return FINGER_COLORS[(b // 4 if hand else b) % len(FINGER_COLORS)]

    for b, (a, c) in enumerate(bones):
        cv2.line(img, _pt(j[a], shift), _pt(j[c], shift), bone_color(b), thickness,
                 cv2.LINE_AA, shift)
    for k in range(len(j)):
        color = (255, 255, 255) if k == 0 or not hand else FINGER_COLORS[(k - 1) // 4]
        cv2.circle(img, _pt(j[k], shift), radius << shift, color, -1, cv2.LINE_AA, shift)
    return img


def draw_mesh_overlay(image: np.ndarray, verts2d: np.ndarray, faces: np.ndarray, *,
                      color: tuple[int, int, int] = (0, 255, 255), alpha: float = 0.5,
                      thickness: int = 1) -> np.ndarray:
    """Blend a mesh wireframe over an image.

    Args:
        image: (H, W, 3) uint8 RGB (not modified).
        verts2d: (V, 2) projected vertices in pixels.
        faces: (F, 3) triangle indices.
        color: RGB line colour.
        alpha: opacity of the wireframe in [0, 1].
        thickness: line width in pixels.

    Returns:
        A new (H, W, 3) uint8 image.
    """
    img = _check_image(image)
    v = np.asarray(verts2d, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != 2:
        raise ValueError(f"verts2d: expected shape (V, 2), got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"faces: expected shape (F, 3), got {f.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha: expected a value in [0, 1], got {alpha}")
    layer = img.copy()
    pts = np.round(v[f] * 16).astype(np.int32)  # 4 fractional bits
    cv2.polylines(layer, list(pts), True, color, thickness, cv2.LINE_AA, 4)
    return cv2.addWeighted(layer, alpha, img, 1 - alpha, 0)


def image_grid(images: list[np.ndarray], cols: int, tile: int = 256) -> np.ndarray:
    """Letterbox each (H, W, 3) uint8 image into a ``tile`` square and tile them row-major."""
    if not images:
        raise ValueError("images: expected at least one image")
    rows = (len(images) + cols - 1) // cols
    grid = np.full((rows * tile, cols * tile, 3), 32, np.uint8)
    for i, im in enumerate(images):
        im = _check_image(im)
        s = tile / max(im.shape[:2])
        h, w = max(1, int(round(im.shape[0] * s))), max(1, int(round(im.shape[1] * s)))
        small = cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA)
        r, c = divmod(i, cols)
        y, x = r * tile + (tile - h) // 2, c * tile + (tile - w) // 2
        grid[y:y + h, x:x + w] = small
    return grid


def render_overlay(sample: dict, verts: np.ndarray, joints: np.ndarray, faces: np.ndarray,
                   bones: tuple[tuple[int, int], ...] | None = None) -> np.ndarray:
    """The sample's image with the projected mesh and skeleton of a prediction.

    Args:
        sample: a dataset sample (``image`` uint8 (H, W, 3) RGB, ``K`` (3, 3)).
        verts: (V, 3), joints: (K, 3) in the sample's camera, metres.
        faces: (F, 3) triangles; bones: the template's skeleton (None: the hand's).

    Returns:
        A new (H, W, 3) uint8 image.
    """
    K = np.asarray(sample["K"], dtype=np.float64)

    def proj(x: np.ndarray) -> np.ndarray:
        p = x @ K.T
        return np.clip(p[:, :2] / np.maximum(p[:, 2:], 1e-6), -1e4, 1e4)

    img = draw_mesh_overlay(np.asarray(sample["image"]), proj(verts), faces)
    return draw_skeleton(img, proj(joints), bones=bones)


def plot_pck(curves: dict[str, tuple[Any, Any]], path: str | os.PathLike) -> None:
    """Plot PCK curves ``{name: (thresholds_mm, pck)}`` to a PNG at ``path`` (legend shows AUC)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .metrics import auc

    if not curves:
        raise ValueError("curves must contain at least one (thresholds, pck) entry")
    fig, ax = plt.subplots(figsize=(5, 4))
    try:
        for name, (thr, pck) in curves.items():
            ax.plot(thr, pck, label=f"{name} (AUC {auc(thr, pck):.3f})")
        ax.set_xlabel("threshold (mm)")
        ax.set_ylabel("3D PCK")
        ax.set_ylim(0.0, 1.0)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right")
        fig.savefig(path, dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
