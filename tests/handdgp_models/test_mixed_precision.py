"""Mixed-precision training (train.precision): the heads in half precision, the geometry, the
DGP solve and the losses in float32, exact resume at a fixed setting."""

import pytest
import torch

from handdgp_models.config import load_config
from handdgp_models.model import build_model
from handdgp_models.train import load_checkpoint, mixed_precision, train


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("amp")


def _cfg(cache, precision, *extra):
    return load_config("tiny", [f'cache_dir="{cache}"', f'train.precision="{precision}"',
                                "train.threads=2", *extra])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_geometry_stays_in_float32_under_autocast(cache, dtype):
    cfg = _cfg(cache, "fp32")
    model = build_model(cfg.model, cache_dir=cache).eval()
    S = cfg.model.input_size
    image = torch.rand(2, 3, S, S)
    K = torch.tensor([[85.0, 0, S / 2], [0, 85.0, S / 2], [0, 0, 1]]).expand(2, 3, 3)
    with torch.no_grad():
        full = model(image, K)
        with torch.autocast("cpu", dtype=dtype):
            half = model(image, K)
            assert model.backbone(image).dtype == dtype  # the trunk does run in half precision
    for key in ("kp2d", "weights", "verts_rel", "t", "verts_cam", "joints_cam"):
        assert half[key].dtype == torch.float32, key
    assert half["valid"].all()
    # half-precision heads move the prediction a little, not the geometry's arithmetic
    torch.testing.assert_close(half["kp2d"], full["kp2d"], rtol=0, atol=2.0)
    rel = (half["verts_rel"] - full["verts_rel"]).norm(dim=-1).max()
    assert float(rel) < 0.02, rel


def test_mixed_precision_context_is_a_no_op_for_fp32():
    with mixed_precision("cpu", "fp32"):
        assert not torch.is_autocast_enabled("cpu")
    with mixed_precision("cpu", "bf16"):
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_training_resumes_exactly_at_a_fixed_precision(cache, precision):
    cfg = _cfg(cache, precision, "train.steps=4", "train.checkpoint_every=100")
    a = train(cfg, cache / f"{precision}_a", progress=False)
    train(cfg, cache / f"{precision}_b", progress=False, max_steps=2)
    b = train(cfg, cache / f"{precision}_b", progress=False)
    assert a["step"] == b["step"] == 4 and a["skipped"] == b["skipped"]
    sa = load_checkpoint(cache / f"{precision}_a" / "checkpoint.pt")
    sb = load_checkpoint(cache / f"{precision}_b" / "checkpoint.pt")
    for k, v in sa["model"].items():
        torch.testing.assert_close(sb["model"][k], v, rtol=0, atol=0, msg=k)
    assert torch.isfinite(torch.tensor(a["final_loss"]))
    assert ("scaler" in sa) == (precision == "fp16")
    if precision == "fp16":
        assert sa["scaler"]["scale"] == sb["scaler"]["scale"]


def test_bad_precision_is_named():
    with pytest.raises(ValueError, match="train.precision"):
        load_config("tiny", ['train.precision="fp8"'])
