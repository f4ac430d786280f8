"""Loading official-layout MANO pickles without chumpy, and refusing anything that runs code."""

import io
import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from handdgp_models.hand import default_hand_data, load_mano, safe_load_pickle


class Ch:
    """Mimics chumpy.ch.Ch: a plain object whose pickled state keeps the array under 'x'."""

    __module__ = "chumpy.ch"

    def __init__(self, x):
        self.x = x
        self._dirty_vars = set()


class Select:
    """Mimics a chumpy.reordering node: its value under 'a'."""

    __module__ = "chumpy.reordering"

    def __init__(self, a):
        self.a = a
        self.idxs = np.arange(3)


def _register_fake_chumpy(monkeypatch):
    """Make the stand-ins importable as chumpy.ch.Ch / chumpy.reordering.Select."""
    for mod, name, cls in (("chumpy.ch", "Ch", Ch), ("chumpy.reordering", "Select", Select)):
        m = types.ModuleType(mod)
        setattr(m, name, cls)
        monkeypatch.setitem(sys.modules, mod, m)
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))


def _official_layout_pickle(monkeypatch, protocol: int) -> bytes:
    d = default_hand_data()
    _register_fake_chumpy(monkeypatch)
    data = {
        "v_template": d["v_template"],
        "f": d["f"],
        "weights": d["weights"],
        "kintree_table": d["kintree_table"],
        "J_regressor": sp.csc_matrix(d["J_regressor"]),
        "shapedirs": Ch(d["shapedirs"]),
        "posedirs": Select(d["posedirs"]),
        "hands_components": d["hands_components"],
        "hands_mean": d["hands_mean"],
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    blob = pickle.dumps(data, protocol=protocol)
    assert b"chumpy.ch" in blob and b"csc_matrix" in blob
    return blob


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_official_layout_loads_without_chumpy(tmp_path, monkeypatch, protocol):
    blob = _official_layout_pickle(monkeypatch, protocol)
    monkeypatch.undo()  # chumpy is gone again while loading
    assert "chumpy" not in sys.modules
    data = safe_load_pickle(blob)
    assert isinstance(data["shapedirs"], np.ndarray) and data["shapedirs"].shape == (778, 3, 10)
    assert isinstance(data["posedirs"], np.ndarray)
    assert sp.issparse(data["J_regressor"])
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(blob)
    hand = load_mano(path)
    ref = load_mano()
    pose = torch.from_numpy(ref.sample_pose(3, np.random.default_rng(1)))
    pose = torch.cat([torch.randn(3, 3) * 0.5, pose], dim=1)
    shape = torch.randn(3, 10)
    for a, b in zip(hand(pose, shape), ref(pose, shape), strict=True):
        torch.testing.assert_close(a, b)
    assert not hand.is_default
    assert hand.sample_pose(5, np.random.default_rng(0)).shape == (5, 45)


def test_nested_chumpy_nodes_become_arrays(monkeypatch):
    _register_fake_chumpy(monkeypatch)
    blob = pickle.dumps({"v": Select(Ch(np.arange(6.0).reshape(2, 3)))}, protocol=2)
    monkeypatch.undo()
    out = safe_load_pickle(blob)
    np.testing.assert_array_equal(out["v"], np.arange(6.0).reshape(2, 3))


def test_npz_loads(tmp_path):
    path = tmp_path / "mano.npz"
    np.savez(path, **default_hand_data())
    hand = load_mano(path)
    torch.testing.assert_close(hand.template, load_mano().template)


def test_left_hand_from_file_name(tmp_path):
    path = tmp_path / "MANO_LEFT.npz"
    np.savez(path, **default_hand_data())
    assert load_mano(path).mano.is_rhand is False


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class _Unknown:
    pass


def test_rejects_code_execution():
    with pytest.raises(pickle.UnpicklingError, match="system"):
        safe_load_pickle(pickle.dumps({"v_template": _Evil()}))


def test_rejects_unknown_class():
    with pytest.raises(pickle.UnpicklingError, match="_Unknown"):
        safe_load_pickle(pickle.dumps([_Unknown()]))


def test_rejects_builtin_eval():
    class _Eval:
        def __reduce__(self):
            return (eval, ("1 + 1",))

    with pytest.raises(pickle.UnpicklingError, match="eval"):
        safe_load_pickle(pickle.dumps(_Eval()))


def test_plain_containers_and_file_objects(tmp_path):
    obj = {"a": np.arange(5, dtype=np.float32), "b": [1, 2.5, "x"], "c": (np.float64(3.0),)}
    for protocol in (2, 5):
        out = safe_load_pickle(io.BytesIO(pickle.dumps(obj, protocol=protocol)))
        np.testing.assert_array_equal(out["a"], obj["a"])
        assert out["b"] == obj["b"] and out["c"][0] == 3.0
    with pytest.raises(TypeError, match="path_or_fileobj"):
        safe_load_pickle(3)
