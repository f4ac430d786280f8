"""Command line smoke tests on the tiny config: main, eval, predict, errors."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from handdgp_models.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    hier = out.parent / "hier"
    rc = main(["main", "--config", "tiny", "--out", str(out), "--quiet",
               "--set", f'cache_dir="{hier}"', "--set", "train.steps=2"])
    assert rc == 0
    return out


def test_main_writes_report(run_dir):
    for name in ("report.md", "metrics.json", "pck.png", "checkpoint.pt", "log.jsonl"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"cs_mje", "pa_mje", "auc_cs_verts"} <= set(metrics["model"])
    assert "cs_mje" in metrics["baseline_mean_t"]
    report = (run_dir / "report.md").read_text()
    assert "CS-MJE" in report and "mean training translation" in report
    assert list((run_dir / "overlays").glob("*.png"))
    assert "![contact sheet](contact_sheet.png)" in report
    sheet = cv2.imread(str(run_dir / "contact_sheet.png"))
    panel = cv2.imread(str(next((run_dir / "overlays").glob("*.png"))))
    assert panel.shape[1] == 3 * panel.shape[0] - 3 * 24  # prediction, ground truth, top view
    assert sheet.shape[1] > 2 * panel.shape[1]  # the worst and the median samples


def test_eval_subcommand(run_dir, tmp_path):
    rc = main(["eval", "--checkpoint", str(run_dir / "checkpoint.pt"), "--out", str(tmp_path),
               "--quiet"])
    assert rc == 0
    first = json.loads((run_dir / "metrics.json").read_text())["model"]
    again = json.loads((tmp_path / "metrics.json").read_text())["model"]
    assert again["cs_mje"] == pytest.approx(first["cs_mje"], rel=1e-5)
    assert (tmp_path / "metrics.md").is_file() and (tmp_path / "pck.png").is_file()


def test_predict_subcommand(run_dir, tmp_path):
    img = (np.random.default_rng(0).random((120, 160, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), img)
    (tmp_path / "K.json").write_text(json.dumps({"fx": 200, "fy": 200, "cx": 80, "cy": 60}))
    rc = main(["predict", "--checkpoint", str(run_dir / "checkpoint.pt"),
               "--image", str(tmp_path / "in.png"), "--intrinsics", str(tmp_path / "K.json"),
               "--box", "80,60,90", "--out", str(tmp_path / "p")])
    assert rc == 0
    pred = json.loads((tmp_path / "p" / "predictions" / "in.json").read_text())
    (hand,) = pred["hands"]
    assert np.asarray(hand["joints"]).shape == (21, 3)
    assert np.asarray(hand["vertices"]).shape == (778, 3)
    assert hand["box"] == [35, 15, 125, 105] and hand["right"] is True
    assert (tmp_path / "p" / "overlays" / "in.png").is_file()
    # default intrinsics and box
    rc = main(["predict", "--checkpoint", str(run_dir / "checkpoint.pt"),
               "--image", str(tmp_path / "in.png"), "--out", str(tmp_path / "q")])
    assert rc == 0
    K = json.loads((tmp_path / "q" / "predictions" / "in.json").read_text())["camera"]["K"]
    assert K[0][0] == 160 and K[0][2] == pytest.approx(79.5)


def test_errors(tmp_path, capsys):
    assert main(["train", "--config", "nope", "--out", str(tmp_path)]) == 2
    assert "neither" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", "x.pt", "--image", str(tmp_path / "none.png"),
                 "--out", str(tmp_path)]) == 2
    assert "--input" in capsys.readouterr().err


def test_module_entry_point_help():
    r = subprocess.run([sys.executable, "-m", "handdgp_models", "--help"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "predict" in r.stdout
