"""Drawing helpers for hand overlays (OpenCV): 21-keypoint skeletons and mesh wireframes."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["SKELETON", "FINGER_COLORS", "draw_skeleton", "draw_mesh_overlay", "image_grid"]

# Bones of the 21 OpenPose-ordered keypoints, grouped by finger (thumb .. little).
SKELETON: tuple[tuple[int, int], ...] = tuple(
    (0 if k == 0 else 4 * f + k, 4 * f + k + 1) for f in range(5) for k in range(4)
)
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


def draw_skeleton(image: np.ndarray, joints2d: np.ndarray, *, radius: int | None = None,
                  thickness: int | None = None) -> np.ndarray:
    """Draw the 21-keypoint hand skeleton, one colour per finger.

    Args:
        image: (H, W, 3) uint8 RGB (not modified).
        joints2d: (21, 2) pixel coordinates (u, v), OpenPose order.
        radius, thickness: keypoint radius and bone width in pixels (scaled to the image
            size when None).

    Returns:
        A new (H, W, 3) uint8 image.
    """
    img = _check_image(image).copy()
    j = np.asarray(joints2d, dtype=np.float64)
    if j.shape != (21, 2):
        raise ValueError(f"joints2d: expected shape (21, 2), got {j.shape}")
    scale = max(img.shape[:2]) / 256
    radius = radius if radius is not None else max(1, int(round(2.5 * scale)))
    thickness = thickness if thickness is not None else max(1, int(round(1.5 * scale)))
    shift = 4
    for b, (a, c) in enumerate(SKELETON):
        cv2.line(img, _pt(j[a], shift), _pt(j[c], shift), FINGER_COLORS[b // 4], thickness,
                 cv2.LINE_AA, shift)
    for k in range(21):
        color = (255, 255, 255) if k == 0 else FINGER_COLORS[(k - 1) // 4]
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
