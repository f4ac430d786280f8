"""Trainer: loss goes down, exact resume, checkpoints, config overrides."""

import json

import pytest
import torch

from handdgp_models.build import (
    build_hand,
    build_network,
    build_pipeline,
    build_test_data,
    build_train_data,
)
from handdgp_models.config import apply_overrides, load_config, to_dict
from handdgp_models.data import collate_samples
from handdgp_models.losses import LossWeights, total_loss
from handdgp_models.train import _forward_losses, load_checkpoint, train


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    return root


def _cfg(shared, *extra):
    return load_config("tiny", [f'cache_dir="{shared / "cache"}"', *extra])


@pytest.mark.parametrize("consistency_stage", [1, 2])
def test_consistency_terms_count_from_their_stage(shared, consistency_stage):
    cfg = _cfg(shared, "input.two_views=true", f"train.consistency_stage={consistency_stage}")
    hand = build_hand(cfg)
    train_ds = build_train_data(cfg, hand)
    pipe = build_pipeline(cfg, hand, train=True)
    g = torch.Generator().manual_seed(0)
    batch = collate_samples([pipe(train_ds[i], g) for i in range(2)])
    model = build_network(cfg, hand)
    for stage in (1, 2):
        terms = _forward_losses(model, batch, cfg, stage, model.faces)["terms"]
        expected = stage >= consistency_stage
        assert ("consist2d" in terms and "consist3d" in terms) == expected, (stage, terms)


def test_few_steps_lower_the_loss(shared):
    cfg = _cfg(shared)
    hand = build_hand(cfg)
    train_ds = build_train_data(cfg, hand)
    pipe = build_pipeline(cfg, hand, train=False)
    batch = collate_samples([pipe(train_ds[i]) for i in range(4)])
    torch.manual_seed(0)
    model = build_network(cfg, hand)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):
        res = _forward_losses(model, batch, cfg, 2, model.faces)
        loss = total_loss(res["terms"], LossWeights())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0], losses


def test_resume_reaches_the_same_weights(shared):
    # a fixed thread count: bit-exact resume needs the same reduction order in both runs
    cfg = _cfg(shared, "train.steps=5", "train.checkpoint_every=100", "train.threads=2")
    a = train(cfg, shared / "a", progress=False)
    train(cfg, shared / "b", progress=False, max_steps=3)
    assert load_checkpoint(shared / "b" / "checkpoint.pt")["step"] == 3
    b = train(cfg, shared / "b", progress=False)
    assert a["step"] == b["step"] == 5
    sa = load_checkpoint(shared / "a" / "checkpoint.pt")
    sb = load_checkpoint(shared / "b" / "checkpoint.pt")
    for k, v in sa["model"].items():
        torch.testing.assert_close(sb["model"][k], v, rtol=0, atol=0, msg=k)
    assert json.loads(sa["config"]) == to_dict(cfg)
    assert not list((shared / "a").glob("*.tmp"))
    lines = (shared / "a" / "log.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] == 5


def test_overrides_and_errors(tmp_path):
    cfg = apply_overrides(load_config("tiny"), ["train.steps=7", 'model.method="two_stage"'])
    assert cfg.train.steps == 7 and cfg.model.method == "two_stage"
    with pytest.raises(ValueError, match="unknown key"):
        apply_overrides(cfg, ["train.nope=1"])
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides(cfg, ["train.steps"])
    with pytest.raises(ValueError, match="neither"):
        load_config(str(tmp_path / "missing.json"))
    path = tmp_path / "c.toml"
    path.write_text('[train]\nsteps = 3\n')
    assert load_config(path).train.steps == 3


def test_data_depth_and_orientation_reach_the_datasets(tmp_path):
    cfg = load_config("tiny", ['data.train.0.depth=[0.5, 0.55]', "data.test.depth=[0.5, 0.55]",
                               "data.train.0.orientation_spread=30",
                               "data.test.orientation_spread=30",
                               "data.train.0.samples=3", "data.test.samples=2",
                               f'cache_dir="{tmp_path}"'])
    hand = build_hand(cfg)
    train_ds = build_train_data(cfg, hand)
    test_ds = build_test_data(cfg, hand)
    for ds in (train_ds, test_ds):
        assert ds.camera.depth == (0.5, 0.55) and ds.orientation_spread == 30.0
        # The hand's centre sits at the drawn depth (the camera sampler may push it back a
        # few per cent to fit the hand in the image).
        z = [float(ds[i]["verts3d"][:, 2].min() + ds[i]["verts3d"][:, 2].max()) / 2
             for i in range(len(ds))]
        assert all(0.5 <= d <= 0.55 * 1.2 for d in z), z
    assert test_ds.camera.focal != train_ds.camera.focal
    with pytest.raises(ValueError, match="data.train.0.depth"):
        load_config("tiny", ["data.train.0.depth=[0.9, 0.4]"])


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_resumes(shared, tmp_path):
    """SIGTERM (a scheduler's preemption) is handled like Ctrl-C: checkpoint, clean exit."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "handdgp_models", "train", "--config", "tiny", "--out",
           str(out), "--quiet", "--set", f'cache_dir="{shared / "cache"}"',
           "--set", "train.steps=100000",
           "--set", "train.checkpoint_every=100000"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while not (out / "log.jsonl").is_file() or not (out / "log.jsonl").read_text():
            assert proc.poll() is None and time.time() < deadline, "training did not start"
            time.sleep(0.2)  # the first epoch's log line: training is under way
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "checkpoint saved" in err and "Traceback" not in err
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["step"] >= 2
    cfg = load_config("tiny", [f'cache_dir="{shared / "cache"}"',
                               f"train.steps={state['step'] + 1}"])
    assert train(cfg, out, progress=False)["step"] == state["step"] + 1
