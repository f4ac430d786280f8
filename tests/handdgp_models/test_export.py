"""Deployment: the network exported with a dynamic batch, compiled into an AOTInductor package,
loaded in a fresh process that imports only torch and dgp_ops, equal to eager; `export` and
`predict --package` from the command line."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from handdgp_models.cli import main
from handdgp_models.config import load_config
from handdgp_models.export import DeployedNetwork, export_network, metadata_path
from handdgp_models.run import model_from_checkpoint
from handdgp_models.train import train

#: Eager and compiled programs agree to this (metres; the compiled kernels fuse and reorder
#: float32 arithmetic).
ATOL_M = 1e-4

# Runs in a fresh interpreter: only torch and dgp_ops, never the training code.
_FRESH = """
import sys, torch
import dgp_ops
program = torch._inductor.aoti_load_package(sys.argv[1])
inputs = [x.to(sys.argv[4]) for x in torch.load(sys.argv[2])]
outputs = program(*inputs)
assert "handdgp_models" not in sys.modules, "the package needed the training code"
torch.save([o.cpu() for o in outputs], sys.argv[3])
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    cfg = load_config("tiny", [f'cache_dir="{root / "cache"}"', "train.steps=1"])
    train(cfg, root / "run", progress=False)
    return root, root / "run" / "checkpoint.pt"


#: Where the package is compiled and run: the CPU here, a CUDA device in scripts/gpu_check.sh.
DEVICES = ["cpu", pytest.param("cuda", marks=[
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")])]


def _inputs(size: int, batch: int):
    g = torch.Generator().manual_seed(batch)
    f = 0.9 * size
    K = torch.tensor([[f, 0.0, size / 2], [0.0, f, size / 2], [0.0, 0.0, 1.0]])
    angle = torch.rand(batch, generator=g)
    c, s = torch.cos(angle), torch.sin(angle)
    R = torch.zeros(batch, 3, 3)
    R[:, 0, 0], R[:, 0, 1], R[:, 1, 0], R[:, 1, 1], R[:, 2, 2] = c, -s, s, c, 1.0
    return (torch.rand(batch, 3, size, size, generator=g), K.expand(batch, 3, 3).contiguous(), R)


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_package_in_a_fresh_process_equals_eager(trained, tmp_path, device):
    root, ckpt = trained
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "model.pt2"),
                 "--device", device]) == 0
    meta = json.loads(metadata_path(tmp_path / "model.pt2").read_text())
    model, cfg = model_from_checkpoint(ckpt)
    assert meta["input_size"] == cfg.model.input_size and meta["focal"] == cfg.model.focal
    assert np.array_equal(meta["faces"], model.faces.numpy())
    assert meta["input"]["mode"] == cfg.input.mode and len(meta["bones"]) == 20
    assert meta["device"] == device
    for batch in (1, 3):  # the example batch was 2: the batch dimension is dynamic
        inputs = _inputs(cfg.model.input_size, batch)
        torch.save(inputs, tmp_path / "in.pt")
        r = subprocess.run([sys.executable, "-c", _FRESH, str(tmp_path / "model.pt2"),
                            str(tmp_path / "in.pt"), str(tmp_path / "out.pt"), device],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        compiled = torch.load(tmp_path / "out.pt")
        with torch.no_grad():
            eager = DeployedNetwork(model)(*inputs)
        for name, a, b in zip(("joints", "verts", "translation", "weights", "valid", "kp2d"),
                              compiled, eager, strict=True):
            assert a.shape == b.shape, name
            tol = 1e-3 if name == "kp2d" else ATOL_M  # kp2d in pixels
            tol *= 1 if device == "cpu" else 10  # cuDNN's convolutions against the CPU's
            torch.testing.assert_close(a, b, rtol=1e-4, atol=tol, msg=name)
    # predict from the package gives what predict from the checkpoint gives: a right and a
    # left hand in one batch
    image = (np.random.default_rng(0).random((90, 120, 3)) * 255).astype(np.uint8)
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "im.png"), image)
    (tmp_path / "boxes.json").write_text(json.dumps({"im.png": [
        {"box": [10, 10, 60, 70], "right": True}, {"box": [55, 20, 110, 80], "right": False}]}))
    for source, out in (("--package", tmp_path / "model.pt2"), ("--checkpoint", ckpt)):
        assert main(["predict", source, str(out), "--input", str(tmp_path / "in"), "--boxes",
                     str(tmp_path / "boxes.json"), "--out", str(tmp_path / source[2:]),
                     "--quiet"]) == 0
    a, b = (json.loads((tmp_path / d / "predictions" / "im.json").read_text())
            for d in ("package", "checkpoint"))
    assert [h["right"] for h in a["hands"]] == [True, False]
    for ha, hb in zip(a["hands"], b["hands"], strict=True):
        np.testing.assert_allclose(ha["vertices"], hb["vertices"],
                                   atol=ATOL_M * (1 if device == "cpu" else 10))
    assert (tmp_path / "package" / "overlays" / "im.png").is_file()


def test_export_keeps_the_batch_dynamic(trained):
    _, ckpt = trained
    model, _ = model_from_checkpoint(ckpt)
    program = export_network(model)
    for batch in (1, 5):
        inputs = _inputs(model.config.input_size, batch)
        with torch.no_grad():
            want = DeployedNetwork(model)(*inputs)
        got = program.module()(*inputs)
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_bad_package_paths_are_named(trained, tmp_path, capsys):
    _, ckpt = trained
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "m.zip")]) == 2
    assert ".pt2" in capsys.readouterr().err
    image = np.zeros((40, 40, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "im.png"), image)
    assert main(["predict", "--package", str(tmp_path / "none.pt2"), "--image",
                 str(tmp_path / "im.png"), "--out", str(tmp_path / "p")]) == 2
    assert "--package" in capsys.readouterr().err
