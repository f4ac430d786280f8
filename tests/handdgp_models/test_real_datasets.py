"""FreiHAND and HO3D-v2 end to end through the CLI on tiny trees in the official layouts:
train, eval (official pred.json, metrics without ground-truth inputs), data check."""

import json
import shutil

import numpy as np
import pytest

from handdgp_models.cli import main
from handdgp_models.metrics import compute_metrics
from handdgp_models.submission import read_freihand_pred, read_ho3d_pred, write_freihand_pred
from tests.handdgp_models.fixtures import write_freihand, write_ho3d, write_mano
from tests.handdgp_models.freihand_reference import freihand_evaluation

# The paper configs at toy sizes, so a few steps run in seconds.
TOY = ["model.backbone=\"resnet18\"", "model.input_size=64", "model.kp_hidden=[16, 16]",
       "model.mesh_channels=[16, 16, 16, 16, 8]", "model.feature_channels=16",
       "model.weight_hidden=16", "model.weight_channels=4", "train.steps=2",
       "train.batch_size=2", "train.checkpoint_every=1", "eval.batch_size=2",
       "eval.overlays=1"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    fh = root / "freihand"
    write_freihand(fh, num=3, num_versions=4)
    gt = write_freihand(fh, num=3, split="evaluation", seed=1)
    ho = root / "ho3d"
    write_ho3d(ho, {"SM1": 3})
    write_ho3d(ho, {"SM2": 2}, split="evaluation", seed=2)
    return {"root": root, "freihand": fh, "ho3d": ho, "mano": write_mano(root / "MANO_RIGHT.pkl"),
            "hier": root / "hier", "fh_eval_gt": gt}


def _train(tree, config, out):
    rc = main(["train", "--config", config, "--data-root", str(tree[config]), "--mano",
               str(tree["mano"]), "--out", str(out), "--quiet",
               "--set", f'cache_dir="{tree["hier"]}"', *sum((["--set", s] for s in TOY),
                                                                        [])])
    assert rc == 0
    return out / "checkpoint.pt"


@pytest.fixture(scope="module")
def freihand_run(tree):
    return _train(tree, "freihand", tree["root"] / "run_fh")


def _eval(tree, ckpt, dataset, out, *extra):
    rc = main(["eval", "--checkpoint", str(ckpt), "--dataset", dataset, "--data-root",
               str(tree[dataset]), "--out", str(out), "--quiet", "--device", "cpu", *extra])
    assert rc == 0
    return out


def test_freihand_train_eval_official_pred(tree, freihand_run, tmp_path, capsys):
    out = _eval(tree, freihand_run, "freihand", tmp_path / "ev")
    joints, verts = read_freihand_pred(out / "pred.json", count=3)
    assert joints.shape == (3, 21, 3) and verts.shape == (3, 778, 3)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["samples"] == 3 and metrics["model"]["cs_mje"] > 0
    assert (out / "pck.png").is_file() and list((out / "overlays").glob("*.png"))
    assert "CS-MJE" in capsys.readouterr().out
    # every metric is the benchmark's evaluation of the pred.json that was written
    fh = tree["freihand"]
    gt_xyz, gt_verts = (json.loads((fh / f"evaluation_{n}.json").read_text())
                        for n in ("xyz", "verts"))
    reference = freihand_evaluation(joints, gt_xyz, verts, gt_verts)
    assert set(metrics["model"]) == set(reference)
    # In the benchmark's reported units (scores.txt: mean errors in cm, AUCs and F-scores as
    # fractions). The loader keeps annotations in float32, which moves means by ~1e-6 mm.
    for key, value in reference.items():
        unit = 10.0 if key.endswith(("_mje", "_mve")) else 1.0  # mm -> cm
        assert metrics["model"][key] / unit == pytest.approx(value / unit, abs=1e-6), key


def test_ground_truth_as_prediction_scores_zero(tree, tmp_path):
    gt = tree["fh_eval_gt"]
    write_freihand_pred(tmp_path / "pred.json", gt["xyz"], gt["verts"])
    joints, verts = read_freihand_pred(tmp_path / "pred.json", count=3)
    m = compute_metrics(joints, gt["xyz"], verts, gt["verts"])
    assert m["cs_mje"] == pytest.approx(0, abs=1e-9) and m["cs_mve"] == pytest.approx(0, abs=1e-9)
    assert m["f5"] == pytest.approx(1.0)


def test_pred_json_does_not_depend_on_evaluation_ground_truth(tree, freihand_run, tmp_path):
    copy = tmp_path / "fh"
    shutil.copytree(tree["freihand"], copy)
    tree = {**tree, "freihand": copy}
    first = (_eval(tree, freihand_run, "freihand", tmp_path / "a") / "pred.json").read_bytes()
    rng = np.random.default_rng(5)
    for name in ("xyz", "verts"):
        path = copy / f"evaluation_{name}.json"
        arr = np.asarray(json.loads(path.read_text()))
        path.write_text(json.dumps((arr + rng.normal(0, 0.05, arr.shape)).tolist()))
    second = (_eval(tree, freihand_run, "freihand", tmp_path / "b") / "pred.json").read_bytes()
    assert second == first
    for name in ("xyz", "verts", "mano"):
        (copy / f"evaluation_{name}.json").unlink()
    out = _eval(tree, freihand_run, "freihand", tmp_path / "c")
    assert (out / "pred.json").read_bytes() == first
    assert "model" not in json.loads((out / "metrics.json").read_text())


def test_ho3d_train_and_submission(tree, tmp_path):
    ckpt = _train(tree, "ho3d", tmp_path / "run")
    out = _eval(tree, ckpt, "ho3d", tmp_path / "ev")
    raw = json.loads((out / "pred.json").read_text())
    assert len(raw) == 2 and len(raw[0]) == 2 and len(raw[1][0]) == 778
    joints, verts = read_ho3d_pred(out / "pred.json", count=2)
    # OpenGL axes in the file: the hands are in front of the camera (z < 0 there)
    assert np.all(np.asarray(raw[0])[..., 2] < 0) == np.all(joints[..., 2] > 0)
    assert not (out / "pck.png").exists()  # the evaluation split has no ground truth


def test_real_data_without_mano_fails_at_start(tree, tmp_path, capsys):
    rc = main(["train", "--config", "freihand", "--data-root", str(tree["freihand"]),
               "--out", str(tmp_path / "r"), "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--mano" in err and "MANO_RIGHT.pkl" in err
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_missing_data_root_is_named(tree, tmp_path, capsys):
    rc = main(["train", "--config", "freihand", "--mano", str(tree["mano"]),
               "--out", str(tmp_path / "r"), "--quiet"])
    assert rc == 2 and "--data-root" in capsys.readouterr().err


def test_strict_config_at_any_depth_through_the_cli(tmp_path, capsys):
    for bad, key in ((["--set", "train.nope=1"], "train.nope"),
                     (["--set", "data.train.0.rooot=\"x\""], "data.train.0.rooot"),
                     (["--set", "input.photometric.hue_x=1"], "input.photometric.hue_x")):
        rc = main(["train", "--config", "tiny", "--out", str(tmp_path / "r"), "--quiet", *bad])
        assert rc == 2
        assert key in capsys.readouterr().err
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"train": {"steps": 3}, "data": {"test": {"sample": 3}}}))
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "data.test.sample" in err and "c.json" in err


@pytest.mark.parametrize("dataset", ["freihand", "ho3d"])
def test_data_check(tree, tmp_path, capsys, dataset):
    copy = tmp_path / dataset
    shutil.copytree(tree[dataset], copy)
    assert main(["data", "check", "--dataset", dataset, "--data-root", str(copy), "--quiet",
                 "--subset"]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and ("130240" in out if dataset == "freihand" else "66034" in out)
    # not the official size: a problem unless --subset
    assert main(["data", "check", "--dataset", dataset, "--data-root", str(copy),
                 "--quiet"]) == 1
    capsys.readouterr()
    victim = (sorted((copy / "training" / "rgb").glob("*.jpg"))[5] if dataset == "freihand"
              else sorted((copy / "train" / "SM1" / "rgb").glob("*.png"))[1])
    victim.unlink()
    assert main(["data", "check", "--dataset", dataset, "--data-root", str(copy), "--quiet",
                 "--subset"]) == 1
    out = capsys.readouterr().out
    assert victim.name in out and "NOT OK" in out


def _outside_by_rectification(K, points2d, focal, size=224):
    """Fraction of each sample's points outside the affine crop, by dgp_ops' own map."""
    import torch

    from dgp_ops.rectify import rectification, transform_points2d

    K = torch.as_tensor(np.asarray(K), dtype=torch.float64)
    n = len(K)
    rect = rectification(K, torch.zeros(n, 2, dtype=torch.float64),
                         torch.ones(n, dtype=torch.float64), focal=focal, out_size=size,
                         mode="affine")
    uv = transform_points2d(rect.H, torch.as_tensor(np.asarray(points2d), dtype=torch.float64))
    inside = ((uv >= -0.5) & (uv <= size - 0.5)).all(-1)
    return 1.0 - inside.double().mean(-1).numpy()


def _coverage_row(out: str, split: str) -> list[str]:
    section = out[out.index("affine window"):]
    return next(line.split() for line in section.splitlines() if line.startswith(split + " "))


def test_data_check_reports_the_affine_window_coverage(tree, capsys):
    import pickle

    from handdgp_models.data.coverage import box_fraction_outside

    assert main(["data", "check", "--dataset", "freihand", "--data-root",
                 str(tree["freihand"]), "--quiet", "--subset"]) == 0
    out = capsys.readouterr().out
    assert "f_c = 1000 px" in out and "freihand-perspective" in out
    for split, versions in (("training", 4), ("evaluation", 1)):
        K = np.array(json.loads((tree["freihand"] / f"{split}_K.json").read_text()))
        xyz = np.array(json.loads((tree["freihand"] / f"{split}_xyz.json").read_text()))
        uv = np.einsum("nij,nkj->nki", K, xyz)
        frac = _outside_by_rectification(K, uv[..., :2] / uv[..., 2:], 1000.0)
        assert _coverage_row(out, split) == [split, str(3 * versions),
                                             str(int((frac > 0).sum()) * versions),
                                             f"{frac.mean():.3f}", "keypoints"]
    assert main(["data", "check", "--dataset", "ho3d", "--data-root", str(tree["ho3d"]),
                 "--quiet", "--subset"]) == 0
    out = capsys.readouterr().out
    assert "f_c = 500 px" in out
    metas = [pickle.loads(p.read_bytes()) for p in
             sorted((tree["ho3d"] / "train" / "SM1" / "meta").glob("*.pkl"))]
    K = np.stack([m["camMat"] for m in metas])
    joints = np.stack([m["handJoints3D"] for m in metas]) * np.array([1.0, -1.0, -1.0])
    uv = np.einsum("nij,nkj->nki", K, joints)
    frac = _outside_by_rectification(K, uv[..., :2] / uv[..., 2:], 500.0)
    assert _coverage_row(out, "train")[1:] == ["3", str(int((frac > 0).sum())),
                                               f"{frac.mean():.3f}", "keypoints"]
    assert _coverage_row(out, "evaluation")[-2:] == ["box", "area"]
    # the box area outside, against points drawn uniformly in each box
    metas = [pickle.loads(p.read_bytes()) for p in
             sorted((tree["ho3d"] / "evaluation" / "SM2" / "meta").glob("*.pkl"))]
    K = np.stack([m["camMat"] for m in metas])
    boxes = np.stack([m["handBoundingBox"] for m in metas])
    boxes[:, :2] -= 150  # push the boxes partly out of the window
    rng = np.random.default_rng(0)
    pts = boxes[:, None, :2] + rng.random((len(boxes), 20000, 2)) * (boxes[:, None, 2:]
                                                                      - boxes[:, None, :2])
    np.testing.assert_allclose(box_fraction_outside(K, boxes, 500.0, 224),
                               _outside_by_rectification(K, pts, 500.0), atol=0.01)
    assert box_fraction_outside(K, boxes, 500.0, 224).max() > 0.05
