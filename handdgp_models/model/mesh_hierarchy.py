"""Fixed mesh hierarchy for the spiral decoder: simplified meshes, up-sampling, spirals.

Everything is computed from a template mesh (MANO, the embedded default hand or any other
template such as a body) and cached on disk under a key that hashes the template and
:data:`HIERARCHY_VERSION`, so a new template or a new construction never reuses a stale
hierarchy. Each level halves the vertex count, rounding up: the 778-vertex hand gives
778/389/195/98/49 and SMPL's 6890 vertices give 6890/3445/1723/862/431.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import warnings
import zipfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..cache import HIERARCHY
from ..cache import cache_dir as default_cache
from .simplify import check_triangle_mesh, simplify_to

__all__ = ["HIERARCHY_VERSION", "MeshHierarchy", "barycentric_upsampling", "build_hierarchy",
           "hierarchy_sizes", "load_hierarchy", "spiral_indices"]

HIERARCHY_VERSION = 2  # bump whenever the construction changes: old cache files are then unused
NUM_LEVELS = 4  # coarser levels below the template
SPIRAL_LENGTH = 9  # vertices per spiral, the vertex itself first


@dataclass
class MeshHierarchy:
    """Meshes from fine (level 0, the template) to coarse, with the maps between them.

    Attributes:
        vertices: per level, (V_l, 3) float64 positions (metres).
        faces: per level, (F_l, 3) int64 triangles.
        up_index: per level ``l`` below the coarsest, (V_l, 3) int64: the corners (vertices of
            level ``l + 1``) of the coarse triangle that fine vertex ``i`` projects onto.
        up_weight: per level, (V_l, 3) float64 barycentric weights of those corners
            (non-negative, rows sum to 1, for a hierarchy built here; an external one, such as
            MobRecon's, may store other weights and other row lengths, kept as they are).
        spirals: per level, (V_l, L) int64 spiral neighbourhoods (first entry the vertex).
    """

    vertices: list[np.ndarray]
    faces: list[np.ndarray]
    up_index: list[torch.Tensor]
    up_weight: list[torch.Tensor]
    spirals: list[torch.Tensor]

    @property
    def sizes(self) -> list[int]:
        """Vertex count per level, fine to coarse."""
        return [v.shape[0] for v in self.vertices]

    def up_matrix(self, level: int) -> torch.Tensor:
        """Dense (V_level, V_{level+1}) float64 form of the up-sampling from ``level + 1``."""
        index, weight = self.up_index[level], self.up_weight[level]
        dense = torch.zeros(index.shape[0], self.sizes[level + 1], dtype=weight.dtype)
        return dense.scatter_add_(1, index, weight)

    @property
    def up(self) -> list[torch.Tensor]:
        """All up-sampling maps as dense matrices (for inspection; the decoder gathers)."""
        return [self.up_matrix(level) for level in range(len(self.up_index))]


def hierarchy_sizes(num_vertices: int, levels: int = NUM_LEVELS) -> list[int]:
    """Vertex counts fine to coarse: ``num_vertices`` then ``levels`` times ``ceil(V / 2)``."""
    sizes = [int(num_vertices)]
    for _ in range(levels):
        sizes.append(math.ceil(sizes[-1] / 2))
    return sizes


def barycentric_upsampling(fine: np.ndarray, coarse_vertices: np.ndarray,
                           coarse_faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Barycentric weights of each fine vertex projected onto its nearest coarse triangle.

    The nearest triangle is exact, not a heuristic: a first guess among the triangles with
    the nearest centroids bounds the distance ``d``, and every triangle that could be nearer
    has its centroid within ``d + r`` (``r`` the largest centroid-to-corner distance).

    Args:
        fine: (V_f, 3) fine positions. coarse_vertices: (V_c, 3). coarse_faces: (F_c, 3).

    Returns:
        index (V_f, 3) int64 coarse vertex ids and weight (V_f, 3) float64, non-negative,
        rows summing to 1, such that ``weight @ coarse[index]`` is the projection.
    """
    import trimesh
    from scipy.spatial import cKDTree

    fine = np.asarray(fine, dtype=np.float64)
    tris = np.asarray(coarse_vertices, dtype=np.float64)[coarse_faces]  # (F, 3, 3)
    centroids = tris.mean(1)
    reach = float(np.linalg.norm(tris - centroids[:, None], axis=2).max())
    tree = cKDTree(centroids)
    rows = np.arange(fine.shape[0])
    _, guess = tree.query(fine, k=min(8, tris.shape[0]))
    guess = guess.reshape(fine.shape[0], -1)
    first = trimesh.triangles.closest_point(tris[guess.ravel()], np.repeat(fine, guess.shape[1], 0))
    bound = np.linalg.norm(first.reshape(*guess.shape, 3) - fine[:, None], axis=2).min(1)
    near = tree.query_ball_point(fine, bound + reach + 1e-12)
    counts = np.array([len(c) for c in near])
    cand = np.concatenate([np.asarray(c, dtype=np.int64) for c in near])
    owner = np.repeat(rows, counts)
    closest = trimesh.triangles.closest_point(tris[cand], fine[owner])
    dist = np.linalg.norm(closest - fine[owner], axis=1)
    order = np.lexsort((cand, dist, owner))  # per fine vertex: nearest, ties to the lowest id
    pick = order[np.searchsorted(owner[order], rows)]
    tri = cand[pick]
    weight = trimesh.triangles.points_to_barycentric(tris[tri], closest[pick])
    weight = np.clip(weight, 0.0, None)  # the projection lies on the triangle: rounding only
    weight /= weight.sum(1, keepdims=True)
    return np.asarray(coarse_faces, dtype=np.int64)[tri], weight


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


def spiral_indices(faces: np.ndarray, num_verts: int, length: int = SPIRAL_LENGTH) -> np.ndarray:
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


def build_hierarchy(template: np.ndarray, faces: np.ndarray, levels: int = NUM_LEVELS,
                    spiral_length: int = SPIRAL_LENGTH) -> MeshHierarchy:
    """Simplify ``template`` to exactly :func:`hierarchy_sizes` vertices and build the maps.

    Args:
        template: (V, 3) rest vertices (metres). faces: (F, 3) triangles using every vertex.
        levels: coarser levels below the template.
        spiral_length: vertices per spiral.
    """
    verts = [np.ascontiguousarray(template, dtype=np.float64)]
    tris = [np.ascontiguousarray(faces, dtype=np.int64)]
    check_triangle_mesh(verts[0], tris[0], "template")
    if levels < 1 or hierarchy_sizes(verts[0].shape[0], levels)[-1] < 4:
        raise ValueError(f"levels: {levels} halvings of {verts[0].shape[0]} vertices leave "
                         "too small a mesh (or no level at all)")
    if spiral_length < 1:
        raise ValueError(f"spiral_length: expected >= 1, got {spiral_length}")
    for n in hierarchy_sizes(verts[0].shape[0], levels)[1:]:
        v, f = simplify_to(verts[-1], tris[-1], n)
        verts.append(v)
        tris.append(f)
    up_index, up_weight = [], []
    for i in range(levels):
        index, weight = barycentric_upsampling(verts[i], verts[i + 1], tris[i + 1])
        up_index.append(torch.from_numpy(index))
        up_weight.append(torch.from_numpy(weight))
    spirals = [torch.from_numpy(spiral_indices(f, v.shape[0], spiral_length))
               for v, f in zip(verts, tris, strict=True)]
    return MeshHierarchy(verts, tris, up_index, up_weight, spirals)


def _cache_key(template: np.ndarray, faces: np.ndarray, levels: int, spiral_length: int) -> str:
    h = hashlib.sha256(repr((HIERARCHY_VERSION, levels, spiral_length)).encode())
    h.update(np.ascontiguousarray(template, dtype="<f8").tobytes())
    h.update(np.ascontiguousarray(faces, dtype="<i8").tobytes())
    return h.hexdigest()


def _to_arrays(hier: MeshHierarchy, key: str) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {"key": np.array(key), "levels": np.array(len(hier.up_index))}
    for name in ("vertices", "faces"):
        out.update({f"{name}{i}": a for i, a in enumerate(getattr(hier, name))})
    for name in ("up_index", "up_weight", "spirals"):
        out.update({f"{name}{i}": t.numpy() for i, t in enumerate(getattr(hier, name))})
    return out


def _check_hierarchy(hier: MeshHierarchy, template: np.ndarray, faces: np.ndarray,
                     levels: int, spiral_length: int) -> None:
    """Raise ``ValueError`` unless ``hier`` is a well-formed hierarchy of this template."""
    sizes = hierarchy_sizes(template.shape[0], levels)
    if hier.sizes != sizes or len(hier.faces) != levels + 1:
        raise ValueError(f"level sizes {hier.sizes}, expected {sizes}")
    if not (np.array_equal(hier.vertices[0], template) and np.array_equal(hier.faces[0], faces)):
        raise ValueError("level 0 is not the template")
    for level, (v, f) in enumerate(zip(hier.vertices, hier.faces, strict=True)):
        if f.dtype != np.int64 or v.dtype != np.float64:
            raise ValueError(f"level {level}: wrong dtypes")
        check_triangle_mesh(v, f, f"level {level}")
    for level, (idx, w) in enumerate(zip(hier.up_index, hier.up_weight, strict=True)):
        if idx.shape != (sizes[level], 3) or w.shape != idx.shape or idx.dtype != torch.int64:
            raise ValueError(f"up-sampling {level}: wrong shape or dtype")
        if idx.min() < 0 or idx.max() >= sizes[level + 1] or not torch.isfinite(w).all():
            raise ValueError(f"up-sampling {level}: index out of range or weight not finite")
        if (w < 0).any() or (w.sum(1) - 1).abs().max() > 1e-9:
            raise ValueError(f"up-sampling {level}: weights not a convex combination")
    for level, s in enumerate(hier.spirals):
        n = sizes[level]
        if s.shape != (n, spiral_length) or s.dtype != torch.int64:
            raise ValueError(f"spirals {level}: wrong shape or dtype")
        if s.min() < 0 or s.max() >= n or not torch.equal(s[:, 0], torch.arange(n)):
            raise ValueError(f"spirals {level}: index out of range or not starting at the vertex")


def _read_cache(path: Path, key: str, levels: int) -> MeshHierarchy:
    """Arrays only (``allow_pickle=False``): reading a cache file never runs code from it."""
    with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
        if str(data["key"]) != key or int(data["levels"]) != levels:
            raise ValueError("stale (built for another template, setting or version)")
        arrays = {name: data[name] for name in data.files}

    def level_list(name: str, count: int) -> list[np.ndarray]:
        return [arrays[f"{name}{i}"] for i in range(count)]

    return MeshHierarchy(level_list("vertices", levels + 1), level_list("faces", levels + 1),
                         [torch.from_numpy(a) for a in level_list("up_index", levels)],
                         [torch.from_numpy(a) for a in level_list("up_weight", levels)],
                         [torch.from_numpy(a) for a in level_list("spirals", levels + 1)])


def _write_cache(path: Path, hier: MeshHierarchy, key: str) -> None:
    """Write atomically: a temporary file in the same folder, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **_to_arrays(hier, key))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_hierarchy(template: torch.Tensor | np.ndarray, faces: torch.Tensor | np.ndarray,
                   levels: int = NUM_LEVELS, spiral_length: int = SPIRAL_LENGTH,
                   cache_dir: str | os.PathLike | None = None) -> MeshHierarchy:
    """:func:`build_hierarchy`, cached as ``.npz`` keyed by the template and the settings.

    A cache file that cannot be read, is truncated, fails the structural checks or was built
    for something else is reported with one warning and rebuilt. A cache folder that cannot
    be written is reported with a warning too; the hierarchy is then rebuilt on every load.

    Args:
        template: (V, 3) rest vertices. faces: (F, 3) triangles.
        levels, spiral_length: as :func:`build_hierarchy`.
        cache_dir: folder of the cache files (default: the ``hierarchy`` folder of the
            cache root, :mod:`handdgp_models.cache`).
    """
    template = np.ascontiguousarray(template, dtype=np.float64)
    faces = np.ascontiguousarray(faces, dtype=np.int64)
    key = _cache_key(template, faces, levels, spiral_length)
    cache = Path(cache_dir) if cache_dir is not None else default_cache(HIERARCHY)
    path = cache / f"mesh_hierarchy_{key[:20]}.npz"
    if path.is_file():
        try:
            hier = _read_cache(path, key, levels)
            _check_hierarchy(hier, template, faces, levels, spiral_length)
            return hier
        except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as err:
            warnings.warn(f"mesh hierarchy cache {path} is unusable ({err}); rebuilding it",
                          RuntimeWarning, stacklevel=2)
    hier = build_hierarchy(template, faces, levels, spiral_length)
    try:
        _write_cache(path, hier, key)
    except OSError as err:
        warnings.warn(f"mesh hierarchy cache {path} cannot be written ({err}); continuing "
                      "without a cache", RuntimeWarning, stacklevel=2)
    return hier
