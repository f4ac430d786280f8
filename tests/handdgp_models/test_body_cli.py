"""The full-body variant end to end through the CLI on a tiny Human3.6M tree: train --config
h36m, eval (camera-space errors over the 29 keypoints and the 17 H36M joints), DGP with
N = 29, and the errors of a body run without its files."""

import json

import numpy as np
import pytest
import torch

import dgp_ops
from handdgp_models.cli import main
from handdgp_models.run import model_from_checkpoint
from tests.handdgp_models.h36m_fixtures import write_h36m, write_h36m_regressor, write_smpl
from tests.handdgp_models.test_real_datasets import TOY

SUBJECTS = {1: [0, 5], 5: [0], 6: [0], 7: [0], 8: [0], 9: [0, 64], 11: [0]}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("body")
    write_h36m(root / "h36m", SUBJECTS)
    return {"root": root, "data": root / "h36m", "smpl": write_smpl(root / "SMPL_NEUTRAL.pkl"),
            "reg": write_h36m_regressor(root / "J_regressor_h36m_correct.npy"),
            "hier": root / "hier"}


def _toy(tree) -> list[str]:
    return [*sum((["--set", s] for s in TOY), []),
            "--set", f'cache_dir="{tree["hier"]}"']


@pytest.fixture(scope="module")
def body_run(tree):
    out = tree["root"] / "run"
    rc = main(["train", "--config", "h36m", "--data-root", str(tree["data"]), "--smpl",
               str(tree["smpl"]), "--out", str(out), "--quiet", *_toy(tree)])
    assert rc == 0
    return out / "checkpoint.pt"


def test_train_and_eval_print_camera_space_errors(tree, body_run, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "ev"
    rc = main(["eval", "--checkpoint", str(body_run), "--data-root", str(tree["data"]),
               "--h36m-regressor", str(tree["reg"]), "--out", str(out), "--quiet",
               "--device", "cpu"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "CS-MJE (mm)" in printed and "CS-MJE H36M 17 joints (mm)" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["samples"] == 3  # S9 frames 0 and 64, S11 frame 0, frontal camera
    m = metrics["model"]
    for key in ("cs_mje", "cs_mve", "pa_mje", "rr_mje", "h36m_cs_mje", "h36m_pa_mje",
                "h36m_rr_mje"):
        assert np.isfinite(m[key]) and m[key] > 0
    joints, verts = json.loads((out / "pred.json").read_text())
    assert np.asarray(joints).shape == (3, 29, 3) and np.asarray(verts).shape == (3, 1052, 3)
    assert list((out / "overlays").glob("*.png"))


def test_body_network_has_29_keypoints_and_weights(body_run, tree):
    model, cfg = model_from_checkpoint(body_run, [f'cache_dir="{tree["hier"]}"'])
    assert cfg.body is not None and cfg.model.focal == 400.0 and model.root_index == 0
    s = cfg.model.input_size
    K = torch.tensor([[400.0, 0, s / 2], [0, 400.0, s / 2], [0, 0, 1]]).expand(2, 3, 3)
    with torch.no_grad():
        out = model(torch.rand(2, 3, s, s), K)
    assert out["kp2d"].shape == (2, 29, 2) and out["weights"].shape == (2, 29)
    assert out["joints_cam"].shape == (2, 29, 3) and out["verts_cam"].shape == (2, 1052, 3)
    assert torch.allclose(out["joints_rel"][:, 0], torch.zeros(2, 3), atol=1e-6)


def test_dgp_with_29_body_keypoints():
    from handdgp_models.body import load_smpl

    body = load_smpl().double()
    pose = torch.randn(4, 72, dtype=torch.float64) * 0.2
    _, kp = body(pose)
    rel = kp - kp[:, :1]
    t_true = torch.tensor([[0.2, -0.1, 4.0]], dtype=torch.float64).expand(4, 3)
    K = torch.tensor([[1145.0, 0, 512], [0, 1144.0, 515], [0, 0, 1]], dtype=torch.float64)
    proj = (rel + t_true[:, None]) @ K.T
    uv = (proj[..., :2] / proj[..., 2:]).requires_grad_()
    w = torch.rand(4, 29, dtype=torch.float64, requires_grad=True)
    t = dgp_ops.solve_translation(rel, uv, K, w)
    assert torch.allclose(t, t_true, atol=1e-8)
    t.sum().backward()
    assert uv.grad.shape == (4, 29, 2) and w.grad.shape == (4, 29)


def test_body_run_without_smpl_fails_at_start(tree, tmp_path, capsys):
    rc = main(["train", "--config", "h36m", "--data-root", str(tree["data"]),
               "--out", str(tmp_path / "r"), "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--smpl" in err and "SMPL_NEUTRAL.pkl" in err
    assert not (tmp_path / "r" / "checkpoint.pt").exists()
    rc = main(["train", "--config", "h36m", "--data-root", str(tree["data"]), "--smpl",
               str(tmp_path / "missing.pkl"), "--out", str(tmp_path / "r"), "--quiet"])
    assert rc == 2 and "missing.pkl" in capsys.readouterr().err


def test_body_and_hand_settings_do_not_mix(tree, tmp_path, capsys):
    rc = main(["train", "--config", "tiny", "--smpl", str(tree["smpl"]),
               "--out", str(tmp_path / "r"), "--quiet"])
    assert rc == 2 and "--smpl" in capsys.readouterr().err
    rc = main(["train", "--config", "h36m", "--smpl", str(tree["smpl"]), "--data-root",
               str(tree["data"]), "--set", 'data.train.0.dataset="freihand"',
               "--out", str(tmp_path / "r"), "--quiet"])
    assert rc == 2 and "data.train.0.dataset" in capsys.readouterr().err
    rc = main(["train", "--config", "tiny", "--set", 'data.train.0.dataset="h36m"',
               "--out", str(tmp_path / "r"), "--quiet"])
    assert rc == 2 and "data.train.0.dataset" in capsys.readouterr().err
