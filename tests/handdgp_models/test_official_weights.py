"""The official weights: conversion of a release-layout checkpoint (random weights) on a
MobRecon-format template, agreement with an independent forward pass of the release, refusal
of malformed files, and the converted checkpoint through ``eval``, ``predict`` and
``train --init``."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch

from handdgp_models.checkpoint import CheckpointError
from handdgp_models.cli import main
from handdgp_models.export import DeployedNetwork, export_network, metadata_path
from handdgp_models.hand import load_mano
from handdgp_models.model import load_hierarchy
from handdgp_models.model.mobrecon import load_mobrecon_template
from handdgp_models.official import convert_official, read_official_state
from handdgp_models.run import model_from_checkpoint

from . import release_reference as rr

pytestmark = pytest.mark.slow  # a full-size ResNet-50 release network


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A MobRecon-format template of the embedded hand (non-convex up-sampling weights with
    explicit zeros), a release-layout checkpoint with random weights and its conversion."""
    tmp = tmp_path_factory.mktemp("official")
    hand = load_mano()
    hier = load_hierarchy(hand.template, hand.faces, cache_dir=tmp / "cache")
    rng = np.random.default_rng(0)
    rows = []
    for index, weight in zip(hier.up_index, hier.up_weight, strict=True):
        w = weight.numpy() + rng.normal(scale=0.5, size=weight.shape)
        w[rng.random(w.shape) < 0.1] = 0.0
        rows.append((index.numpy(), w))
    rr.write_mobrecon_template(tmp / "template", hier.vertices, hier.faces, rows,
                               hand.keypoint_regressor.numpy())
    stored = load_mobrecon_template(tmp / "template")
    torch.manual_seed(0)
    net = rr.ReleaseHandDGP(stored.hierarchy.spirals[:4],
                            [stored.hierarchy.up_matrix(i).float() for i in range(4)],
                            stored.regressor)
    rr.randomise(net)
    state = rr.write_release_checkpoint(tmp / "official.ckpt", net)
    converted = convert_official(tmp / "official.ckpt", tmp / "template", tmp / "converted.pt")
    return {"tmp": tmp, "net": net.eval(), "state": state, "converted": converted,
            "cache": f"cache_dir={json.dumps(str(tmp / 'cache'))}"}


def _inputs(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, 224, 224, generator=g, dtype=dtype)
    K = torch.tensor([[1000.0, 0, 112], [0, 1000.0, 112], [0, 0, 1]], dtype=dtype)
    return image, K.expand(2, 3, 3)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_converted_model_matches_an_independent_release_forward(files, dtype):
    model, cfg = model_from_checkpoint(files["converted"], [files["cache"]])
    assert cfg.model.variant == "release" and cfg.model.mesh == "stored"
    image, K = _inputs(dtype)
    with torch.no_grad():
        ours = model.to(dtype)(image, K)
        ref = files["net"].to(dtype)(image, K)
    assert (ref["uv"] < 0).any() or (ref["uv"] > 1).any()  # the clamped grid is exercised
    deviation = {
        "keypoints (crop units)": (ours["kp2d"] / 224 - ref["uv"]).abs().max(),
        "weights": (ours["weights"] - ref["weights"]).abs().max(),
        "camera-space vertices (m)": (ours["verts_cam"] - ref["verts_cs"]).abs().max(),
        "camera-space joints (m)": (ours["joints_cam"] - ref["joints_cs"]).abs().max(),
    }
    print({k: f"{float(v):.2e}" for k, v in deviation.items()})
    for name, value in deviation.items():
        assert float(value) <= 1e-5, name


def test_conversion_keeps_every_weight_and_records_the_mesh(files):
    state = torch.load(files["converted"], weights_only=True)
    assert set(state["converted_from"]) == {"checkpoint", "checkpoint_sha256",
                                            "transform.pkl_sha256", "j_reg.npy_sha256"}
    w = state["model"]
    release = files["state"]
    assert torch.equal(w["backbone.7.2.conv3.weight"],
                       release["model.backbone.layer4.2.conv3.weight"])
    spatial = release["model.decoder3d.spiral_layers.1.conv.spatial_layer.weight"]
    assert torch.equal(w["mesh.convs.1.depthwise"], spatial.reshape(spatial.shape[0], 9))
    assert torch.equal(w["weight_head.conv.0.bias"], release["model.decoderw_latent.0.bias"])
    assert "mesh.inp.weight" not in w and "mesh.reduce.2.bias" not in w
    assert state["mesh"]["up_weight.0"].min() < 0  # non-convex weights kept
    assert (state["mesh"]["up_weight.0"] == 0).any()  # explicit zeros kept


def _convert(files, name: str, mutate) -> str:
    """Convert a mutated copy of the release state; returns the error message."""
    state = {k: v.clone() for k, v in files["state"].items()}
    extra = mutate(state) or {}
    path = files["tmp"] / f"{name}.ckpt"
    torch.save({"state_dict": state, **extra}, path)
    with pytest.raises(CheckpointError) as info:
        convert_official(path, files["tmp"] / "template", files["tmp"] / f"{name}.pt")
    assert str(path) in str(info.value)
    assert not (files["tmp"] / f"{name}.pt").exists()
    return str(info.value)


def test_missing_and_misshapen_weights_are_listed(files):
    def drop(state):
        del state["model.decoder3d.upsample_matrix"], state["model.decoderw.4.bias"]

    msg = _convert(files, "missing", drop)
    assert "missing: " in msg and "decoder3d.upsample_matrix" in msg and "decoderw.4.bias" in msg

    def reshape(state):
        state["model.decoder2d.1.0.weight"] = torch.zeros(100, 224)

    msg = _convert(files, "shape", reshape)
    assert "wrong shape: decoder2d.1.0.weight (100, 224) (expected (112, 224))" in msg

    def extra(state):
        state["model.decoder3d.extra_layer.weight"] = torch.zeros(3)

    assert "decoder3d.extra_layer.weight" in _convert(files, "unexpected", extra)


def test_weights_of_another_template_are_refused(files):
    def other(state):
        state["model.decoder3d.up_transform.2"] = state["model.decoder3d.up_transform.2"] * 2

    assert "decoder3d.up_transform.2 differs from transform.pkl" in _convert(files, "other", other)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_checkpoint_with_a_code_running_global_is_refused(files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    msg = _convert(files, "evil", lambda state: {"callbacks": _RunsCode()})
    assert "system" in msg and "refused" in msg
    assert not (tmp_path / "pwned").exists()
    path = tmp_path / "not_a_dict.ckpt"
    torch.save({"state_dict": {"model.backbone.conv1.weight": [1, 2]}}, path)
    with pytest.raises(CheckpointError, match="not named tensors"):
        read_official_state(path)


@pytest.mark.parametrize("content", [b"", b"hello", b"PK\x03\x04 truncated"])
def test_an_unreadable_checkpoint_is_named(tmp_path, content):
    path = tmp_path / "official.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"official checkpoint {path}: not a readable"):
        read_official_state(path)


def test_a_transform_pkl_with_a_code_running_global_is_refused(files, tmp_path):
    folder = tmp_path / "template"
    folder.mkdir()
    (folder / "j_reg.npy").write_bytes((files["tmp"] / "template" / "j_reg.npy").read_bytes())
    with open(folder / "transform.pkl", "wb") as f:
        pickle.dump({"vertices": _RunsCode()}, f)
    with pytest.raises(ValueError, match="transform.pkl.*refusing to load global"):
        convert_official(files["tmp"] / "official.ckpt", folder, tmp_path / "out.pt")


def test_the_converted_checkpoint_goes_through_eval_predict_and_fine_tuning(files, tmp_path,
                                                                            capsys):
    import cv2

    conv, cache = str(files["converted"]), files["cache"]
    test_set = json.dumps({"dataset": "synthetic", "samples": 2, "camera": "test"})
    synthetic = ["--set", f"data.test={test_set}", "--set", "eval.batch_size=2",
                 "--set", "eval.overlays=1", "--set", cache]
    assert main(["eval", "--checkpoint", conv, "--out", str(tmp_path / "eval"),
                 "--device", "cpu", "--quiet", *synthetic]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["samples"] == 2 and metrics["model"]["cs_mje"] > 0
    cv2.imwrite(str(tmp_path / "hand.png"), np.full((240, 320, 3), 90, np.uint8))
    assert main(["predict", "--checkpoint", conv, "--image", str(tmp_path / "hand.png"),
                 "--out", str(tmp_path / "pred"), "--quiet"]) == 0
    pred = json.loads((tmp_path / "pred" / "predictions" / "hand.json").read_text())
    assert np.asarray(pred["hands"][0]["vertices"]).shape == (778, 3)
    train_set = json.dumps([{"dataset": "synthetic", "samples": 2}])
    assert main(["train", "--init", conv, "--out", str(tmp_path / "tuned"), "--quiet",
                 "--set", f"data.train={train_set}", "--set", "train.steps=1",
                 "--set", "train.batch_size=2", "--set", "train.device=\"cpu\"",
                 *synthetic]) == 0
    tuned, _ = model_from_checkpoint(tmp_path / "tuned" / "checkpoint.pt", [cache])
    start, _ = model_from_checkpoint(files["converted"], [cache])
    assert tuned.config.variant == "release"
    changed = [k for k, v in tuned.state_dict().items()
               if v.is_floating_point() and not torch.equal(v, start.state_dict()[k])]
    assert changed and "mesh.lift" in changed
    capsys.readouterr()


def test_the_converted_network_exports_with_a_dynamic_batch(files):
    model, _ = model_from_checkpoint(files["converted"], [files["cache"]])
    program = export_network(model).module()
    size = model.config.input_size
    for batch in (1, 3):  # the example batch was 2
        g = torch.Generator().manual_seed(batch)
        K = torch.tensor([[0.9 * size, 0, size / 2], [0, 0.9 * size, size / 2], [0, 0, 1.0]])
        inputs = (torch.rand(batch, 3, size, size, generator=g), K.expand(batch, 3, 3),
                  torch.eye(3).expand(batch, 3, 3))
        with torch.no_grad():
            for a, b in zip(program(*inputs), DeployedNetwork(model)(*inputs), strict=True):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_the_converted_checkpoint_exports_and_predicts_from_its_package(files, tmp_path):
    import cv2

    package = tmp_path / "official.pt2"
    assert main(["export", "--checkpoint", str(files["converted"]), "--out", str(package)]) == 0
    meta = json.loads(metadata_path(package).read_text())
    model, _ = model_from_checkpoint(files["converted"], [files["cache"]])
    assert np.array_equal(meta["faces"], model.faces.numpy())
    cv2.imwrite(str(tmp_path / "hand.png"), np.full((240, 320, 3), 90, np.uint8))
    for source, path in (("--package", package), ("--checkpoint", files["converted"])):
        assert main(["predict", source, str(path), "--image", str(tmp_path / "hand.png"),
                     "--out", str(tmp_path / source[2:]), "--quiet", "--no-overlays",
                     "--mesh-format", "none"]) == 0
    a, b = (json.loads((tmp_path / d / "predictions" / "hand.json").read_text())["hands"][0]
            for d in ("package", "checkpoint"))
    np.testing.assert_allclose(a["vertices"], b["vertices"], atol=1e-4)  # metres
