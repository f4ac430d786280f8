"""Annotation cache: build once, memory-map later, rebuild what is stale or damaged."""

import json
import os
import pickle
import threading
import time
import warnings

import numpy as np
import pytest

from handdgp_models.data import FreiHAND, array_cache
from handdgp_models.data.array_cache import ArrayCache, default_cache_dir
from tests.handdgp_models.fixtures import write_freihand


def _write(path, data):
    path.write_text(json.dumps(np.asarray(data).tolist()))


def _load(cache, path, shape=(2, 3)):
    """``cache.load`` and the warnings it emitted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        arr = cache.load(path, shape)
    return arr, [str(w.message) for w in caught]


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "data" / "training_xyz.json"
    path.parent.mkdir()
    data = np.random.default_rng(0).normal(size=(4, 2, 3))
    _write(path, data)
    return path, data.astype(np.float32)


def test_first_load_builds_then_maps(tmp_path, source, monkeypatch):
    path, data = source
    cache = ArrayCache(tmp_path / "cache")
    arr, warned = _load(cache, path)
    assert warned == []
    assert isinstance(arr, np.memmap) and arr.dtype == np.float32 and arr.shape == (4, 2, 3)
    np.testing.assert_array_equal(arr, data)
    npy, meta = cache.paths(path)
    assert npy.is_file() and meta.is_file()
    assert sorted(p.name for p in cache.directory.iterdir()) == sorted([npy.name, meta.name])

    def fail(*args, **kwargs):
        raise AssertionError("a valid entry must not be parsed again")

    monkeypatch.setattr(array_cache, "parse_json_array", fail)
    again, warned = _load(ArrayCache(tmp_path / "cache"), path)
    assert warned == [] and isinstance(again, np.memmap) and not again.flags.writeable
    np.testing.assert_array_equal(again, data)


def test_changed_source_is_rebuilt(tmp_path, source):
    path, _ = source
    cache = ArrayCache(tmp_path / "cache")
    cache.load(path, (2, 3))
    new = np.arange(6 * 6, dtype=np.float64).reshape(6, 2, 3) / 7
    _write(path, new)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a later modification
    arr, warned = _load(cache, path)
    assert len(warned) == 1 and "stale" in warned[0] and "training_xyz.json" in warned[0]
    np.testing.assert_array_equal(arr, new.astype(np.float32))
    assert _load(cache, path)[1] == []  # rebuilt once, valid afterwards

    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2 * 10**9))  # touched only
    arr, warned = _load(cache, path)
    assert len(warned) == 1 and "stale" in warned[0]
    # a different entry shape is another key too
    with pytest.warns(UserWarning, match="stale"), pytest.raises(ValueError, match="shape"):
        cache.load(path, (3, 2))


def _truncate(npy, meta):
    with open(npy, "r+b") as f:
        f.truncate(npy.stat().st_size - 5)


def _flip_byte(npy, meta):
    raw = bytearray(npy.read_bytes())
    raw[-7] ^= 0x40
    npy.write_bytes(bytes(raw))


def _garbage(npy, meta):
    npy.write_bytes(b"\x93NUMPY garbage")


def _bad_meta(npy, meta):
    meta.write_text("{not json")


def _no_meta(npy, meta):
    meta.unlink()


def _no_array(npy, meta):
    npy.unlink()


@pytest.mark.parametrize("damage, reason", [
    (_truncate, "truncated"), (_flip_byte, "corrupt"), (_garbage, "truncated"),
    (_bad_meta, "metadata"), (_no_meta, "metadata"), (_no_array, "unreadable")])
def test_damaged_entry_is_rebuilt_with_one_warning(tmp_path, source, damage, reason):
    path, data = source
    cache = ArrayCache(tmp_path / "cache")
    cache.load(path, (2, 3))
    damage(*cache.paths(path))
    arr, warned = _load(cache, path)
    assert len(warned) == 1 and reason in warned[0], warned
    np.testing.assert_array_equal(arr, data)
    assert _load(cache, path)[1] == []
    assert len(list(cache.directory.iterdir())) == 2  # no temporary files left


def test_concurrent_loads_convert_once(tmp_path, source, monkeypatch):
    """Processes (here threads, each with its own lock handle) sharing a cache directory
    convert a file once: the others wait for the lock and map the result."""
    path, data = source
    calls = []
    parse = array_cache.parse_json_array

    def slow_parse(*args, **kwargs):
        calls.append(1)
        time.sleep(0.2)
        return parse(*args, **kwargs)

    monkeypatch.setattr(array_cache, "parse_json_array", slow_parse)
    results = [None] * 3

    def load(k):
        results[k] = ArrayCache(tmp_path / "cache").load(path, (2, 3))

    threads = [threading.Thread(target=load, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    for arr in results:
        np.testing.assert_array_equal(arr, data)


def test_malformed_source_names_the_file_and_leaves_no_entry(tmp_path, source):
    path, _ = source
    path.write_text("[[[1, 2, 3], [4, 5, 6]], [[1, 2, 3]]]")
    cache = ArrayCache(tmp_path / "cache")
    with pytest.raises(ValueError, match="training_xyz.json.*entry 1"):
        cache.load(path, (2, 3))
    assert list(cache.directory.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="missing.json"):
        cache.load(path.parent / "missing.json", (2, 3))


def test_default_directory(tmp_path, monkeypatch):
    assert default_cache_dir(tmp_path, "freihand") == tmp_path / ".handdgp_cache"
    # a read-only dataset root: the cache goes under $HANDDGP_CACHE, one folder per root
    monkeypatch.setattr(array_cache, "_writable_dir", lambda path: False)
    monkeypatch.setenv(array_cache.CACHE_ENV, str(tmp_path / "elsewhere"))
    a = default_cache_dir(tmp_path / "a", "freihand")
    b = default_cache_dir(tmp_path / "b", "freihand")
    assert a.parent == b.parent == tmp_path / "elsewhere" and a != b
    assert a.name.startswith("freihand-")
    monkeypatch.delenv(array_cache.CACHE_ENV)
    assert default_cache_dir(tmp_path / "a", "freihand").parent.name == "handdgp"


@pytest.fixture(scope="module")
def fh(tmp_path_factory):
    root = tmp_path_factory.mktemp("fh_cache")
    return root, write_freihand(root, num=3, num_versions=1)


def test_freihand_maps_its_annotations_and_returns_copies(fh, tmp_path):
    root, w = fh
    ds = FreiHAND(root, cache_dir=tmp_path / "c")
    assert {p.name for p in (tmp_path / "c").glob("*.npy")} == {
        f"training_{k}.npy" for k in ("K", "xyz", "verts", "mano")}
    for arr in (ds.K, ds.xyz, ds.verts, ds.mano):
        assert isinstance(arr, np.memmap) and arr.dtype == np.float32
    s = ds[1]
    for key in ("K", "joints3d", "verts3d", "pose", "shape", "joints2d", "box"):
        assert type(s[key]) is np.ndarray and s[key].dtype == np.float32, key
        assert s[key].flags.writeable and s[key].flags.owndata, key
    np.testing.assert_allclose(s["verts3d"], w["verts"][1], atol=1e-6)
    again = FreiHAND(root, cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(again[1]["verts3d"], s["verts3d"])


def test_freihand_pickles_as_file_names(fh, tmp_path):
    """Spawned DataLoader workers get the dataset by pickle: it reopens the maps."""
    root, _ = fh
    ds = FreiHAND(root, cache_dir=tmp_path / "c")
    blob = pickle.dumps(ds)
    assert len(blob) < ds.verts.nbytes // 4  # no array data in the pickle
    copy = pickle.loads(blob)
    assert isinstance(copy.verts, np.memmap) and isinstance(copy.mano, np.memmap)
    for i in range(len(ds)):
        for key in ("K", "joints3d", "verts3d", "pose", "box"):
            np.testing.assert_array_equal(copy[i][key], ds[i][key])
