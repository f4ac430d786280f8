"""Drawing: keypoint skeletons, mesh wireframes and shaded meshes over images (OpenCV and the
project's rasteriser), prediction overlays, prediction-against-ground-truth panels with a top
view, contact sheets, image grids and PCK plots (matplotlib)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from .hand import HAND_BONES, NUM_KEYPOINTS

__all__ = ["FINGER_COLORS", "GT_COLOR", "LEFT_COLOR", "PRED_COLOR", "SKELETON",
           "comparison_panel", "contact_sheet", "draw_hands", "draw_mesh_overlay",
           "draw_skeleton", "image_grid", "plot_pck", "render_overlay", "shade_meshes",
           "top_view"]

# The hand's bones, grouped by finger (thumb .. little); one colour per finger.
SKELETON = HAND_BONES
FINGER_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 60, 60), (255, 200, 40), (60, 220, 60), (40, 160, 255), (200, 80, 255)
)
#: Albedo (RGB in [0, 1]) of a predicted (right) hand, of a predicted left hand, and of the
#: ground truth.
PRED_COLOR = (0.95, 0.62, 0.35)
LEFT_COLOR = (0.45, 0.65, 1.0)
GT_COLOR = (0.4, 0.85, 0.45)
#: Direction towards the light in camera space: from the camera, a little above and left.
LIGHT_DIR = (-0.35, -0.55, -1.0)
#: Opacity of a shaded mesh over its image.
MESH_ALPHA = 0.85
#: Side of the top view's scale bar, metres.
SCALE_BAR = 0.05


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


def _project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64) @ np.asarray(K, dtype=np.float64).T
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.clip(p[:, :2] / np.maximum(p[:, 2:], 1e-6), -1e4, 1e4)


Mesh = tuple[np.ndarray, np.ndarray, tuple[float, float, float]]


def shade_meshes(image: np.ndarray, K: np.ndarray, meshes: list[Mesh], *,
                 alpha: float = MESH_ALPHA, lens=None) -> np.ndarray:
    """Render camera-space meshes with simple lighting (the project's rasteriser: z-buffer,
    Lambert and a faint highlight) and blend them over an image.

    Args:
        image: (H, W, 3) uint8 RGB (not modified).
        K: (3, 3) the image's intrinsics.
        meshes: ``(verts (V, 3) metres, faces (F, 3) outward-wound, albedo RGB in [0, 1])``
            each; they occlude one another. A mesh with non-finite vertices is skipped.
        alpha: opacity of the meshes.
        lens: the camera's ``dgp_ops.lens.Distortion`` (the meshes are rendered through it),
            or None for an ideal pinhole.

    Returns:
        A new (H, W, 3) uint8 image.
    """
    from .data.render import render_mesh, render_through_lens

    img = _check_image(image)
    meshes = [(np.asarray(v, np.float64), np.asarray(f, np.int64), c) for v, f, c in meshes
              if np.isfinite(v).all()]
    if not meshes:
        return img.copy()
    offsets = np.cumsum([0] + [len(v) for v, _, _ in meshes[:-1]])
    verts = np.concatenate([v for v, _, _ in meshes])
    faces = np.concatenate([f + o for (_, f, _), o in zip(meshes, offsets, strict=True)])
    colors = np.concatenate([np.broadcast_to(np.asarray(c, np.float64), (len(v), 3))
                             for v, _, c in meshes])
    light = np.asarray(LIGHT_DIR)
    if lens is None:
        rgb, mask = render_mesh(verts, faces, K, img.shape[0], img.shape[1], colors, light)
    else:
        rgb, mask = render_through_lens(
            lambda Ki, h, w: render_mesh(verts, faces, Ki, h, w, colors, light), K, lens,
            img.shape[0], img.shape[1])
    a = (alpha * mask.astype(np.float64))[..., None]
    return np.round(img * (1 - a) + rgb * a).astype(np.uint8)


def _keypoints(image: np.ndarray, joints: np.ndarray, K: np.ndarray,
               bones: tuple[tuple[int, int], ...] | None, camera=None) -> np.ndarray:
    """Small keypoints and thin bones (one pixel per 256 of the image's side); ``camera``
    (a :class:`~handdgp_models.camera.Camera`) projects through its lens."""
    if not np.isfinite(joints).all():
        return image
    scale = max(1, int(round(max(image.shape[:2]) / 256)))
    uv = _project(joints, K) if camera is None else np.clip(camera.project(joints), -1e4, 1e4)
    if not np.isfinite(uv).all():
        return image
    return draw_skeleton(image, uv, bones=bones, radius=scale, thickness=scale)


def render_overlay(sample: dict, verts: np.ndarray, joints: np.ndarray, faces: np.ndarray,
                   bones: tuple[tuple[int, int], ...] | None = None,
                   color: tuple[float, float, float] = PRED_COLOR) -> np.ndarray:
    """The sample's image with a prediction's shaded mesh and small keypoints.

    Args:
        sample: a dataset sample (``image`` uint8 (H, W, 3) RGB, ``K`` (3, 3)).
        verts: (V, 3), joints: (K, 3) in the sample's camera, metres.
        faces: (F, 3) triangles; bones: the template's skeleton (None: the hand's).
        color: the mesh's albedo.

    Returns:
        A new (H, W, 3) uint8 image.
    """
    K = np.asarray(sample["K"], dtype=np.float64)
    img = shade_meshes(np.asarray(sample["image"]), K, [(verts, faces, color)])
    return _keypoints(img, joints, K, bones)


def _text(image: np.ndarray, text: str, org: tuple[int, int],
          color: tuple[int, int, int] = (255, 255, 255), scale: float = 0.45) -> None:
    """``text`` at ``org`` (its baseline's left end) on a dark box, readable on any image."""
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = org
    cv2.rectangle(image, (x - 2, y - h - 3), (x + w + 2, y + base), (16, 16, 16), -1)
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def _rgb255(color: tuple[float, float, float]) -> tuple[int, int, int]:
    return tuple(int(round(255 * c)) for c in color)


def draw_hands(image: np.ndarray, camera, hands: list,
               faces_of: Callable[[bool], np.ndarray],
               bones: tuple[tuple[int, int], ...] | None = None) -> np.ndarray:
    """``predict``'s overlay: every hand's shaded mesh (right hands orange, left hands blue),
    small keypoints, and its box labelled ``R``/``L`` with the score (``!`` marks a degenerate
    DGP system).

    Args:
        image: (H, W, 3) uint8 RGB; camera: its
            :class:`~handdgp_models.camera.Camera` (meshes and keypoints drawn through its
            lens), or its (3, 3) intrinsics for an ideal pinhole.
        hands: :class:`~handdgp_models.predict.HandPrediction` list.
        faces_of: ``faces_of(right)`` -> (F, 3) faces of a right or left hand.
        bones: the skeleton (None: the hand's).

    Returns:
        A new (H, W, 3) uint8 image.
    """
    from .camera import Camera

    if not isinstance(camera, Camera):
        camera = Camera(np.asarray(camera, dtype=np.float64))
    meshes = [(h.verts, faces_of(h.right), PRED_COLOR if h.right else LEFT_COLOR)
              for h in hands]
    img = shade_meshes(image, camera.K, meshes, lens=camera.lens())
    for h in hands:
        img = _keypoints(img, h.joints, camera.K, bones, camera)
    for h in hands:
        x0, y0, x1, y1 = (int(round(float(x))) for x in h.hand.box)
        color = _rgb255(PRED_COLOR if h.right else LEFT_COLOR)
        cv2.rectangle(img, (x0, y0), (x1, y1), color, 1, cv2.LINE_AA)
        label = ("R" if h.right else "L") + ("" if h.hand.score is None
                                             else f" {h.hand.score:.2f}")
        _text(img, label + ("" if h.valid else " !"), (x0 + 2, max(y0 - 4, 12)), color)
    return img


def _fit(image: np.ndarray, K: np.ndarray, tile: int) -> tuple[np.ndarray, np.ndarray]:
    """The image scaled so its longer side is ``tile`` pixels, and its intrinsics (pixel
    centres at integers: ``c' = (c + 0.5) s - 0.5``)."""
    s = tile / max(image.shape[:2])
    h, w = max(1, round(image.shape[0] * s)), max(1, round(image.shape[1] * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    img = cv2.resize(np.ascontiguousarray(image), (w, h), interpolation=interp)
    sx, sy = w / image.shape[1], h / image.shape[0]
    A = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]])
    return img, A @ np.asarray(K, dtype=np.float64)


def top_view(meshes: list[Mesh], size: int = 256,
             roots: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The meshes seen from above (a virtual camera looking down the camera's y axis; the
    image's camera is at the bottom, depth grows upwards), on a dark background with a
    :data:`SCALE_BAR` bar.

    Args:
        meshes: as in :func:`shade_meshes`, camera space, metres.
        size: side of the square image, pixels.
        roots: two points (e.g. predicted and true root) joined by a white line.

    Returns:
        (size, size, 3) uint8 RGB.
    """
    pts = np.concatenate([v for v, _, _ in meshes if np.isfinite(v).all()] or [np.zeros((1, 3))])
    centre = (pts.min(0) + pts.max(0)) / 2
    extent = max(2.4 * np.abs(pts - centre)[:, [0, 2]].max(), 0.12)  # metres across the view
    distance = 20.0 * extent  # far away: nearly orthographic
    R = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # rows: view x, y, z in camera axes
    eye = centre - distance * R[2]
    f = size * distance / extent
    K = np.array([[f, 0, (size - 1) / 2], [0, f, (size - 1) / 2], [0, 0, 1]])
    view = [((v - eye) @ R.T, fc, c) for v, fc, c in meshes]
    img = shade_meshes(np.full((size, size, 3), 24, np.uint8), K, view, alpha=1.0)
    if roots is not None and all(np.isfinite(r).all() for r in roots):
        a, b = (_project(((np.asarray(r) - eye) @ R.T)[None], K)[0] for r in roots)
        cv2.line(img, _pt(a, 4), _pt(b, 4), (255, 255, 255), 1, cv2.LINE_AA, 4)
    bar = int(round(SCALE_BAR / extent * size))
    cv2.line(img, (8, size - 10), (8 + bar, size - 10), (255, 255, 255), 2)
    _text(img, f"{SCALE_BAR * 100:.0f} cm", (12 + bar, size - 6))
    _text(img, "top view, camera below", (8, 16))
    return img


def _letterbox(image: np.ndarray, tile: int) -> np.ndarray:
    out = np.full((tile, tile, 3), 32, np.uint8)
    h, w = image.shape[:2]
    y, x = (tile - h) // 2, (tile - w) // 2
    out[y:y + h, x:x + w] = image
    return out


def comparison_panel(image: np.ndarray, K: np.ndarray, pred: tuple[np.ndarray, np.ndarray],
                     gt: tuple[np.ndarray, np.ndarray] | None, faces: np.ndarray,
                     bones: tuple[tuple[int, int], ...] | None = None, title: str = "",
                     tile: int = 256, root: int = 0) -> np.ndarray:
    """A prediction beside its ground truth: the shaded prediction over the image (orange,
    small keypoints), the shaded ground truth over the image (green), and a top view of both
    with their roots joined (depth error shows as vertical distance). Without ground truth:
    the prediction alone. The image is scaled to ``tile`` before the meshes are drawn.

    Args:
        image: (H, W, 3) uint8 RGB; K: (3, 3).
        pred, gt: ``(verts (V, 3), joints (K, 3))`` camera space, metres; gt may be None.
        faces: (F, 3); bones: the skeleton (None: the hand's); title: a line on top.
        root: the root keypoint's index (joined in the top view).

    Returns:
        (tile + 24, tile * n, 3) uint8 RGB with ``n`` = 3 tiles (1 without ground truth).
    """
    img, Ks = _fit(_check_image(image), K, tile)
    tiles = [render_overlay({"image": img, "K": Ks}, pred[0], pred[1], faces, bones)]
    _text(tiles[0], "prediction", (6, 16), _rgb255(PRED_COLOR))
    if gt is not None:
        tiles.append(render_overlay({"image": img, "K": Ks}, gt[0], gt[1], faces, bones,
                                    color=GT_COLOR))
        _text(tiles[1], "ground truth", (6, 16), _rgb255(GT_COLOR))
    tiles = [_letterbox(t, tile) for t in tiles]
    if gt is not None:
        tiles.append(top_view([(gt[0], faces, GT_COLOR), (pred[0], faces, PRED_COLOR)], tile,
                              (pred[1][root], gt[1][root])))
    head = np.full((24, tile * len(tiles), 3), 16, np.uint8)
    _text(head, title, (6, 17), scale=0.5)
    return np.concatenate([head, np.concatenate(tiles, axis=1)])


def contact_sheet(groups: dict[str, list[np.ndarray]]) -> np.ndarray:
    """Panels in columns, one column per group (e.g. the worst and the median samples),
    each under its title; every panel the same size.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    groups = {k: v for k, v in groups.items() if v}
    if not groups:
        raise ValueError("groups: expected at least one panel")
    h, w = next(iter(groups.values()))[0].shape[:2]
    rows = max(len(v) for v in groups.values())
    gap = 8
    sheet = np.full((32 + rows * (h + gap), len(groups) * (w + gap), 3), 0, np.uint8)
    for c, (name, panels) in enumerate(groups.items()):
        x = c * (w + gap)
        _text(sheet, name, (x + 6, 22), scale=0.6)
        for r, panel in enumerate(panels):
            y = 32 + r * (h + gap)
            sheet[y:y + h, x:x + w] = panel
    return sheet


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
