"""MobRecon's template: OpenMesh's neighbour order, MobRecon's spirals, ``transform.pkl`` /
``j_reg.npy`` reading, and the stored mesh of a checkpoint."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from handdgp_models.model.halfedge import vertex_rings
from handdgp_models.model.mobrecon import (
    MOBRECON_TO_OPENPOSE,
    hierarchy_from_transform,
    load_mobrecon_template,
    mobrecon_spirals,
    read_transform,
)
from handdgp_models.model.stored_mesh import StoredMesh

from . import release_reference as rr

FIXTURE = Path(__file__).parent / "data" / "openmesh_spirals.json"
MESHES = json.loads(FIXTURE.read_text())["meshes"]


@pytest.mark.parametrize("name", sorted(MESHES))
def test_neighbour_order_is_openmeshs(name):
    """Recorded with openmesh 1.2.1 (``data/make_openmesh_fixture.py``): the 1-rings of
    ``mesh.vv(v)``, including meshes with boundaries, rejected non-manifold faces and
    isolated parts."""
    mesh = MESHES[name]
    rings, rejected = vertex_rings(np.array(mesh["faces"]), len(mesh["vertices"]))
    assert rings == mesh["rings"]
    assert len(mesh["faces"]) - rejected == mesh["faces_added"]


@pytest.mark.parametrize("name", sorted(MESHES))
def test_spirals_are_mobrecons(name):
    """Recorded with MobRecon's ``extract_spirals`` on those OpenMesh meshes (including the
    nearest-vertex fill where the rings run out)."""
    mesh = MESHES[name]
    verts, faces = np.array(mesh["vertices"]), np.array(mesh["faces"])
    if mesh["faces_added"] < len(faces):
        with pytest.warns(RuntimeWarning, match="non-manifold faces left out"):
            got = mobrecon_spirals(verts, faces)
    else:
        got = mobrecon_spirals(verts, faces)
    np.testing.assert_array_equal(got, np.array(mesh["spirals"]))


@pytest.mark.skipif(importlib.util.find_spec("openmesh") is None,
                    reason="openmesh (optional, built from source) is not installed")
@settings(max_examples=60, deadline=None)
@given(st.integers(4, 30).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.lists(st.integers(0, n - 1), min_size=3, max_size=3,
                                  unique=True), min_size=1, max_size=60))))
def test_neighbour_order_agrees_with_openmesh_on_random_meshes(case):
    import openmesh as om

    n, faces = case
    mesh = om.TriMesh(np.zeros((n, 3)), np.array(faces))
    rings, rejected = vertex_rings(np.array(faces), n)
    assert rings == [[u.idx() for u in mesh.vv(v)] for v in mesh.vertices()]
    assert len(faces) - rejected == mesh.n_faces()


def _small_template(folder: Path, rng: np.random.Generator):
    """A two-level hierarchy from the fixture's sphere: 42 vertices up-sampled from 12, with
    negative weights and explicit zeros."""
    mesh = MESHES["closed_sphere"]
    fine_v, fine_f = np.array(mesh["vertices"]), np.array(mesh["faces"])
    coarse_v = fine_v[:12]
    coarse_f = np.array(MESHES["components"]["faces"][:4])  # a tetrahedron on ids 0-3
    index = np.stack([rng.choice(12, 3, replace=False) for _ in range(42)])
    weight = rng.normal(size=(42, 3))
    weight[::5, 1] = 0.0
    regressor = rng.random((21, 42))
    rr.write_mobrecon_template(folder, [fine_v, coarse_v], [fine_f, coarse_f],
                               [(index, weight)], regressor)
    return index, weight.astype(np.float32), regressor


def test_transform_pkl_keeps_the_stored_up_sampling_rows(tmp_path):
    index, weight, regressor = _small_template(tmp_path, np.random.default_rng(0))
    data = read_transform(tmp_path / "transform.pkl")
    hier = hierarchy_from_transform(data, "t")
    assert hier.sizes == [42, 12]
    order = np.argsort(index, axis=1)  # SciPy stores each row's entries by column
    np.testing.assert_array_equal(hier.up_index[0].numpy(), np.take_along_axis(index, order, 1))
    np.testing.assert_array_equal(hier.up_weight[0].numpy(),
                                  np.take_along_axis(weight, order, 1).astype(np.float64))
    assert (hier.up_weight[0] < 0).any() and (hier.up_weight[0] == 0).sum() == 9
    stored = load_mobrecon_template(tmp_path)
    np.testing.assert_allclose(stored.regressor.numpy(), regressor)
    np.testing.assert_array_equal(stored.hierarchy.spirals[0].numpy(),
                                  np.array(MESHES["closed_sphere"]["spirals"]))
    assert sorted(MOBRECON_TO_OPENPOSE) == list(range(21))


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("up_transform"), "no list 'up_transform'"),
    (lambda d: d["face"].__setitem__(1, d["face"][1] + 100), r"face\[1\] must be"),
    (lambda d: d["up_transform"].__setitem__(0, d["up_transform"][0].T.tocsc()),
     r"up_transform\[0\] must be a sparse \(42, 12\)"),
])
def test_a_malformed_transform_pkl_is_named(tmp_path, change, message):
    import pickle

    _small_template(tmp_path, np.random.default_rng(1))
    path = tmp_path / "transform.pkl"
    with open(path, "rb") as f:
        data = pickle.load(f)  # written by the test itself
    change(data)
    with open(path, "wb") as f:
        pickle.dump(data, f)
    with pytest.raises(ValueError, match=message) as info:
        load_mobrecon_template(tmp_path)
    assert str(path) in str(info.value)


def test_missing_template_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="no .*transform.pkl and no .*j_reg.npy"):
        load_mobrecon_template(tmp_path)


def test_the_stored_mesh_round_trips_and_is_checked(tmp_path):
    _small_template(tmp_path, np.random.default_rng(2))
    stored = load_mobrecon_template(tmp_path)
    state = stored.to_state()
    back = StoredMesh.from_state(state, "checkpoint x")
    for a, b in zip(back.hierarchy.up_weight + back.hierarchy.spirals,
                    stored.hierarchy.up_weight + stored.hierarchy.spirals, strict=True):
        assert torch.equal(a, b)
    bad = dict(state, **{"up_index.0": state["up_index.0"] + 12})
    with pytest.raises(ValueError, match="checkpoint x: mesh entries 'up_index.0'"):
        StoredMesh.from_state(bad, "checkpoint x")
    bad = dict(state, **{"spirals.1": state["spirals.1"][:, :4]})
    with pytest.raises(ValueError, match="different lengths"):
        StoredMesh.from_state(bad, "checkpoint x")
    with pytest.raises(ValueError, match="'regressor' is missing"):
        StoredMesh.from_state({k: v for k, v in state.items() if k != "regressor"}, "x")


def test_a_stored_mesh_needs_a_checkpoint(tmp_path):
    from handdgp_models.config import load_config
    from handdgp_models.run import Run

    with pytest.raises(ValueError, match="model.mesh: 'stored' .*train --init"):
        Run(load_config("tiny", ['model.mesh="stored"']), tmp_path)
