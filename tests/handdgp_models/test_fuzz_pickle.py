"""Crafted pickles against the restricted unpickler and its callers (MANO files, HO3D metas).

Every case either loads or raises :class:`PickleLoadError` naming the file; the time bounds
below are generous hang guards (the conversions take milliseconds), not performance checks.
"""

import os
import pickle
import sys
import time
import types

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handdgp_models.hand import PickleLoadError, load_mano, safe_load_pickle
from handdgp_models.safe_pickle import MAX_DEPTH, MAX_ELEMENTS

HANG_GUARD_S = 5.0


def _shared_nested(depth: int, leaf=1.0) -> list:
    """``[x, x]`` nested ``depth`` times: ``depth`` distinct lists, 2**depth paths to the leaf."""
    x = [leaf]
    for _ in range(depth):
        x = [x, x]
    return x


def _timed(fn, *args):
    t0 = time.process_time()  # CPU time: a hang, not a busy machine
    try:
        return fn(*args), None
    except Exception as exc:  # returned to the caller, which asserts on it
        return None, exc
    finally:
        assert time.process_time() - t0 < HANG_GUARD_S


class Ch:
    """Pickles as chumpy.ch.Ch with its value under 'x' (as chumpy does)."""

    __module__ = "chumpy.ch"

    def __init__(self, x):
        self.x = x


@pytest.fixture
def fake_chumpy(monkeypatch):
    mod = types.ModuleType("chumpy.ch")
    mod.Ch = Ch
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    monkeypatch.setitem(sys.modules, "chumpy.ch", mod)
    return monkeypatch


def test_shared_reference_depth_40_converts_once_and_stays_shared(tmp_path):
    path = tmp_path / "shared.pkl"
    path.write_bytes(pickle.dumps({"v": _shared_nested(40)}, protocol=2))
    assert path.stat().st_size < 400
    out, exc = _timed(safe_load_pickle, path)
    assert exc is None
    v = out["v"]
    assert v[0] is v[1]  # shared references are kept, not expanded
    for _ in range(40):
        v = v[0]
    assert v == [1.0]


@pytest.mark.parametrize("depth", [16, 25, 40, 60])
def test_shared_reference_chumpy_value_refused(tmp_path, fake_chumpy, depth):
    path = tmp_path / "chumpy_bomb.pkl"
    path.write_bytes(pickle.dumps({"x": Ch(_shared_nested(depth))}, protocol=2))
    fake_chumpy.undo()
    out, exc = _timed(safe_load_pickle, path)
    if 2**depth <= MAX_ELEMENTS:
        assert exc is None and out["x"].size == 2**depth
    else:
        assert isinstance(exc, PickleLoadError)
        assert "chumpy_bomb.pkl" in str(exc) and "expand" in str(exc)


def test_shared_reference_mano_file_refused_quickly(tmp_path):
    path = tmp_path / "MANO_RIGHT.pkl"
    bomb = _shared_nested(40)
    data = {k: bomb for k in ("v_template", "f", "weights", "kintree_table", "J_regressor",
                              "shapedirs", "posedirs")}
    path.write_bytes(pickle.dumps(data, protocol=2))
    _, exc = _timed(load_mano, path)
    assert isinstance(exc, ValueError)
    assert "MANO_RIGHT.pkl" in str(exc) and "v_template" in str(exc)


def _cyclic_list():
    a = [1]
    a.append(a)
    return a


def _cyclic_dict():
    d = {"a": [0]}
    d["a"].append(d)
    return d


def _cyclic_through_chumpy():
    c = Ch(None)
    c.x = [c]
    return {"shapedirs": c}


@pytest.mark.parametrize("make", [_cyclic_list, _cyclic_dict, _cyclic_through_chumpy])
def test_cycles_refused_naming_the_file(tmp_path, fake_chumpy, make):
    path = tmp_path / "cyclic.pkl"
    path.write_bytes(pickle.dumps(make(), protocol=2))
    fake_chumpy.undo()
    _, exc = _timed(safe_load_pickle, path)
    assert isinstance(exc, PickleLoadError)
    assert "cyclic.pkl" in str(exc) and "cycle" in str(exc)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 5, 5_000, 200_000])
def test_deep_nesting_refused_without_recursion_error(tmp_path, depth):
    # Protocol-0 opcodes: `depth` MARKs, then LIST closes the innermost, and so on outwards.
    blob = b"(" * depth + b"l" * depth + b"."
    path = tmp_path / "deep.pkl"
    path.write_bytes(blob)
    _, exc = _timed(safe_load_pickle, path)
    assert isinstance(exc, PickleLoadError)
    assert "deep.pkl" in str(exc) and "deeper" in str(exc)


def test_nesting_within_the_limit_loads():
    depth = MAX_DEPTH - 1
    out = safe_load_pickle(b"(" * depth + b"l" * depth + b".")
    for _ in range(depth - 1):
        out = out[0]
    assert out == []


_RECONSTRUCT = np.zeros(1).__reduce__()[0]  # numpy's array reconstruction helper


class _Reduce:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


_MALICIOUS = {
    "os.system": _Reduce(os.system, "echo pwned"),
    "eval": _Reduce(eval, "1 + 1"),
    "getattr": _Reduce(getattr, 1, "real"),
    "bytearray(size)": _Reduce(bytearray, 10**12),
    "ndarray(shape)": _Reduce(np.ndarray, (10**6, 10**6)),
    "_reconstruct(shape)": _Reduce(_RECONSTRUCT, np.ndarray, (10**7,), b"b"),
    "_reconstruct(subclass)": _Reduce(_RECONSTRUCT, np.matrix, (0,), b"b"),
}


@pytest.mark.parametrize("name", list(_MALICIOUS))
def test_code_and_size_only_allocations_refused(tmp_path, name):
    path = tmp_path / "evil.pkl"
    try:
        path.write_bytes(pickle.dumps({"v": _MALICIOUS[name]}, protocol=2))
    except Exception:
        pytest.skip(f"this Python cannot pickle {name}")
    _, exc = _timed(safe_load_pickle, path)
    assert isinstance(exc, PickleLoadError) and isinstance(exc, pickle.UnpicklingError)
    assert "evil.pkl" in str(exc)


def _valid_model_pickle() -> bytes:
    return pickle.dumps({"v_template": np.arange(12.0).reshape(4, 3), "f": [[0, 1, 2]],
                         "name": "x", "t": (1, 2.5, None), "b": bytearray(b"ab")}, protocol=2)


def test_every_truncation_of_a_pickle_is_refused():
    blob = _valid_model_pickle()
    assert safe_load_pickle(blob)["name"] == "x"
    for cut in range(len(blob)):
        with pytest.raises(PickleLoadError, match="pickle"):
            safe_load_pickle(blob[:cut])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_load_or_refuse(data):
    try:
        safe_load_pickle(data)
    except PickleLoadError as exc:
        assert "<pickle bytes>" in str(exc)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_pickles_load_or_refuse(data):
    blob = bytearray(_valid_model_pickle())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    t0 = time.process_time()  # CPU time: a hang, not a busy machine
    try:
        safe_load_pickle(bytes(blob))
    except PickleLoadError:
        pass
    assert time.process_time() - t0 < HANG_GUARD_S


class _DtypeWithState:
    """Pickles as numpy does a dtype: ``dtype(spec, False, True)`` then BUILD with ``state``."""

    def __init__(self, spec, state):
        self.spec, self.state = spec, state

    def __reduce__(self):
        return (np.dtype, (self.spec, False, True), self.state)


@pytest.mark.parametrize("state", [
    (3, "<", 1313754641, -503316481, -1, 0),  # a mutated file that crashed numpy's __setstate__
    (3, "<", None, None, None, 8, 8, 0, {"x": 1}),
    (3, "<", None, ("a",), {"a": (np.dtype("f8"), 0)}, 8, 8, 16),
    (3, "<", None, None, None, 12345, -1, 0),
    (9, "<", None, None, None, -1, -1, 0),
    "not a tuple",
])
def test_a_malformed_dtype_state_is_refused_without_touching_numpy(state):
    blob = pickle.dumps({"a": _DtypeWithState("f8", state)}, protocol=2)
    with pytest.raises(PickleLoadError, match="dtype"):
        safe_load_pickle(blob)
    assert np.arange(3.0).sum() == 3.0  # float64 still works


@pytest.mark.parametrize("dtype", ["<f8", ">i4", "|b1", "<U5", "|S3", "<c16", ">u2"])
def test_arrays_of_plain_dtypes_round_trip(dtype):
    values = np.array([1, 0, 1]).astype(dtype)
    for protocol in (2, 4):
        blob = pickle.dumps({"v": values, "t": values.dtype}, protocol=protocol)
        out, expected = safe_load_pickle(blob), pickle.loads(blob)  # the standard unpickler
        np.testing.assert_array_equal(out["v"], values)
        assert out["v"].dtype == expected["v"].dtype and out["t"] == expected["t"] == values.dtype


def test_object_and_structured_dtypes_are_refused():
    for value in (np.array([1, "a"], dtype=object), np.zeros(2, dtype=[("a", "f4")])):
        with pytest.raises(PickleLoadError, match="dtype"):
            safe_load_pickle(pickle.dumps(value, protocol=2))
