"""Fixed mesh hierarchy for the spiral decoder: simplified meshes, up-sampling, spirals.

Everything is computed from a template mesh (the real MANO or the embedded default hand)
and cached on disk under a key that hashes the template, so a new template never reuses a
stale hierarchy.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["MeshHierarchy", "build_hierarchy", "default_cache_dir", "load_hierarchy",
           "spiral_indices", "upsampling_matrix"]

_VERSION = 1


@dataclass
class MeshHierarchy:
    """Meshes from fine (level 0, the template) to coarse, with the maps between them.

    Attributes:
        vertices: per level, (V_l, 3) float64 positions.
        faces: per level, (F_l, 3) int64 triangles.
        up: ``up[l]`` is a dense (V_l, V_{l+1}) float32 matrix interpolating level ``l+1``
            features onto level ``l`` (rows sum to 1).
        spirals: per level, (V_l, L) int64 spiral neighbourhoods (first entry the vertex).
    """

    vertices: list[np.ndarray]
    faces: list[np.ndarray]
    up: list[torch.Tensor]
    spirals: list[torch.Tensor]

    @property
    def sizes(self) -> list[int]:
        return [v.shape[0] for v in self.vertices]


def default_cache_dir() -> Path:
    """``$HANDDGP_CACHE`` or ``~/.cache/handdgp``."""
    root = os.environ.get("HANDDGP_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "handdgp"


def _simplify(verts: np.ndarray, faces: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    import fast_simplification

    reduction = 1.0 - target / verts.shape[0]
    v, f = fast_simplification.simplify(verts.astype(np.float64), faces.astype(np.int64),
                                        target_reduction=reduction)
    used = np.unique(f)  # drop vertices no face refers to
    remap = -np.ones(v.shape[0], dtype=np.int64)
    remap[used] = np.arange(used.size)
    return v[used], remap[f]


def upsampling_matrix(fine: np.ndarray, coarse_v: np.ndarray, coarse_f: np.ndarray) -> np.ndarray:
    """Barycentric interpolation of each fine vertex on its closest coarse triangle.

    Returns:
        (V_fine, V_coarse) float64 with non-negative rows summing to 1.
    """
    import trimesh
    from scipy.spatial import cKDTree

    tris = coarse_v[coarse_f]  # (F, 3, 3)
    k = min(16, tris.shape[0])
    _, cand = cKDTree(tris.mean(1)).query(fine, k=k)  # candidate triangles by centroid
    cand = cand.reshape(fine.shape[0], k)
    pts = np.repeat(fine, k, axis=0)
    close = trimesh.triangles.closest_point(tris[cand.reshape(-1)], pts).reshape(-1, k, 3)
    best = np.linalg.norm(close - fine[:, None], axis=2).argmin(1)
    rows = np.arange(fine.shape[0])
    tri, closest = cand[rows, best], close[rows, best]
    corners = tris[tri]
    bary = trimesh.triangles.points_to_barycentric(corners, closest)
    bary = np.clip(np.nan_to_num(bary, nan=1 / 3), 0.0, None)
    bary /= np.maximum(bary.sum(1, keepdims=True), 1e-12)
    out = np.zeros((fine.shape[0], coarse_v.shape[0]))
    np.add.at(out, (np.repeat(np.arange(fine.shape[0]), 3), coarse_f[tri].reshape(-1)),
              bary.reshape(-1))
    return out


def _ordered_ring(v: int, faces_of: list[list[int]], faces: np.ndarray) -> list[int]:
    """1-ring of ``v`` walked around the vertex along consistently oriented faces."""
    nxt = {}
    for fi in faces_of[v]:
        a, b, c = faces[fi]
        k = [a, b, c].index(v)
        nxt[int([a, b, c][(k + 1) % 3])] = int([a, b, c][(k + 2) % 3])
    if not nxt:
        return []
    starts = set(nxt) - set(nxt.values())  # boundary vertex: start at the open end
    cur = min(starts) if starts else min(nxt)
    ring = []
    while cur not in ring:
        ring.append(cur)
        if cur not in nxt:
            break
        cur = nxt[cur]
    ring += sorted(set(nxt) | set(nxt.values()) - set(ring))
    return [u for u in ring if u not in ring[: ring.index(u)]]


def spiral_indices(faces: np.ndarray, num_verts: int, length: int = 9) -> np.ndarray:
    """Spiral neighbourhood of every vertex: itself, then rings outward in a fixed order.

    Rings are the 1-ring walked around each vertex in face order, then the unseen
    neighbours of each ring vertex in that order (BFS). Short spirals repeat their last
    entry.

    Returns:
        (V, length) int64.
    """
    faces_of: list[list[int]] = [[] for _ in range(num_verts)]
    for fi, tri in enumerate(faces):
        for u in tri:
            faces_of[int(u)].append(fi)
    rings = [_ordered_ring(v, faces_of, faces) for v in range(num_verts)]
    out = np.zeros((num_verts, length), dtype=np.int64)
    for v in range(num_verts):
        seq, seen, queue = [v], {v}, deque([v])
        while queue and len(seq) < length:
            for u in rings[queue.popleft()]:
                if u not in seen:
                    seen.add(u)
                    seq.append(u)
                    queue.append(u)
        seq = (seq + [seq[-1]] * length)[:length]
        out[v] = seq
    return out


def build_hierarchy(template: np.ndarray, faces: np.ndarray,
                    sizes: tuple[int, ...] = (389, 195, 98, 49),
                    spiral_length: int = 9) -> MeshHierarchy:
    """Simplify ``template`` to about ``sizes`` vertices and build the decoder's maps.

    Args:
        template: (V, 3) rest vertices (metres). faces: (F, 3) triangles.
        sizes: target vertex counts of the coarser levels (the simplifier lands close).
        spiral_length: vertices per spiral.
    """
    verts = [np.asarray(template, dtype=np.float64)]
    tris = [np.asarray(faces, dtype=np.int64)]
    for n in sizes:
        v, f = _simplify(verts[-1], tris[-1], n)
        verts.append(v)
        tris.append(f)
    up = [torch.from_numpy(upsampling_matrix(verts[i], verts[i + 1], tris[i + 1])).float()
          for i in range(len(sizes))]
    spirals = [torch.from_numpy(spiral_indices(f, v.shape[0], spiral_length))
               for v, f in zip(verts, tris, strict=True)]
    return MeshHierarchy(verts, tris, up, spirals)


def load_hierarchy(template: torch.Tensor | np.ndarray, faces: torch.Tensor | np.ndarray,
                   sizes: tuple[int, ...] = (389, 195, 98, 49), spiral_length: int = 9,
                   cache_dir: str | os.PathLike | None = None) -> MeshHierarchy:
    """:func:`build_hierarchy`, cached as ``.pt`` keyed by the template and the settings."""
    template = np.asarray(template, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    h = hashlib.sha1(repr((_VERSION, tuple(sizes), spiral_length)).encode())
    h.update(template.astype(np.float32).tobytes())
    h.update(faces.tobytes())
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache / f"mesh_hierarchy_{h.hexdigest()[:16]}.pt"
    if path.is_file():
        d = torch.load(path, weights_only=True)
        return MeshHierarchy([v.numpy() for v in d["vertices"]], [f.numpy() for f in d["faces"]],
                             d["up"], d["spirals"])
    hier = build_hierarchy(template, faces, sizes, spiral_length)
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".pt", dir=cache)
    with os.fdopen(fd, "wb") as fh:
        torch.save({"vertices": [torch.from_numpy(v) for v in hier.vertices],
                    "faces": [torch.from_numpy(f) for f in hier.faces],
                    "up": hier.up, "spirals": hier.spirals}, fh)
    os.replace(tmp, path)
    return hier
