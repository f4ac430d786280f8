"""Human3.6M loader on a tiny tree in the preprocessed layout: splits, world -> camera
conversion checked against OpenCV's projection of the world points, boxes from the
annotation, both SMPL-parameter layouts, errors naming the file."""

import json
import shutil

import numpy as np
import pytest

from handdgp_models.body import load_smpl
from handdgp_models.data import Human36M
from handdgp_models.data._io import project
from tests.handdgp_models.h36m_fixtures import write_h36m

TRAIN = {s: [0, 3, 5] for s in (1, 5, 6, 7, 8)}  # frame 3 is not in the every-5th protocol
TEST = {9: [0, 10, 64], 11: [0, 64]}  # frame 10 is not in the every-64th protocol


@pytest.fixture(scope="module")
def body():
    return load_smpl()


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("h36m")
    truth = write_h36m(root, {**TRAIN, **TEST}, missing_fit=((5, 5),))
    return root, truth


def test_splits_follow_the_protocol(tree, body):
    root, _ = tree
    train = Human36M(root, "train", body=body)
    # 5 subjects x frames 0, 5 x 4 cameras, less subject 5's frame 5 (no SMPL fit)
    assert len(train) == 5 * 2 * 4 - 4 and train.skipped_without_fit == 4
    assert {it.subject for it in train.items} == {1, 5, 6, 7, 8}
    assert all(it.key[2] % 5 == 0 for it in train.items)
    test = Human36M(root, "test", body=body)
    assert len(test) == 4 and {it.cam for it in test.items} == {4}
    assert {(it.subject, it.key[2]) for it in test.items} == {(9, 0), (9, 64), (11, 0), (11, 64)}


def test_world_to_camera_matches_opencv_projection_of_world_points(tree, body):
    root, truth = tree
    ds = Human36M(root, "test", body=body)
    for i in range(len(ds)):
        s, it = ds[i], ds.items[i]
        t = truth[(it.subject, it.cam, it.key[2])]
        assert s["eval_joints3d"].shape == (17, 3) and s["joints3d"].shape == (29, 3)
        assert np.all(s["verts3d"][:, 2] > 0)  # OpenCV camera: in front means z > 0
        np.testing.assert_allclose(project(s["eval_joints3d"], s["K"]), t["uv17"], atol=1e-3)
        np.testing.assert_allclose(project(s["verts3d"], s["K"]), t["uv_verts"], atol=1e-3)
        np.testing.assert_allclose(s["joints2d"], project(s["joints3d"], s["K"]), atol=1e-4)
        # metres: the pelvis is about 4 m away
        assert 3.0 < float(np.linalg.norm(s["joints3d"][0])) < 5.0
        assert s["name"] == "h36m" and s["image"].shape == (96, 128, 3)


def test_box_comes_from_the_annotation(tree, body, tmp_path):
    root, truth = tree
    copy = tmp_path / "h36m"
    shutil.copytree(root, copy)
    path = copy / "annotations" / "Human36M_subject9_data.json"
    data = json.loads(path.read_text())
    for ann in data["annotations"]:
        ann["bbox"] = [ann["bbox"][0] + 7.0, ann["bbox"][1], ann["bbox"][2], ann["bbox"][3] * 2]
    path.write_text(json.dumps(data))
    before, after = Human36M(root, "test", body=body), Human36M(copy, "test", body=body)
    for i in range(len(before)):
        if before.items[i].subject != 9:
            continue
        x, y, w, h = truth[(9, 4, before.items[i].key[2])]["bbox"]
        np.testing.assert_allclose(before[i]["box"], [x + w / 2, y + h / 2, max(w, h)], rtol=1e-5)
        np.testing.assert_allclose(after[i]["box"], [x + 7 + w / 2, y + h, max(w, 2 * h)],
                                   rtol=1e-5)
        np.testing.assert_array_equal(after[i]["joints3d"], before[i]["joints3d"])


def test_older_smpl_param_layout_reads_the_same(tmp_path, body):
    a = write_h36m(tmp_path / "a", TEST, seed=3)
    write_h36m(tmp_path / "b", TEST, seed=3, layout="smpl_param")
    assert (tmp_path / "b" / "annotations" / "Human36M_subject9_smpl_param.json").is_file()
    da, db = Human36M(tmp_path / "a", "test", body=body), Human36M(tmp_path / "b", "test",
                                                                   body=body)
    assert len(da) == len(db) == 4 and len(a) == 5 * 4
    np.testing.assert_allclose(da[1]["verts3d"], db[1]["verts3d"], atol=1e-6)


def test_missing_and_corrupt_files_are_named(tree, body, tmp_path):
    root, _ = tree
    copy = tmp_path / "h36m"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("images"))
    ann = copy / "annotations"
    with pytest.raises(FileNotFoundError, match="nope"):
        Human36M(tmp_path / "nope", "test", body=body)
    with pytest.raises(ValueError, match="split"):
        Human36M(copy, "val", body=body)
    (copy / "images").mkdir()
    ds = Human36M(copy, "test", body=body)
    with pytest.raises(FileNotFoundError, match="s_09_act_02_subact_01_ca_04"):
        ds[0]
    (ann / "Human36M_subject11_camera.json").unlink()
    with pytest.raises(FileNotFoundError, match="Human36M_subject11_camera.json"):
        Human36M(copy, "test", body=body)
    (ann / "Human36M_subject9_data.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt JSON.*Human36M_subject9_data.json"):
        Human36M(copy, "test", body=body)
    (ann / "Human36M_subject9_data.json").unlink()
    shutil.copy(root / "annotations" / "Human36M_subject9_data.json", ann)
    (ann / "Human36M_subject9_SMPL_NeuralAnnot.json").unlink()
    with pytest.raises(FileNotFoundError, match="subject9_SMPL_NeuralAnnot.json.*smpl_param"):
        Human36M(copy, "test", body=body)


def test_malformed_entries_are_named(tree, body, tmp_path):
    root, _ = tree
    copy = tmp_path / "h36m"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("images"))
    cam_path = copy / "annotations" / "Human36M_subject9_camera.json"
    cams = json.loads(cam_path.read_text())
    del cams["4"]
    cam_path.write_text(json.dumps(cams))
    with pytest.raises(ValueError, match="subject9_camera.json: no camera 4"):
        Human36M(copy, "test", body=body)
    shutil.copy(root / "annotations" / cam_path.name, cam_path)
    fit_path = copy / "annotations" / "Human36M_subject11_SMPL_NeuralAnnot.json"
    fits = json.loads(fit_path.read_text())
    fits["2"]["1"]["64"]["pose"] = fits["2"]["1"]["64"]["pose"][:10]
    fit_path.write_text(json.dumps(fits))
    ds = Human36M(copy, "test", body=body)
    bad = next(i for i, it in enumerate(ds.items) if it.subject == 11 and it.key[2] == 64)
    with pytest.raises(ValueError, match="subject11_SMPL_NeuralAnnot.json.*pose.*72"):
        ds[bad]


def test_pipeline_carries_body_samples(tree, body):
    from handdgp_models.data import InputPipeline, PipelineConfig

    root, _ = tree
    s = Human36M(root, "test", body=body)[0]
    kw = {"out_size": 64, "focal": 40.0, "train": False}
    out = InputPipeline(PipelineConfig(), **kw)(s)
    assert out["joints2d"].shape == (29, 2) and out["joints3d"].shape == (29, 3)
    np.testing.assert_allclose(out["eval_joints3d"], s["eval_joints3d"])
    np.testing.assert_allclose(out["root"], out["joints3d"][0])
    # the rectified keypoints are the projections of the rotated camera-space keypoints
    p = out["joints3d"].double() @ out["K"].double().T
    np.testing.assert_allclose(p[:, :2] / p[:, 2:], out["joints2d"], atol=1e-2)
    other = InputPipeline(PipelineConfig(), **kw, root_index=3)(s)
    np.testing.assert_allclose(other["root"], out["joints3d"][3])
    with pytest.raises(ValueError, match="root_index"):
        InputPipeline(PipelineConfig(), **kw, root_index=29)(s)
    bad = dict(s, joints2d=s["joints2d"][:5])
    with pytest.raises(ValueError, match="5 joints2d but 29 joints3d"):
        InputPipeline(PipelineConfig(), **kw)(bad)
