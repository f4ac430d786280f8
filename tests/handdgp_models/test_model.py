"""HandDGP network: shapes, mesh hierarchy, feature sampling, gradients through DGP."""

import pytest
import torch

from handdgp_models.config import load_config
from handdgp_models.hand import load_mano
from handdgp_models.losses import camera_losses
from handdgp_models.model import DSConv, SpiralConv, build_model, sample_features
from handdgp_models.model.network import BACKBONES, backbone_channels


@pytest.fixture(scope="module")
def hand():
    return load_mano()


def _tiny(method="dgp", cache=None, decoder=None):
    cfg = load_config("tiny", [f'model.method="{method}"']
                      + ([f'model.decoder="{decoder}"'] if decoder is not None else []))
    return build_model(cfg.model, cache_dir=cache), cfg


def test_sample_features_reads_pixel_centres():
    feat = torch.arange(16.0).view(1, 1, 4, 4)
    # input of 8 px, feature stride 2: feature cell (r, c) is centred at pixel 2c + 0.5
    pts = torch.tensor([[[0.5, 0.5], [6.5, 2.5], [4.5, 6.5]]])
    out = sample_features(feat, pts, 8)[0, :, 0]
    torch.testing.assert_close(out, torch.tensor([0.0, 7.0, 14.0]))


def test_sample_features_on_the_release_grid():
    """The release samples at clamp((u / S - 0.5) * 2) with align_corners=True: pixel 0 reads
    the first feature column, pixel S the last, and beyond the crop the border."""
    feat = torch.arange(16.0).view(1, 1, 4, 4)
    pts = torch.tensor([[[0.0, 0.0], [8.0, 8.0], [4.0, 0.0], [-3.0, 20.0], [8 / 3, 0.0]]])
    out = sample_features(feat, pts, 8, "release")[0, :, 0]
    torch.testing.assert_close(out, torch.tensor([0.0, 15.0, 1.5, 12.0, 1.0]))


def test_release_variant_layers():
    """The release's switches: no input layer, no bias on the second reduction conv, a bias
    on the weight head's first conv, no 2D offset; the project's network keeps its own."""
    project, _ = _tiny()
    cfg = load_config("tiny", ['model.variant="release"', "model.feature_channels=16"])
    release = build_model(cfg.model)
    p, r = set(project.state_dict()), set(release.state_dict())
    assert p - r == {"mesh.inp.weight", "mesh.inp.bias", "mesh.reduce.2.bias"}
    assert r - p == {"weight_head.conv.0.bias"}
    assert project.keypoints.offset == 0.5 and release.keypoints.offset == 0.0
    with pytest.raises(ValueError, match="feature_channels: the release variant"):
        load_config("tiny", ['model.variant="release"', "model.feature_channels=32"])


def test_release_weight_head_reads_channel_first():
    cfg = load_config("tiny", ['model.variant="release"', "model.feature_channels=16"])
    head = build_model(cfg.model).weight_head.eval()
    feat = torch.rand(1, head.conv[0].in_channels, 2, 2)
    kp = torch.rand(1, 21, 2) * 64
    sampled = sample_features(head.conv(feat), kp, 64, "release")  # (1, K, C)
    by_channel = sampled.transpose(1, 2).flatten(1)
    torch.testing.assert_close(head(feat, kp, 64), torch.sigmoid(head.mlp(by_channel)))


@pytest.mark.parametrize("method", ["dgp", "dgp_uniform", "root_regression"])
def test_forward_shapes(method, tmp_path):
    model, cfg = _tiny(method, tmp_path)
    S = cfg.model.input_size
    K = torch.tensor([[85.0, 0, S / 2], [0, 85.0, S / 2], [0, 0, 1]]).expand(2, 3, 3)
    out = model(torch.rand(2, 3, S, S), K, torch.eye(3).expand(2, 3, 3))
    assert out["kp2d"].shape == (2, 21, 2)
    assert out["verts_cam"].shape == (2, 778, 3) and out["joints_orig"].shape == (2, 21, 3)
    assert out["t"].shape == (2, 3) and out["weights"].shape == (2, 21)
    torch.testing.assert_close(out["joints_rel"][:, 0], torch.zeros(2, 3))
    if method == "dgp_uniform":
        assert (out["weights"] == 1).all()
    with pytest.raises(ValueError, match="image"):
        model(torch.rand(2, 3, S + 32, S + 32), K)


@pytest.mark.parametrize(("decoder", "layer"), [("dsconv", DSConv), ("dense", SpiralConv)])
def test_forward_backward_with_each_decoder(decoder, layer, tmp_path):
    model, cfg = _tiny("dgp", tmp_path, decoder)
    assert all(isinstance(m, layer) for m in [*model.mesh.convs, model.mesh.out])
    S = cfg.model.input_size
    K = torch.tensor([[85.0, 0, S / 2], [0, 85.0, S / 2], [0, 0, 1]]).expand(2, 3, 3)
    out = model(torch.rand(2, 3, S, S), K)
    assert out["verts_rel"].shape == (2, 778, 3) and out["joints_rel"].shape == (2, 21, 3)
    out["verts_rel"].square().sum().backward()
    for name, p in model.mesh.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_paper_config_builds_and_runs(tmp_path):
    cfg = load_config("paper")
    model = build_model(cfg.model, cache_dir=tmp_path).eval()
    K = torch.tensor([[300.0, 0, 112], [0, 300.0, 112], [0, 0, 1]])[None]
    with torch.no_grad():
        out = model(torch.rand(1, 3, 224, 224), K)
    assert out["verts_cam"].shape == (1, 778, 3)


def test_camera_loss_gradients_reach_2d_and_weight_heads(tmp_path):
    """A camera-space loss alone trains the 2D head and the weight head through the DLT."""
    model, cfg = _tiny("dgp", tmp_path)
    S = cfg.model.input_size
    torch.manual_seed(0)
    K = torch.tensor([[85.0, 0, S / 2], [0, 85.0, S / 2], [0, 0, 1]]).expand(2, 3, 3)
    out = model(torch.rand(2, 3, S, S), K)
    assert out["valid"].all()
    batch = {"K": K, "root": torch.tensor([[0.0, 0.0, 0.5], [0.05, 0.0, 0.7]]),
             "verts3d": out["verts_cam"].detach() + 0.01}
    loss = camera_losses(out, batch, S)["transl"]
    loss.backward()
    for name, mod in [("2D head", model.keypoints), ("weight head", model.weight_head)]:
        g = sum(p.grad.abs().sum() for p in mod.parameters() if p.grad is not None)
        assert g > 0, name


def test_rescale_sets_the_template_spread(tmp_path, hand):
    model, cfg = _tiny("dgp", tmp_path)
    # an untrained decoder's mesh spans only ~0.1-1 mm, near the rescale's 0.1 mm floor where
    # the spread is clamped rather than matched: scale the last layer to centimetres
    with torch.no_grad():
        for p in model.mesh.out.parameters():
            p.mul_(100.0)
    assert model.config.rescale
    S = cfg.model.input_size
    K = torch.tensor([[85.0, 0, S / 2], [0, 85.0, S / 2], [0, 0, 1]]).expand(3, 3, 3)
    with torch.no_grad():
        out = model(torch.rand(3, 3, S, S), K)
    tj = hand.keypoint_regressor @ hand.template
    ref = (tj[1:] - tj[:1]).norm(dim=-1).mean()
    spread = out["joints_rel"][:, 1:].norm(dim=-1).mean(1)
    torch.testing.assert_close(spread, ref.expand(3), rtol=1e-4, atol=1e-6)
    assert 0.05 < float(ref) < 0.15  # a hand: wrist to keypoints about 5-15 cm


@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_backbone_gives_its_channels_at_stride_32(backbone, tmp_path):
    """Every backbone the config offers is implemented (layout, channels, trunk)."""
    cfg = load_config("tiny", [f'model.backbone="{backbone}"'])
    model = build_model(cfg.model, cache_dir=tmp_path).eval()
    S = cfg.model.input_size
    feat = model.backbone(torch.rand(1, 3, S, S))
    assert feat.shape == (1, backbone_channels(backbone), S // 32, S // 32)
    K = torch.tensor([[85.0, 0, S / 2], [0, 85.0, S / 2], [0, 0, 1]])[None]
    assert model(torch.rand(1, 3, S, S), K)["verts_cam"].shape == (1, 778, 3)


def test_unknown_backbone_is_named():
    with pytest.raises(ValueError, match="backbone"):
        backbone_channels("vgg11")
    cfg = load_config("tiny")
    with pytest.raises(ValueError, match="backbone"):
        cfg.model.__class__(backbone="vgg11")

