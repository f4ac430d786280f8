"""Truncated, garbage and degenerate files of every kind the project reads.

Images, ``.npz`` archives, MANO models, checkpoints, dataset annotations (FreiHAND JSON, HO3D
lists and metas), the synthetic sample cache and strict JSON output: each bad file is a
``ValueError``/``FileNotFoundError`` naming it (and the item), never a crash, a hang, silent
NaN or missing data.
"""

import json
import os
import pickle
import warnings

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from handdgp_models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from handdgp_models.data import HO3D, FreiHAND, SyntheticHands
from handdgp_models.data._io import read_mask, read_rgb
from handdgp_models.files import read_npz, strict_json, write_json
from handdgp_models.hand import default_hand_data, load_mano, validate_mano_arrays

from .fixtures import write_freihand, write_ho3d


def _image(seed: int = 0, size=(48, 64)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    return cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def _encode(ext: str, img: np.ndarray, params=()) -> bytes:
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok
    return buf.tobytes()


# -- images -----------------------------------------------------------------------------------

_ENCODINGS = {
    "jpg": (".jpg", []),
    "jpg-progressive": (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
    "jpg-restart": (".jpg", [cv2.IMWRITE_JPEG_RST_INTERVAL, 1]),
    "png": (".png", []),
    "png-fast": (".png", [cv2.IMWRITE_PNG_COMPRESSION, 1]),
}


@pytest.mark.parametrize("kind", list(_ENCODINGS))
def test_every_truncation_of_an_image_is_refused(tmp_path, kind):
    ext, params = _ENCODINGS[kind]
    img = _image(1)
    data = _encode(ext, img, params)
    path = tmp_path / f"im{ext}"
    path.write_bytes(data)
    np.testing.assert_array_equal(read_rgb(path).shape, img.shape)
    step = max(1, len(data) // 60)
    for cut in [*range(0, len(data), step), len(data) - 1, len(data) - 2]:
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=f"im\\{ext}"):
            read_rgb(path)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), h=st.integers(1, 40), w=st.integers(1, 40),
       kind=st.sampled_from(list(_ENCODINGS)), quality=st.integers(5, 100))
def test_complete_images_always_read(tmp_path_factory, seed, h, w, kind, quality):
    ext, params = _ENCODINGS[kind]
    if ext == ".jpg":
        params = [*params, cv2.IMWRITE_JPEG_QUALITY, quality]
    img = _image(seed, (h, w))
    path = tmp_path_factory.mktemp("img") / f"a{ext}"
    path.write_bytes(_encode(ext, img, params))
    out = read_rgb(path)
    assert out.shape == (h, w, 3)
    if ext == ".png":
        np.testing.assert_array_equal(out, img[:, :, ::-1])


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_damaged_png_refused(tmp_path_factory, data):
    blob = bytearray(_encode(".png", _image(2)))
    i = data.draw(st.integers(8, len(blob) - 1))  # after the signature
    blob[i] ^= data.draw(st.integers(1, 255))
    path = tmp_path_factory.mktemp("png") / "bad.png"
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="bad.png"):
        read_rgb(path)


@pytest.mark.parametrize("content", [b"", b"\xff\xd8", b"\x89PNG\r\n\x1a\n", os.urandom(300),
                                     b"GIF89a" + os.urandom(40), b"not an image at all"])
@pytest.mark.parametrize("reader", [read_rgb, read_mask])
def test_garbage_images_refused(tmp_path, content, reader):
    path = tmp_path / "frame.jpg"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="frame.jpg"):
        reader(path)


def test_missing_image_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_rgb(tmp_path / "nope.png")


# -- npz archives and MANO files ---------------------------------------------------------------

def _npz_bytes(tmp_path, **arrays) -> bytes:
    path = tmp_path / "src.npz"
    np.savez(path, **arrays)
    return path.read_bytes()


def test_npz_truncated_garbage_empty_and_pickled(tmp_path):
    good = _npz_bytes(tmp_path, a=np.arange(100.0), b=np.ones((4, 4)))
    path = tmp_path / "arch.npz"
    cases = {"empty": b"", "garbage": os.urandom(400), "half": good[: len(good) // 2],
             "almost": good[:-1], "no-zip-end": good[:-30]}
    for blob in cases.values():
        path.write_bytes(blob)
        with pytest.raises(ValueError, match="arch.npz"):
            read_npz(path)
    np.savez(path, obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="arch.npz.*pickled"):
        read_npz(path)
    with pytest.raises(FileNotFoundError, match="none.npz"):
        read_npz(tmp_path / "none.npz")


def test_npz_with_corrupt_member_refused(tmp_path):
    good = bytearray(_npz_bytes(tmp_path, a=np.arange(4000.0)))
    mid = len(good) // 2
    good[mid:mid + 8] = b"\x00" * 8  # inside the stored array: the CRC no longer matches
    path = tmp_path / "crc.npz"
    path.write_bytes(bytes(good))
    with pytest.raises(ValueError, match="crc.npz"):
        read_npz(path)


def _mano(**changes):
    d = dict(default_hand_data())
    d.update(changes)
    return {k: v for k, v in d.items() if v is not None}


def _parents_cycle():
    t = default_hand_data()["kintree_table"].copy()
    t[0, 3] = 5
    return t


_BAD_MANO = {
    "NaN template": (_mano(v_template=np.full((778, 3), np.nan)), "v_template"),
    "Inf shapedirs": (_mano(shapedirs=np.full((778, 3, 10), np.inf)), "shapedirs"),
    "template shape": (_mano(v_template=np.zeros((778, 2))), "v_template"),
    "faces out of range": (_mano(f=np.full((10, 3), 5000)), "f"),
    "float faces": (_mano(f=np.zeros((10, 3))), "f"),
    "parent after child": (_mano(kintree_table=_parents_cycle()), "kintree_table"),
    "17 joints": (_mano(kintree_table=np.zeros((2, 17), np.int64)), "kintree_table"),
    "weights shape": (_mano(weights=np.zeros((778, 15))), "weights"),
    "regressor shape": (_mano(J_regressor=np.zeros((16, 700))), "J_regressor"),
    "few betas": (_mano(shapedirs=np.zeros((778, 3, 4))), "shapedirs"),
    "posedirs shape": (_mano(posedirs=np.zeros((778, 3, 10))), "posedirs"),
    "string array": (_mano(posedirs=np.array(["a"])), "posedirs"),
    "hands_mean size": (_mano(hands_mean=np.zeros(44)), "hands_mean"),
}


@pytest.mark.parametrize("case", list(_BAD_MANO))
def test_bad_mano_arrays_refused_naming_file_and_array(tmp_path, case):
    data, key = _BAD_MANO[case]
    path = tmp_path / "MANO_RIGHT.npz"
    np.savez(path, **data)
    with pytest.raises(ValueError, match=rf"MANO_RIGHT.npz.*{key}"):
        load_mano(path)


def test_bad_mano_pickle_values_refused(tmp_path):
    path = tmp_path / "MANO_RIGHT.pkl"
    data = _mano(v_template=np.full((778, 3), np.nan))
    path.write_bytes(pickle.dumps(data, protocol=2))
    with pytest.raises(ValueError, match="MANO_RIGHT.pkl.*v_template"):
        load_mano(path)
    path.write_bytes(pickle.dumps({**_mano(), "weights": [[0.5] * 16] * 778}, protocol=2))
    with pytest.raises(ValueError, match="weights must be a numeric array"):
        load_mano(path)


def test_default_hand_passes_validation_and_truncated_mano_npz_is_named(tmp_path):
    validate_mano_arrays(default_hand_data(), "default hand")
    path = tmp_path / "MANO_RIGHT.npz"
    np.savez(path, **default_hand_data())
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 3])
    with pytest.raises(ValueError, match="MANO_RIGHT.npz"):
        load_mano(path)
    path.write_bytes(os.urandom(2000))
    with pytest.raises(ValueError, match="MANO_RIGHT.npz"):
        load_mano(path)


# -- checkpoints -----------------------------------------------------------------------------

def _state(**extra):
    state = {"model": {"w": torch.ones(3), "n": torch.tensor(2)},
             "config": json.dumps({"model": {}, "train": {}})}
    state.update(extra)
    return {k: v for k, v in state.items() if v is not None}


class _NotATensor:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _checkpoint_cases(tmp_path) -> dict[str, bytes]:
    src = tmp_path / "src.pt"
    save_checkpoint(src, _state())
    good = src.read_bytes()

    def saved(obj) -> bytes:
        torch.save(obj, src)
        return src.read_bytes()

    return {
        "empty": b"",
        "garbage": os.urandom(1000),
        "plain pickle": pickle.dumps({"model": {}, "config": "{}"}),
        "half": good[: len(good) // 2],
        "tail cut": good[:-10],
        "malicious": saved({"model": {"w": _NotATensor()}, "config": "{}"}),
        "no config": saved(_state(config=None)),
        "config not JSON": saved(_state(config="{model")),
        "config without model": saved(_state(config=json.dumps({"train": {}}))),
        "no weights": saved(_state(model=None)),
        "weights not tensors": saved(_state(model={"w": [1.0, 2.0]})),
        "NaN weights": saved(_state(model={"w": torch.tensor([1.0, float("nan")])})),
        "a bare tensor": saved(torch.zeros(3)),
        "a list": saved([torch.zeros(3)]),
    }


def test_bad_checkpoints_refused_naming_the_file(tmp_path):
    path = tmp_path / "run" / "ckpt.pt"
    path.parent.mkdir()
    for name, blob in _checkpoint_cases(tmp_path).items():
        path.write_bytes(blob)
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
        msg = str(info.value)
        assert "ckpt.pt" in msg, name
        assert "weights_only" not in msg and "\n" not in msg, name
    with pytest.raises(CheckpointError, match="none.pt.*no such file"):
        load_checkpoint(tmp_path / "none.pt")
    with pytest.raises(CheckpointError, match="not a file"):
        load_checkpoint(tmp_path)


def test_checkpoint_round_trip_and_atomic_save(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, _state(step=3))
    assert load_checkpoint(path)["step"] == 3

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, _state(step=4))
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 3  # the previous checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary left behind


# -- strict JSON -----------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_strict_json_refuses_non_finite_and_writes_nothing(tmp_path, bad):
    path = tmp_path / "prediction.json"
    obj = {"joints": np.array([[0.0, 1.0], [2.0, bad]], np.float32), "ok": 1}
    with pytest.raises(ValueError, match=r"prediction.json.*joints\[1, 1\]|joints\[1\]"):
        write_json(path, obj)
    assert not path.exists()
    with pytest.raises(ValueError, match=r"box\[2\]"):
        strict_json({"box": [1.0, 2.0, bad]})
    write_json(path, {"m": {"a": np.float64(bad), "b": 2.0}}, nan_as_null=True)
    assert json.loads(path.read_text()) == {"m": {"a": None, "b": 2.0}}


@settings(max_examples=50, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda c: st.lists(c, max_size=4)
                    | st.dictionaries(st.text(max_size=4), c, max_size=4), max_leaves=20))
def test_strict_json_output_is_standard_json(obj):
    def has_non_finite(o):
        if isinstance(o, float):
            return not np.isfinite(o)
        if isinstance(o, list):
            return any(has_non_finite(v) for v in o)
        if isinstance(o, dict):
            return any(has_non_finite(v) for v in o.values())
        return False

    try:
        text = strict_json(obj)
    except ValueError:
        assert has_non_finite(obj)
        return
    assert not has_non_finite(obj)
    # a standard JSON parser sees no NaN/Infinity constants (strings may spell them)
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard constant {c}"))


# -- FreiHAND annotations --------------------------------------------------------------------

def _rewrite(path, fn):
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("case, file, match", [
    ("zero K", "training_K.json", r"training_K.json item 1: K"),
    ("negative focal", "training_K.json", r"training_K.json item 1: K: focal"),
    # NaN is not JSON: the streaming parser refuses it, naming the file
    ("NaN K", "training_K.json", r"training_K.json: .*unexpected character 'N'"),
    ("joint behind", "training_xyz.json", r"training_xyz.json item 1: joints: point 4"),
    ("joint at z=0", "training_xyz.json", r"training_xyz.json item 1: joints: point 4"),
    ("NaN joint", "training_xyz.json", r"training_xyz.json: .*unexpected character 'N'"),
    ("NaN vertex", "training_verts.json", r"training_verts.json: .*unexpected character 'N'"),
])
def test_freihand_degenerate_annotations_named(tmp_path, case, file, match):
    write_freihand(tmp_path, num=2, num_versions=1, masks=False)

    def edit(data):
        if case == "zero K":
            data[1] = [[0.0] * 3] * 3
        elif case == "negative focal":
            data[1][0][0] = -500.0
        elif case == "NaN K":
            data[1][0][2] = float("nan")
        elif case == "joint behind":
            data[1][4][2] = -0.3
        elif case == "joint at z=0":
            data[1][4][2] = 0.0
        else:
            data[1][7][0] = float("nan")

    _rewrite(tmp_path / file, edit)
    if case.startswith("NaN"):  # not JSON: refused when the annotations are read
        with pytest.raises(ValueError, match=match):
            FreiHAND(tmp_path, version="gs")
        return
    ds = FreiHAND(tmp_path, version="gs")
    ds[0]  # the other item is fine
    with pytest.raises(ValueError, match=match):
        ds[1]


def test_freihand_truncated_image_named(tmp_path):
    write_freihand(tmp_path, num=1, num_versions=1, masks=False)
    path = tmp_path / "training" / "rgb" / "00000000.jpg"
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(ValueError, match="00000000.jpg"):
        FreiHAND(tmp_path)[0]


# -- HO3D ------------------------------------------------------------------------------------

def test_ho3d_non_utf8_list_names_the_file(tmp_path):
    write_ho3d(tmp_path, {"ABF10": 1})
    (tmp_path / "train.txt").write_bytes(b"ABF10/0000\n\xff\xfe/0001\n")
    with pytest.raises(ValueError, match=r"train.txt.*UTF-8"):
        HO3D(tmp_path)


@pytest.mark.parametrize("ident", ["../x", "ABF10/..", "../../etc", "/etc/passwd",
                                   "./0000", "ABF10\\..\\x", "C:/x"])
def test_ho3d_ids_outside_the_split_refused(tmp_path, ident):
    write_ho3d(tmp_path, {"ABF10": 1})
    (tmp_path / "train.txt").write_text(f"ABF10/0000\n{ident}\n")
    with pytest.raises(ValueError, match=r"train.txt entry 2"):
        HO3D(tmp_path)


def _edit_meta(root, ident, **changes):
    seq, frame = ident.split("/")
    path = root / "train" / seq / "meta" / f"{frame}.pkl"
    meta = pickle.loads(path.read_bytes())
    meta.update(changes)
    path.write_bytes(pickle.dumps(meta, protocol=2))
    return path


@pytest.mark.parametrize("case", ["z0", "behind", "nan", "singular K", "shared bomb"])
def test_ho3d_degenerate_meta_named(tmp_path, case):
    written = write_ho3d(tmp_path, {"ABF10": 2})
    ident = written["ids"][1]
    joints = written["meta"][ident]["handJoints3D"].copy()
    if case == "z0":
        joints[5, 2] = 0.0  # OpenGL z = 0 -> OpenCV z = 0
        changes, match = {"handJoints3D": joints}, "not in front of the camera"
    elif case == "behind":
        joints[:, 2] *= -1.0
        changes, match = {"handJoints3D": joints}, "not in front of the camera"
    elif case == "nan":
        joints[3, 0] = np.nan
        changes, match = {"handJoints3D": joints}, "handJoints3D"
    elif case == "singular K":
        changes, match = {"camMat": np.zeros((3, 3))}, "K: focal lengths"
    else:
        x = [0.5]
        for _ in range(40):
            x = [x, x]
        changes, match = {"camMat": x}, "camMat"
    path = _edit_meta(tmp_path, ident, **changes)
    ds = HO3D(tmp_path)
    ds[0]
    with pytest.raises(ValueError, match=match) as info:
        ds[1]
    assert str(path) in str(info.value)


def test_ho3d_corrupt_meta_and_image_named(tmp_path):
    write_ho3d(tmp_path, {"ABF10": 2})
    meta = tmp_path / "train" / "ABF10" / "meta" / "0001.pkl"
    meta.write_bytes(meta.read_bytes()[:50])
    with pytest.raises(ValueError, match="0001.pkl"):
        HO3D(tmp_path)[1]
    img = tmp_path / "train" / "ABF10" / "rgb" / "0000.png"
    img.write_bytes(img.read_bytes()[:-30])
    with pytest.raises(ValueError, match="0000.png"):
        HO3D(tmp_path)[0]


# -- the synthetic sample cache --------------------------------------------------------------

def _cache_files(folder):
    return sorted(p for p in folder.iterdir() if p.suffix == ".npz")


@pytest.fixture(scope="module")
def cached_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth")
    ds = SyntheticHands(3, seed=2, image_size=(64, 64), cache_dir=folder)
    fresh = [ds[i] for i in range(3)]
    return folder, fresh


def _damage(path, how):
    blob = path.read_bytes()
    if how == "truncated":
        path.write_bytes(blob[: len(blob) // 2])
    elif how == "garbage":
        path.write_bytes(os.urandom(len(blob)))
    elif how == "empty":
        path.write_bytes(b"")
    else:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        if how == "old version":
            arrays["cache_version"] = np.array(0)
        elif how == "no version":
            del arrays["cache_version"]
        elif how == "wrong shape":
            arrays["joints3d"] = arrays["joints3d"][:20]
        elif how == "NaN":
            arrays["K"][0, 0] = np.nan
        np.savez(path, **arrays)


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty", "old version", "no version",
                                 "wrong shape", "NaN"])
def test_corrupt_or_stale_cache_rebuilt_with_one_warning(cached_dataset, how):
    folder, fresh = cached_dataset
    files = _cache_files(folder)
    assert len(files) == 3
    for path in files[:2]:
        _damage(path, how)
    ds = SyntheticHands(3, seed=2, image_size=(64, 64), cache_dir=folder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = [ds[i] for i in range(3)]
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and files[0].name in messages[0]
    for a, b in zip(again, fresh, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    for path in files[:2]:  # rewritten: the next read needs no rebuild
        read_npz(path, check=ds._check_cached)
    assert _cache_files(folder) == files  # no temporary files left behind
