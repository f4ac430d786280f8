"""CPU z-buffered triangle rasteriser with Lambert shading (numpy, vectorised over triangles).

Every (triangle, pixel) pair inside each triangle's bounding box is tested at once with edge
functions; the nearest fragment per pixel wins (depth interpolated as 1/z, which is exact for
planar triangles under perspective). Only the triangles' bounding boxes are visited, so a
small hand in a 640x480 image costs about as much as in a 224x224 one.

Pixel convention: integer coordinates are pixel centres (OpenCV), so pixel (row r, column c)
is covered when the point (u=c, v=r) lies inside the projected triangle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Raster", "project", "rasterize", "vertex_normals", "shade", "render_mesh",
           "render_through_lens"]

_MAX_FRAGMENTS = 4_000_000  # candidate pairs per chunk, bounds memory for huge triangles


@dataclass
class Raster:
    """Per-pixel rasterisation result for an (H, W) image.

    Attributes:
        face_id: (H, W) int64 visible triangle index, -1 where nothing is drawn.
        bary: (H, W, 3) float64 perspective-correct barycentric weights (zeros in background).
        depth: (H, W) float64 camera-space z of the visible surface (inf in background).
    """

    face_id: np.ndarray
    bary: np.ndarray
    depth: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """(H, W) uint8 silhouette, 1 where a triangle is visible."""
        return (self.face_id >= 0).astype(np.uint8)


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection of camera-space points.

    Args:
        points: (N, 3) camera-space points in metres, z > 0.
        K: (3, 3) intrinsics in pixels.

    Returns:
        (N, 2) pixel coordinates (u, v), same dtype as ``points``.
    """
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points: expected shape (N, 3), got {points.shape}")
    K = np.asarray(K)
    if K.shape != (3, 3):
        raise ValueError(f"K: expected shape (3, 3), got {K.shape}")
    p = points @ K.T.astype(points.dtype)
    return p[:, :2] / p[:, 2:3]


def _validate(uv: np.ndarray, z: np.ndarray, faces: np.ndarray, height: int, width: int) -> None:
    if uv.ndim != 2 or uv.shape[1] != 2:
        raise ValueError(f"uv: expected shape (V, 2), got {uv.shape}")
    if z.shape != (uv.shape[0],):
        raise ValueError(f"z: expected shape ({uv.shape[0]},), got {z.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces: expected shape (F, 3), got {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= uv.shape[0]):
        raise ValueError("faces: indices out of range of the vertices")
    if int(height) <= 0 or int(width) <= 0:
        raise ValueError(f"height/width: expected positive sizes, got {height}x{width}")


def rasterize(uv: np.ndarray, z: np.ndarray, faces: np.ndarray, height: int, width: int,
              *, near: float = 1e-4) -> Raster:
    """Rasterise projected triangles with a z-buffer.

    Args:
        uv: (V, 2) pixel coordinates of the vertices.
        z: (V,) camera-space depth of the vertices (metres); triangles with a vertex at
            z <= ``near`` are skipped.
        faces: (F, 3) vertex indices.
        height, width: image size in pixels.

    Returns:
        :class:`Raster` with the nearest triangle per pixel.
    """
    uv = np.asarray(uv, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    _validate(uv, z, faces, height, width)
    height, width = int(height), int(width)
    face_id = np.full(height * width, -1, dtype=np.int64)
    zbuf = np.full(height * width, np.inf)
    bary = np.zeros((height * width, 3))

    tri_uv = uv[faces]
    tri_z = z[faces]
    x0, y0 = tri_uv[:, 0, 0], tri_uv[:, 0, 1]
    x1, y1 = tri_uv[:, 1, 0], tri_uv[:, 1, 1]
    x2, y2 = tri_uv[:, 2, 0], tri_uv[:, 2, 1]
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    with np.errstate(invalid="ignore"):
        xmin = np.clip(np.ceil(tri_uv[:, :, 0].min(1)), 0, width - 1)
        xmax = np.clip(np.floor(tri_uv[:, :, 0].max(1)), 0, width - 1)
        ymin = np.clip(np.ceil(tri_uv[:, :, 1].min(1)), 0, height - 1)
        ymax = np.clip(np.floor(tri_uv[:, :, 1].max(1)), 0, height - 1)
    inside_img = ((tri_uv[:, :, 0].max(1) >= 0) & (tri_uv[:, :, 0].min(1) <= width - 1)
                  & (tri_uv[:, :, 1].max(1) >= 0) & (tri_uv[:, :, 1].min(1) <= height - 1))
    valid = ((tri_z > near).all(1) & (np.abs(area) > 1e-12) & inside_img
             & np.isfinite(tri_uv).all((1, 2)) & (xmax >= xmin) & (ymax >= ymin))
    idx = np.flatnonzero(valid)
    if idx.size == 0:
        return Raster(face_id.reshape(height, width), bary.reshape(height, width, 3),
                      zbuf.reshape(height, width))
    bw = (xmax[idx] - xmin[idx] + 1).astype(np.int64)
    bh = (ymax[idx] - ymin[idx] + 1).astype(np.int64)
    counts = bw * bh
    # Chunk the triangles so the candidate arrays stay bounded.
    chunk = (np.cumsum(counts) - counts) // _MAX_FRAGMENTS
    for c in np.unique(chunk):
        sel = np.flatnonzero(chunk == c)
        t_local = np.repeat(sel, counts[sel])
        start = np.cumsum(counts[sel]) - counts[sel]
        k = np.arange(t_local.size) - np.repeat(start, counts[sel])
        tri = idx[t_local]
        px = xmin[tri] + k % bw[t_local]
        py = ymin[tri] + k // bw[t_local]
        a = area[tri]
        w0 = ((x1[tri] - px) * (y2[tri] - py) - (x2[tri] - px) * (y1[tri] - py)) / a
        w1 = ((x2[tri] - px) * (y0[tri] - py) - (x0[tri] - px) * (y2[tri] - py)) / a
        w2 = 1.0 - w0 - w1
        eps = -1e-9
        ok = (w0 >= eps) & (w1 >= eps) & (w2 >= eps)
        tri, px, py, w0, w1, w2 = tri[ok], px[ok], py[ok], w0[ok], w1[ok], w2[ok]
        tz = tri_z[tri]
        b = np.stack([w0 / tz[:, 0], w1 / tz[:, 1], w2 / tz[:, 2]], axis=1)
        inv_z = b.sum(1)
        depth = 1.0 / inv_z
        pix = (py * width + px).astype(np.int64)
        order = np.lexsort((depth, pix))
        pix_s = pix[order]
        first = np.ones(pix_s.size, dtype=bool)
        first[1:] = pix_s[1:] != pix_s[:-1]
        win = order[first]
        win = win[depth[win] < zbuf[pix[win]]]
        p = pix[win]
        zbuf[p] = depth[win]
        face_id[p] = tri[win]
        bary[p] = b[win] / inv_z[win, None]
    return Raster(face_id.reshape(height, width), bary.reshape(height, width, 3),
                  zbuf.reshape(height, width))


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals, (V, 3), for outward-wound triangles."""
    verts = np.asarray(verts, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    fn = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    vn = np.zeros_like(verts)
    for c in range(3):
        vn[:, c] = (np.bincount(faces[:, 0], fn[:, c], len(verts))
                    + np.bincount(faces[:, 1], fn[:, c], len(verts))
                    + np.bincount(faces[:, 2], fn[:, c], len(verts)))
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)


def shade(raster: Raster, verts: np.ndarray, faces: np.ndarray, colors: np.ndarray,
          light_dir: np.ndarray, *, ambient: float = 0.35, diffuse: float = 0.75,
          specular: float = 0.08) -> np.ndarray:
    """Lambert (+ a faint Blinn highlight) shading of the visible surface.

    Args:
        raster: output of :func:`rasterize` for ``verts``.
        verts: (V, 3) camera-space vertices in metres.
        faces: (F, 3) outward-wound triangles.
        colors: (V, 3) albedo in [0, 1] (or (3,) for a uniform colour).
        light_dir: (3,) camera-space direction from the surface towards the light.

    Returns:
        (H, W, 3) float64 RGB in [0, 1]; zero where ``raster.face_id`` is -1.
    """
    faces = np.asarray(faces, dtype=np.int64)
    colors = np.broadcast_to(np.asarray(colors, dtype=np.float64), (len(verts), 3))
    h, w = raster.face_id.shape
    out = np.zeros((h, w, 3))
    m = raster.face_id >= 0
    if not m.any():
        return out
    fids = faces[raster.face_id[m]]  # (P, 3)
    b = raster.bary[m][:, :, None]  # (P, 3, 1)
    vn = vertex_normals(verts, faces)
    n = (vn[fids] * b).sum(1)
    pos = (np.asarray(verts, dtype=np.float64)[fids] * b).sum(1)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    # Silhouette pixels may show a back-facing normal; light them as if seen from the front.
    flip = (n * pos).sum(1) > 0
    n[flip] *= -1
    light = np.asarray(light_dir, dtype=np.float64)
    light = light / np.linalg.norm(light)
    lam = np.clip(n @ light, 0.0, None)
    view = -pos / np.linalg.norm(pos, axis=1, keepdims=True)
    half = light + view
    half /= np.linalg.norm(half, axis=1, keepdims=True)
    spec = specular * np.clip((n * half).sum(1), 0.0, None) ** 24
    albedo = (colors[fids] * b).sum(1)
    out[m] = np.clip(albedo * (ambient + diffuse * lam)[:, None] + spec[:, None], 0.0, 1.0)
    return out


def render_mesh(verts: np.ndarray, faces: np.ndarray, K: np.ndarray, height: int, width: int,
                colors: np.ndarray, light_dir: np.ndarray,
                background: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Render a camera-space mesh over a background.

    Args:
        verts: (V, 3) camera-space vertices in metres (OpenCV camera, z forward).
        faces: (F, 3) outward-wound triangles.
        K: (3, 3) intrinsics.
        height, width: output size in pixels.
        colors: (V, 3) or (3,) albedo in [0, 1].
        light_dir: (3,) direction towards the light in camera space.
        background: (H, W, 3) uint8 or float in [0, 1]; black when None.

    Returns:
        image (H, W, 3) uint8 RGB and mask (H, W) uint8 silhouette.
    """
    verts = np.asarray(verts, dtype=np.float64)
    uv = project(verts, K)
    raster = rasterize(uv, verts[:, 2], faces, height, width)
    rgb = shade(raster, verts, faces, colors, light_dir)
    mask = raster.mask
    if background is None:
        img = np.zeros((height, width, 3), np.uint8)
    else:
        bg = np.asarray(background)
        if bg.shape != (height, width, 3):
            raise ValueError(f"background: expected shape {(height, width, 3)}, got {bg.shape}")
        img = (bg.copy() if bg.dtype == np.uint8
               else (np.clip(bg, 0, 1) * 255 + 0.5).astype(np.uint8))
    m = mask > 0
    img[m] = (rgb[m] * 255 + 0.5).astype(np.uint8)
    return img, mask


#: Largest side of the ideal image rendered for a distorted one, as a multiple of its side.
MAX_IDEAL_SCALE = 2.0


def render_through_lens(render, K: np.ndarray, lens, height: int, width: int) -> list:
    """Images of a camera with lens distortion, from an ideal pinhole renderer.

    ``render(K_ideal, h, w)`` draws the ideal pinhole image(s) (a tuple of arrays
    ``(h, w[, C])``) of a camera with ``K``'s focal lengths, on a canvas large enough for the
    rays the distorted ``height x width`` image sees (at most :data:`MAX_IDEAL_SCALE` times its
    side; rays beyond are black). Each distorted pixel then takes the ideal pixel of its ray
    (``dgp_ops.lens.undistort_points``): bilinear for the first array, nearest for the others
    (masks).

    Args:
        render: the ideal renderer; K: (3, 3) the camera; lens: its
            ``dgp_ops.lens.Distortion``; height, width: the distorted image's size.

    Returns:
        The resampled arrays, each ``(height, width[, C])``.
    """
    import cv2
    import torch

    import dgp_ops  # noqa: F401  (registers the ops)
    from dgp_ops.lens import undistort_points

    vs, us = np.mgrid[0:height, 0:width].astype(np.float64)
    pix = torch.from_numpy(np.stack([us.ravel(), vs.ravel()], -1))[None]
    coeffs = torch.as_tensor(lens.coeffs, dtype=torch.float64)
    ideal = undistort_points(pix, torch.from_numpy(np.asarray(K, np.float64))[None],
                             type(lens)(coeffs, lens.model))[0].numpy()
    size = np.array([width, height], dtype=np.float64)
    lo_lim, hi_lim = -(MAX_IDEAL_SCALE - 1) / 2 * size, (MAX_IDEAL_SCALE + 1) / 2 * size
    finite = np.isfinite(ideal).all(1)
    lo = np.clip(np.floor(ideal[finite].min(0)) - 1, lo_lim, 0)
    hi = np.clip(np.ceil(ideal[finite].max(0)) + 2, size, hi_lim)
    K_ideal = np.array(K, dtype=np.float64)
    K_ideal[:2, 2] -= lo
    images = render(K_ideal, int(hi[1] - lo[1]), int(hi[0] - lo[0]))
    maps = np.where(finite[:, None], ideal - lo, -10.0).astype(np.float32)
    mx, my = maps[:, 0].reshape(height, width), maps[:, 1].reshape(height, width)
    return [cv2.remap(im, mx, my, cv2.INTER_LINEAR if i == 0 else cv2.INTER_NEAREST,
                      borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            for i, im in enumerate(images)]
