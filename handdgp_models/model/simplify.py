"""Triangle-mesh simplification to an exact vertex count, and a validity check for the result.

The decoder's hierarchy needs meshes of exactly ``ceil(V / 2)`` vertices per level. Quadric
edge-collapse decimation (fast-simplification) is steered by a *face* budget, so the vertex
count it lands on is searched for; if no face budget gives the exact count, the few vertices
still in excess are removed by collapsing the shortest edges that keep the mesh manifold.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_triangle_mesh", "collapse_shortest_edges", "simplify_to"]

_MAX_SEARCH_STEPS = 32  # face-budget tries before falling back to explicit edge collapses


def _edge_face_counts(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges (E, 2) of ``faces`` and how many faces share each."""
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    return np.unique(edges, axis=0, return_counts=True)


def check_triangle_mesh(vertices: np.ndarray, faces: np.ndarray, name: str = "mesh",
                        manifold: bool = False) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``(vertices, faces)`` is a valid mesh.

    Valid: finite (V, 3) positions, (F, 3) integer faces indexing them, three distinct
    vertices and a non-zero area per face, no face listed twice, every vertex used by a face
    and, with ``manifold``, no edge shared by more than two faces.
    """
    v, f = np.asarray(vertices), np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or v.shape[0] < 3 or not np.isfinite(v).all():
        raise ValueError(f"{name}: expected finite (V >= 3, 3) vertices, got shape {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3 or f.shape[0] == 0 or not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"{name}: expected (F, 3) integer faces, got {f.dtype} {f.shape}")
    if f.min() < 0 or f.max() >= v.shape[0]:
        raise ValueError(f"{name}: face indices outside [0, {v.shape[0]})")
    if ((f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])).any():
        raise ValueError(f"{name}: a face repeats a vertex")
    if np.unique(np.sort(f, axis=1), axis=0).shape[0] != f.shape[0]:
        raise ValueError(f"{name}: a face is listed twice")
    unused = np.setdiff1d(np.arange(v.shape[0]), f)
    if unused.size:
        raise ValueError(f"{name}: {unused.size} vertices are used by no face "
                         f"(first {unused[:5].tolist()})")
    tri = v[f]
    area2 = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    if (area2 <= 1e-12 * np.square(np.ptp(v, axis=0)).sum()).any():
        raise ValueError(f"{name}: a face has zero area")
    if manifold and (_edge_face_counts(f)[1] > 2).any():
        raise ValueError(f"{name}: an edge is shared by more than two faces")


def _drop_unused(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    used = np.unique(faces)
    remap = np.full(vertices.shape[0], -1, dtype=np.int64)
    remap[used] = np.arange(used.size)
    return vertices[used], remap[faces]


def _decimate(vertices: np.ndarray, faces: np.ndarray, face_budget: int
              ) -> tuple[np.ndarray, np.ndarray]:
    import fast_simplification

    v, f = fast_simplification.simplify(vertices, faces, target_count=face_budget)
    f = np.asarray(f, np.int64)
    # decimation can leave a face twice (two collapses meeting) or one with a repeated vertex
    f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
    _, first = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
    return _drop_unused(np.asarray(v, np.float64), f[np.sort(first)])


def _try_collapse(v: np.ndarray, f: np.ndarray, a: int, b: int) -> np.ndarray | None:
    """Faces after merging vertex ``b`` into ``a`` (placed at the midpoint), or None when the
    collapse would break the mesh (link condition, duplicate or flipped faces)."""
    at_a, at_b = (f == a).any(1), (f == b).any(1)
    shared = at_a & at_b
    if shared.sum() != 2:
        return None
    nbr_a, nbr_b = set(f[at_a].ravel()) - {a}, set(f[at_b].ravel()) - {b}
    opposite = set(f[shared].ravel()) - {a, b}
    if (nbr_a & nbr_b) != opposite:  # link condition: no fold-over, no pinched neighbourhood
        return None
    mid = 0.5 * (v[a] + v[b])
    moved = at_a ^ at_b  # faces that survive and touch the merged vertex
    new = np.where(f[moved] == b, a, f[moved])
    old_pos = v[f[moved]]
    new_pos = old_pos.copy()
    new_pos[new == a] = mid
    n_old = np.cross(old_pos[:, 1] - old_pos[:, 0], old_pos[:, 2] - old_pos[:, 0])
    n_new = np.cross(new_pos[:, 1] - new_pos[:, 0], new_pos[:, 2] - new_pos[:, 0])
    if ((n_old * n_new).sum(1) <= 0).any():  # a face would flip or degenerate
        return None
    out = f.copy()
    out[moved] = new
    out = out[~shared]
    if np.unique(np.sort(out, axis=1), axis=0).shape[0] != out.shape[0]:
        return None
    return out


def collapse_shortest_edges(vertices: np.ndarray, faces: np.ndarray, count: int
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Remove exactly ``count`` vertices by collapsing interior edges, shortest first.

    Each collapse merges the two ends of an edge shared by two faces (neither end on the
    boundary) into their midpoint, and only where the mesh stays manifold and no face flips.

    Args:
        vertices: (V, 3) positions. faces: (F, 3) triangles.
        count: vertices to remove.

    Returns:
        (V - count, 3) positions and the faces that index them.
    """
    v = np.array(vertices, dtype=np.float64)
    f = np.array(faces, dtype=np.int64)
    for _ in range(count):
        edges, n_faces = _edge_face_counts(f)
        boundary = np.unique(edges[n_faces == 1])
        ok = (n_faces == 2) & ~np.isin(edges, boundary).any(1)
        cand = edges[ok]
        cand = cand[np.argsort(np.linalg.norm(v[cand[:, 0]] - v[cand[:, 1]], axis=1),
                               kind="stable")]
        for a, b in cand:
            new = _try_collapse(v, f, int(a), int(b))
            if new is not None:
                v[a] = 0.5 * (v[a] + v[b])
                f = new
                break
        else:
            raise ValueError(f"mesh: no edge can be collapsed without breaking the mesh "
                             f"({len(np.unique(f))} vertices left)")
        v, f = _drop_unused(v, f)
    return v, f


def simplify_to(vertices: np.ndarray, faces: np.ndarray, target: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Simplify a triangle mesh to exactly ``target`` vertices.

    Quadric decimation with a searched face budget; any small excess is removed with
    :func:`collapse_shortest_edges`. The result is checked with :func:`check_triangle_mesh`.

    Args:
        vertices: (V, 3) float positions. faces: (F, 3) integer triangles using every vertex.
        target: vertex count of the result, ``4 <= target < V``.

    Returns:
        (target, 3) float64 positions and (F', 3) int64 faces, every vertex used.
    """
    v = np.ascontiguousarray(vertices, dtype=np.float64)
    f = np.ascontiguousarray(faces, dtype=np.int64)
    n_in, n_faces = v.shape[0], f.shape[0]
    if not 4 <= target < n_in:
        raise ValueError(f"target: expected 4 <= target < {n_in} vertices, got {target}")
    lo, hi = 1, n_faces - 1
    # an interior edge collapse removes one vertex and two faces
    budget = int(np.clip(n_faces - 2 * (n_in - target), lo, hi))
    best: tuple[np.ndarray, np.ndarray] | None = None  # fewest vertices still >= target
    for _ in range(_MAX_SEARCH_STEPS):
        sv, sf = _decimate(v, f, budget)
        n = sv.shape[0]
        if n >= target and (best is None or n < best[0].shape[0]):
            best = (sv, sf)
        if n == target:
            break
        if n > target:
            hi = budget - 1
        else:
            lo = budget + 1
        if lo > hi:
            break
        budget = int(np.clip(budget + 2 * (target - n), lo, hi))
    if best is None:
        raise ValueError(f"mesh: simplification of {n_in} vertices never kept {target}")
    sv, sf = best
    if sv.shape[0] > target:
        sv, sf = collapse_shortest_edges(sv, sf, sv.shape[0] - target)
    check_triangle_mesh(sv, sf, f"mesh simplified to {target} vertices",
                        manifold=bool((_edge_face_counts(f)[1] <= 2).all()))
    return sv, sf
