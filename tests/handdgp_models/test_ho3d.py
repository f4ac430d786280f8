"""HO3D-v2 loader: joint order, OpenGL → OpenCV, MANO vertices, file errors."""

import pickle

import numpy as np
import pytest
import torch

from handdgp_models.data import HO3D, HO3D_TO_OPENPOSE, OPENPOSE_TO_HO3D
from handdgp_models.hand import MANO_TO_OPENPOSE, load_mano
from tests.handdgp_models.fixtures import write_ho3d

FLIP = np.diag([1.0, -1.0, -1.0])


def test_joint_order_inverse():
    op = np.arange(21) * 10
    ho3d = op[list(OPENPOSE_TO_HO3D)]
    np.testing.assert_array_equal(ho3d[list(HO3D_TO_OPENPOSE)], op)
    assert sorted(HO3D_TO_OPENPOSE) == list(range(21))
    # HO3D order is MANO's joint order with the five tips appended
    assert tuple(HO3D_TO_OPENPOSE) == tuple(MANO_TO_OPENPOSE)
    # OpenPose joint 1 (thumb CMC) sits at HO3D position 13; index MCP (5) at position 1
    assert OPENPOSE_TO_HO3D[13] == 1 and HO3D_TO_OPENPOSE[1] == 13


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_train_round_trip(tmp_path, ext):
    w = write_ho3d(tmp_path, ext=ext)
    ds = HO3D(tmp_path, "train")
    assert len(ds) == 3
    for i, ident in enumerate(w["ids"]):
        s, meta = ds[i], w["meta"][ident]
        tol = 0 if ext == "png" else 12
        assert np.abs(s["image"].astype(int) - w["images"][ident]).max() <= tol
        assert s["id"] == ident and s["name"] == "ho3d"
        expected = meta["handJoints3D"][list(HO3D_TO_OPENPOSE)] @ FLIP
        np.testing.assert_allclose(s["joints3d"], expected, atol=1e-6)
        # independent check of the reorder: OpenPose → HO3D must give back the stored array
        np.testing.assert_allclose((s["joints3d"] @ FLIP)[list(OPENPOSE_TO_HO3D)],
                                   meta["handJoints3D"], atol=1e-6)
        assert (s["joints3d"][:, 2] > 0).all()  # OpenCV: in front of the camera
        p = s["joints3d"].astype(np.float64) @ meta["camMat"].T
        np.testing.assert_allclose(s["joints2d"], p[:, :2] / p[:, 2:], atol=1e-3)
        assert (s["joints2d"] >= 0).all() and (s["joints2d"][:, 0] < 640).all()
        np.testing.assert_allclose(s["pose"], meta["handPose"], atol=1e-6)
        assert s["joints3d"].dtype == np.float32 and s["K"].dtype == np.float32
        assert "verts3d" not in s


def test_train_verts_from_mano(tmp_path):
    w = write_ho3d(tmp_path, {"SM1": 1})
    model = load_mano(None, tip_ids="ho3d")
    s = HO3D(tmp_path, mano=model)[0]
    meta = w["meta"]["SM1/0000"]
    verts, _ = model.forward(torch.tensor(meta["handPose"][None]),
                             torch.tensor(meta["handBeta"][None]),
                             torch.tensor(meta["handTrans"][None]))
    assert s["verts3d"].shape == (778, 3) and s["verts3d"].dtype == np.float32
    np.testing.assert_allclose(s["verts3d"], verts[0].numpy() @ FLIP, atol=1e-5)


def test_evaluation_split(tmp_path):
    w = write_ho3d(tmp_path, {"SM1": 2}, split="evaluation")
    s = HO3D(tmp_path, "evaluation")[1]
    meta = w["meta"]["SM1/0001"]
    np.testing.assert_allclose(s["root3d"], meta["handJoints3D"] @ FLIP, atol=1e-6)
    assert "joints3d" not in s and "verts3d" not in s
    u0, v0, u1, v1 = meta["handBoundingBox"]
    np.testing.assert_allclose(s["box"], [(u0 + u1) / 2, (v0 + v1) / 2,
                                          max(u1 - u0, v1 - v0)], rtol=1e-5)


def test_missing_and_corrupt_files_are_named(tmp_path):
    write_ho3d(tmp_path, {"SM1": 2})
    ds = HO3D(tmp_path)
    (tmp_path / "train" / "SM1" / "meta" / "0001.pkl").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="0001.pkl"):
        ds[1]
    (tmp_path / "train" / "SM1" / "meta" / "0000.pkl").unlink()
    with pytest.raises(FileNotFoundError, match="0000.pkl"):
        ds[0]
    (tmp_path / "train" / "SM1" / "rgb" / "0000.png").unlink()
    with pytest.raises(FileNotFoundError, match="0000.png"):
        ds[0]
    with pytest.raises(FileNotFoundError, match="evaluation.txt"):
        HO3D(tmp_path, "evaluation")


def test_meta_field_errors(tmp_path):
    w = write_ho3d(tmp_path, {"SM1": 1})
    meta = dict(w["meta"]["SM1/0000"], handJoints3D=np.zeros((20, 3)))
    with open(tmp_path / "train" / "SM1" / "meta" / "0000.pkl", "wb") as f:
        pickle.dump(meta, f)
    with pytest.raises(ValueError, match="handJoints3D"):
        HO3D(tmp_path)[0]
    with pytest.raises(ValueError, match="split"):
        HO3D(tmp_path, "test")
    (tmp_path / "train.txt").write_text("no_slash\n")
    with pytest.raises(ValueError, match="train.txt"):
        HO3D(tmp_path)
