"""MobRecon's mesh template as this project's hierarchy: ``template/transform.pkl`` and
``template/j_reg.npy`` of MobRecon's repository (SeanChenxy/HandMesh, MIT licence), which the
official HandDGP weights were trained on.

``transform.pkl`` is a pickle of a dict: ``vertices`` and ``face`` (one array per level, fine to
coarse: 778/389/195/98/49 vertices for the hand), ``down_transform``/``up_transform`` (SciPy
CSC matrices between neighbouring levels) and ``adj``. It is read through
:func:`~handdgp_models.safe_pickle.safe_load_pickle` (never executing anything from the file;
SciPy matrices are rebuilt from their ``data``/``indices``/``indptr`` arrays). Its up-sampling
rows store exactly three entries, some of them explicit zeros, with weights outside [0, 1]
(rows sum to 0.84-1.16): they are kept as they are. Spirals are not stored: MobRecon computes
them from each level's faces with OpenMesh, and :func:`mobrecon_spirals` reproduces that
computation (OpenMesh's neighbour order from :mod:`.halfedge`). ``j_reg.npy`` is the
(21, 778) joint regressor in MANO's joint order with the fingertips appended (index, middle,
little, ring, thumb: vertices 333, 444, 672, 555, 744); :data:`MOBRECON_TO_OPENPOSE`
reorders it as the release does.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from ..safe_pickle import PickleLoadError, safe_load_pickle
from .halfedge import vertex_rings
from .mesh_hierarchy import SPIRAL_LENGTH, MeshHierarchy
from .stored_mesh import StoredMesh

__all__ = ["MOBRECON_TO_OPENPOSE", "REGRESSOR_FILE", "TRANSFORM_FILE", "hierarchy_from_transform",
           "load_mobrecon_template", "mobrecon_spirals", "read_regressor", "read_transform",
           "sparse_rows"]

TRANSFORM_FILE = "transform.pkl"
REGRESSOR_FILE = "j_reg.npy"
#: Row ``j`` of the OpenPose-ordered regressor is row ``MOBRECON_TO_OPENPOSE[j]`` of
#: ``j_reg.npy`` (MANO's joints, then the tips of index, middle, little, ring and thumb).
MOBRECON_TO_OPENPOSE = (0, 13, 14, 15, 20, 1, 2, 3, 16, 4, 5, 6, 17, 10, 11, 12, 19, 7, 8, 9,
                        18)


def _next_ring(rings: list[list[int]], last: list[int], seen: list[int]) -> list[int]:
    """The vertices around ``last`` (a ring) not in it nor in ``seen``, in MobRecon's order:
    for each ring vertex, its neighbours after the first one on the ring, then those before."""
    out: list[int] = []
    last_set, seen_set = set(last), set(seen)

    def new(u: int) -> bool:
        return u not in last_set and u not in seen_set and u not in out

    for v in last:
        ring = rings[v]
        first = next((k for k, u in enumerate(ring) if u in last_set), len(ring))
        for u in ring[first + 1:] + ring[:first]:
            if new(u):
                out.append(u)
    return out


def _spiral(v: int, rings: list[list[int]], points: np.ndarray, tree, length: int) -> list[int]:
    spiral, last = [v], list(rings[v])
    nxt = _next_ring(rings, last, spiral)
    spiral += last
    while len(spiral) + len(nxt) < length and nxt:
        last = nxt
        nxt = _next_ring(rings, last, spiral)
        spiral += last
    if nxt:
        return (spiral + nxt)[:length]
    # the rings ran out: the nearest vertices in space, the vertex itself first
    _, ids = tree.query(points[v], k=min(length, len(points)))
    ids = np.atleast_1d(ids).tolist()
    return (ids + ids[-1:] * length)[:length]


def mobrecon_spirals(vertices: np.ndarray, faces: np.ndarray,
                     length: int = SPIRAL_LENGTH) -> np.ndarray:
    """Spirals as MobRecon computes them (dilation 1).

    Each spiral is the vertex, its 1-ring in OpenMesh's ``vv`` order, then the following
    rings (:func:`_next_ring`) until ``length`` entries are reached; when a vertex's rings run
    out first, its spiral is its ``length`` nearest vertices in space instead.

    Args:
        vertices: (V, 3) positions. faces: (F, 3) vertex ids, added in order as OpenMesh
            adds them (faces OpenMesh rejects as non-manifold are skipped, with a warning).
        length: entries per spiral.

    Returns:
        (V, length) int64.
    """
    from scipy.spatial import cKDTree

    points = np.asarray(vertices, dtype=np.float64)
    rings, rejected = vertex_rings(faces, len(points))
    if rejected:
        warnings.warn(f"{rejected} non-manifold faces left out of the spirals (as OpenMesh "
                      "does)", RuntimeWarning, stacklevel=2)
    tree = cKDTree(points)
    return np.array([_spiral(v, rings, points, tree, length) for v in range(len(points))],
                    dtype=np.int64).reshape(len(points), length)


def sparse_rows(matrix, source: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    """The stored entries of each row of a SciPy sparse matrix as ``(index, weight)``, each
    (rows, k) with k the most entries in a row (shorter rows padded with weight 0 at column
    0). Explicit zeros are kept.

    Raises:
        ValueError: a row without entries or a non-finite weight, naming ``source`` and ``key``.
    """
    csr = matrix.tocsr()  # keeps explicit zeros
    counts = np.diff(csr.indptr)
    if counts.size and counts.min() == 0:
        raise ValueError(f"{source}: {key} row {int(np.argmin(counts))} has no entry")
    if not np.isfinite(csr.data).all():
        raise ValueError(f"{source}: {key} holds NaN or Inf")
    k = int(counts.max()) if counts.size else 1
    index = np.zeros((csr.shape[0], k), dtype=np.int64)
    weight = np.zeros((csr.shape[0], k), dtype=np.float64)
    for r in range(csr.shape[0]):
        lo, hi = csr.indptr[r], csr.indptr[r + 1]
        index[r, : hi - lo] = csr.indices[lo:hi]
        weight[r, : hi - lo] = csr.data[lo:hi]
    return index, weight


def _level_arrays(data: dict, key: str, source: str) -> list:
    value = data.get(key)
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"{source}: no list {key!r} (expected MobRecon's transform.pkl)")
    return list(value)


def read_transform(path: str | os.PathLike) -> dict:
    """Read MobRecon's ``transform.pkl`` with the restricted unpickler and check its layout.

    Returns:
        ``{"vertices": [(V_l, 3) float64], "faces": [(F_l, 3) int64], "up": [sparse
        (V_l, V_{l+1})]}``, fine to coarse.

    Raises:
        ValueError: naming the file: unreadable, unsafe (a global other than arrays and SciPy
            matrices) or not in MobRecon's layout (missing lists, wrong shapes, ids out of
            range, matrices that do not connect neighbouring levels).
    """
    import scipy.sparse as sp

    source = str(path)
    try:
        data = safe_load_pickle(path)
    except OSError as exc:
        raise ValueError(f"{source}: cannot be read ({exc.strerror})") from exc
    except PickleLoadError as exc:
        raise ValueError(str(exc)) from exc
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a dict (MobRecon's transform.pkl), got "
                         f"{type(data).__name__}")
    verts, faces = _level_arrays(data, "vertices", source), _level_arrays(data, "face", source)
    up = _level_arrays(data, "up_transform", source)
    if len(faces) != len(verts) or len(up) != len(verts) - 1 or len(up) < 1:
        raise ValueError(f"{source}: {len(verts)} vertex levels, {len(faces)} face levels and "
                         f"{len(up)} up_transform matrices do not form a hierarchy")
    out: dict = {"vertices": [], "faces": [], "up": []}
    for level, (v, f) in enumerate(zip(verts, faces, strict=True)):
        v, f = np.asarray(v), np.asarray(f)
        if v.ndim != 2 or v.shape[1] != 3 or v.dtype.kind != "f" or not np.isfinite(v).all():
            raise ValueError(f"{source}: vertices[{level}] must be finite (V, 3) floats, got "
                             f"{v.dtype} {v.shape}")
        if f.ndim != 2 or f.shape[1] != 3 or f.dtype.kind not in "iu" or (
                f.size and (f.min() < 0 or f.max() >= len(v))):
            raise ValueError(f"{source}: face[{level}] must be (F, 3) vertex ids below "
                             f"{len(v)}, got {f.dtype} {f.shape}")
        out["vertices"].append(v.astype(np.float64))
        out["faces"].append(f.astype(np.int64))
    for level, m in enumerate(up):
        want = (len(out["vertices"][level]), len(out["vertices"][level + 1]))
        if not sp.issparse(m) or m.shape != want:
            got = m.shape if sp.issparse(m) else type(m).__name__
            raise ValueError(f"{source}: up_transform[{level}] must be a sparse {want} matrix "
                             f"(level {level + 1} to level {level}), got {got}")
        out["up"].append(m)
    return out


def hierarchy_from_transform(data: dict, source: str,
                             spiral_length: int = SPIRAL_LENGTH) -> MeshHierarchy:
    """The :class:`MeshHierarchy` of a :func:`read_transform` result: its vertices and faces,
    its up-sampling rows as stored (non-convex weights and explicit zeros kept) and
    :func:`mobrecon_spirals` on every level."""
    up_index, up_weight = [], []
    for level, m in enumerate(data["up"]):
        index, weight = sparse_rows(m, source, f"up_transform[{level}]")
        up_index.append(torch.from_numpy(index))
        up_weight.append(torch.from_numpy(weight))
    spirals = [torch.from_numpy(mobrecon_spirals(v, f, spiral_length))
               for v, f in zip(data["vertices"], data["faces"], strict=True)]
    return MeshHierarchy(list(data["vertices"]), list(data["faces"]), up_index, up_weight,
                         spirals)


def read_regressor(path: str | os.PathLike, num_vertices: int) -> np.ndarray:
    """MobRecon's ``j_reg.npy`` (21, V) in OpenPose keypoint order (float64).

    Read with ``allow_pickle=False`` (an array file never runs code).

    Raises:
        ValueError: naming the file: unreadable, not a finite (21, ``num_vertices``) array.
    """
    try:
        reg = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable .npy array ({exc})") from exc
    want = (len(MOBRECON_TO_OPENPOSE), int(num_vertices))
    if reg.shape != want or reg.dtype.kind not in "fiu" or not np.isfinite(reg).all():
        raise ValueError(f"{path}: expected a finite {want} joint regressor, got {reg.dtype} "
                         f"{reg.shape}")
    return reg.astype(np.float64)[list(MOBRECON_TO_OPENPOSE)]


def load_mobrecon_template(folder: str | os.PathLike) -> StoredMesh:
    """MobRecon's hierarchy, spirals and regressor from its ``template`` folder.

    Args:
        folder: holds :data:`TRANSFORM_FILE` and :data:`REGRESSOR_FILE`.

    Raises:
        ValueError: a missing, unsafe or malformed file, naming it.
    """
    folder = Path(folder)
    paths = [folder / TRANSFORM_FILE, folder / REGRESSOR_FILE]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValueError(f"--mobrecon-template: no {' and no '.join(missing)} (the template "
                         "folder of MobRecon's repository, github.com/SeanChenxy/HandMesh)")
    data = read_transform(paths[0])
    hierarchy = hierarchy_from_transform(data, str(paths[0]))
    regressor = read_regressor(paths[1], hierarchy.sizes[0])
    return StoredMesh(hierarchy, torch.from_numpy(regressor),
                      f"MobRecon template ({TRANSFORM_FILE}, {REGRESSOR_FILE})")
