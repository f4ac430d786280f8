"""Mesh hierarchy: exact level sizes, barycentric up-sampling, spirals, the on-disk cache."""

import os
import pickle
import warnings

import numpy as np
import pytest
import torch
import trimesh

from handdgp_models.hand import load_mano
from handdgp_models.model import simplify as simplify_mod
from handdgp_models.model import upsample
from handdgp_models.model.mesh_hierarchy import (
    barycentric_upsampling,
    build_hierarchy,
    hierarchy_sizes,
    load_hierarchy,
)
from handdgp_models.model.simplify import (
    check_triangle_mesh,
    collapse_shortest_edges,
    simplify_to,
)


@pytest.fixture(scope="module")
def hand():
    return load_mano()


@pytest.fixture(scope="module")
def hier(hand, tmp_path_factory):
    return load_hierarchy(hand.template, hand.faces, cache_dir=tmp_path_factory.mktemp("h"))


@pytest.fixture(scope="module")
def torus():
    # 70 x 43 = 3010 vertices: the halvings 1505, 753, 377, 189 round up three times
    t = trimesh.creation.torus(1.0, 0.35, major_sections=70, minor_sections=43)
    return np.asarray(t.vertices), np.asarray(t.faces, dtype=np.int64)


def _check_levels(h, sizes):
    assert h.sizes == sizes
    for level, (v, f) in enumerate(zip(h.vertices, h.faces, strict=True)):
        check_triangle_mesh(v, f, f"level {level}", manifold=True)
        s = h.spirals[level]
        assert s.shape == (sizes[level], 9)
        assert torch.equal(s[:, 0], torch.arange(sizes[level])) and s.max() < sizes[level]
    for level, (idx, w) in enumerate(zip(h.up_index, h.up_weight, strict=True)):
        assert idx.shape == w.shape == (sizes[level], 3)
        assert (w >= 0).all()
        torch.testing.assert_close(w.sum(1), torch.ones(sizes[level], dtype=w.dtype),
                                   atol=1e-12, rtol=0)
        # the three ids are the corners of one coarse triangle
        faces = {tuple(sorted(t)) for t in h.faces[level + 1].tolist()}
        assert all(tuple(sorted(r)) in faces for r in idx.tolist())


def test_level_sizes_halve_rounding_up():
    assert hierarchy_sizes(778) == [778, 389, 195, 98, 49]
    assert hierarchy_sizes(6890) == [6890, 3445, 1723, 862, 431]
    assert hierarchy_sizes(3010, 2) == [3010, 1505, 753]


def test_embedded_hand_hierarchy_is_exact_and_valid(hier, hand):
    _check_levels(hier, [778, 389, 195, 98, 49])
    np.testing.assert_array_equal(hier.vertices[0], hand.template.double().numpy())
    for level in range(4):
        # the coarse meshes stay close to the fine surface (a few mm on a ~20 cm hand)
        fine = torch.from_numpy(hier.vertices[level])
        interp = hier.up_matrix(level) @ torch.from_numpy(hier.vertices[level + 1])
        assert (interp - fine).norm(dim=1).median() < 0.005


def test_larger_mesh_gets_ceil_halving_sizes(torus):
    v, f = torus
    _check_levels(build_hierarchy(v, f), hierarchy_sizes(3010))


def test_simplify_falls_back_to_edge_collapses(hand, monkeypatch):
    """A simplifier that only honours coarse face budgets misses most exact counts; the
    remaining vertices are collapsed explicitly."""
    import fast_simplification

    real = fast_simplification.simplify
    monkeypatch.setattr(fast_simplification, "simplify", lambda v, f, target_count:
                        real(v, f, target_count=(target_count // 64 + 1) * 64))
    calls = []
    real_collapse = simplify_mod.collapse_shortest_edges

    def spy(v, f, count):
        calls.append(count)
        return real_collapse(v, f, count)

    monkeypatch.setattr(simplify_mod, "collapse_shortest_edges", spy)
    v, f = hand.template.double().numpy(), hand.faces.numpy()
    for target in (389, 301):
        sv, sf = simplify_to(v, f, target)
        assert sv.shape == (target, 3)
        check_triangle_mesh(sv, sf, manifold=True)
    assert calls and all(c > 0 for c in calls)


def test_edge_collapses_keep_a_closed_manifold(torus):
    v, f = torus
    before = trimesh.Trimesh(v, f, process=False)
    cv, cf = collapse_shortest_edges(v, f, 10)
    after = trimesh.Trimesh(cv, cf, process=False)
    assert cv.shape == (v.shape[0] - 10, 3)
    check_triangle_mesh(cv, cf, manifold=True)
    assert after.is_watertight and after.euler_number == before.euler_number


def test_simplify_and_build_reject_bad_input(hand):
    v, f = hand.template.double().numpy(), hand.faces.numpy()
    with pytest.raises(ValueError, match="target"):
        simplify_to(v, f, 778)
    with pytest.raises(ValueError, match="template"):
        build_hierarchy(np.vstack([v, [[0.0, 0.0, 0.0]]]), f)  # a vertex no face uses
    with pytest.raises(ValueError, match="template"):
        build_hierarchy(v, np.vstack([f, [[0, 0, 1]]]))
    with pytest.raises(ValueError, match="levels"):
        build_hierarchy(v, f, levels=9)


def test_upsampling_projects_onto_the_nearest_coarse_triangle(hier):
    """The interpolated point is the closest point of the whole coarse mesh (brute force)."""
    for level in (1, 3):
        fine = hier.vertices[level]
        cv, cf = hier.vertices[level + 1], hier.faces[level + 1]
        interp = (hier.up_matrix(level) @ torch.from_numpy(cv)).numpy()
        tris = cv[cf]
        pts = np.repeat(fine, len(cf), 0)
        closest = trimesh.triangles.closest_point(np.tile(tris, (len(fine), 1, 1)), pts)
        best = np.linalg.norm(closest - pts, axis=1).reshape(len(fine), len(cf)).min(1)
        np.testing.assert_allclose(np.linalg.norm(interp - fine, axis=1), best,
                                   rtol=0, atol=1e-12)


def test_upsampling_reproduces_linear_functions_on_the_coarse_surface():
    """Fine points that lie on coarse triangles (edge midpoints, random interior points) are
    reproduced exactly, and so is any affine function of position.

    Exact up to float64 rounding: positions are O(1), so 1e-12 leaves ~1e4 ulps of margin
    for the projection and barycentric solve, yet fails for any wrong triangle or weight."""
    coarse = trimesh.creation.icosphere(2)
    cv, cf = np.asarray(coarse.vertices), np.asarray(coarse.faces, dtype=np.int64)
    mid_v, _ = trimesh.remesh.subdivide(cv, cf)
    rng = np.random.default_rng(0)
    bary = rng.dirichlet(np.ones(3), size=len(cf))
    inner = (bary[:, :, None] * cv[cf]).sum(1)
    fine = np.vstack([mid_v, inner])
    idx, w = barycentric_upsampling(fine, cv, cf)
    assert idx.shape == w.shape == (len(fine), 3)
    assert (w >= 0).all() and np.allclose(w.sum(1), 1, rtol=0, atol=1e-14)
    A, c = rng.normal(size=(3, 4)), rng.normal(size=4)
    f_coarse = cv @ A + c
    interp = (w[:, :, None] * f_coarse[idx]).sum(1)
    np.testing.assert_allclose(interp, fine @ A + c, rtol=0, atol=1e-12)


def test_sparse_gather_equals_dense_matrix_product(hier):
    torch.manual_seed(0)
    for level in range(4):
        idx, w = hier.up_index[level], hier.up_weight[level]
        x = torch.randn(3, hier.sizes[level + 1], 5, dtype=torch.float64, requires_grad=True)
        sparse = upsample(x, idx, w)
        dense = hier.up_matrix(level) @ x
        torch.testing.assert_close(sparse, dense, rtol=0, atol=1e-12)
        g = torch.randn_like(sparse)
        (gs,) = torch.autograd.grad(sparse, x, g)
        (gd,) = torch.autograd.grad(dense, x, g)
        torch.testing.assert_close(gs, gd, rtol=0, atol=1e-12)


# --- the on-disk cache --------------------------------------------------------------------

def _same(a, b):
    assert a.sizes == b.sizes
    for x, y in zip(a.vertices + a.faces, b.vertices + b.faces, strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a.up_index + a.up_weight + a.spirals, b.up_index + b.up_weight + b.spirals,
                    strict=True):
        assert torch.equal(x, y)


def _load_quiet(hand, cache):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return load_hierarchy(hand.template, hand.faces, cache_dir=cache)


def test_cache_round_trip(hand, tmp_path):
    a = _load_quiet(hand, tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # no temporary file left behind
    b = _load_quiet(hand, tmp_path)
    _same(a, b)


def _truncate(p):
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _flip_bytes(p):
    data = bytearray(p.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 64] = bytes(255 - x for x in data[mid:mid + 64])
    p.write_bytes(bytes(data))


def _garbage(p):
    p.write_bytes(b"not a cache file")


def _empty(p):
    p.write_bytes(b"")


@pytest.mark.parametrize("damage", [_truncate, _flip_bytes, _garbage, _empty])
def test_damaged_cache_is_rebuilt_with_one_warning(hand, tmp_path, damage):
    good = _load_quiet(hand, tmp_path)
    (path,) = tmp_path.iterdir()
    damage(path)
    with pytest.warns(RuntimeWarning, match="mesh hierarchy cache") as record:
        rebuilt = load_hierarchy(hand.template, hand.faces, cache_dir=tmp_path)
    assert len(record) == 1
    _same(good, rebuilt)
    _same(good, _load_quiet(hand, tmp_path))  # healed: read back without a warning
    assert len(list(tmp_path.iterdir())) == 1


def test_stale_cache_is_rebuilt_with_one_warning(hand, tmp_path):
    """A valid file of another template under this template's name is not trusted."""
    good = _load_quiet(hand, tmp_path)
    (path,) = tmp_path.iterdir()
    other = tmp_path / "other"
    sphere = trimesh.creation.icosphere(2)
    load_hierarchy(sphere.vertices, sphere.faces, cache_dir=other)
    (other_file,) = other.iterdir()
    os.replace(other_file, path)
    with pytest.warns(RuntimeWarning, match="stale") as record:
        rebuilt = load_hierarchy(hand.template, hand.faces, cache_dir=tmp_path)
    assert len(record) == 1
    _same(good, rebuilt)


class _Marker:
    """Unpickling this would create a folder: proof that loading runs code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (str(self.path),)


def test_loading_a_cache_never_unpickles(hand, tmp_path):
    good = _load_quiet(hand, tmp_path)
    (path,) = tmp_path.iterdir()
    marker = tmp_path / "ran"
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["spirals0"] = np.array([_Marker(marker)], dtype=object)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    assert b"mkdir" in pickle.dumps(_Marker(marker))
    with pytest.warns(RuntimeWarning) as record:
        rebuilt = load_hierarchy(hand.template, hand.faces, cache_dir=tmp_path)
    assert len(record) == 1 and not marker.exists()
    _same(good, rebuilt)


def test_embedded_body_gets_the_same_kind_of_hierarchy(tmp_path):
    """The procedural body's decimation leaves duplicate faces unless they are dropped."""
    from handdgp_models.body import load_smpl
    from handdgp_models.model.mesh_hierarchy import hierarchy_sizes
    from handdgp_models.model.simplify import check_triangle_mesh

    body = load_smpl()
    h = load_hierarchy(body.template, body.faces, cache_dir=tmp_path)
    assert h.sizes == hierarchy_sizes(body.template.shape[0])
    for level, (v, f) in enumerate(zip(h.vertices, h.faces, strict=True)):
        check_triangle_mesh(v, f, f"level {level}")
