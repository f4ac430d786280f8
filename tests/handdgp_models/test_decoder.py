"""Spiral layers (DSConv and the dense SpiralConv) and the mesh decoder built from them."""

import pytest
import torch

from handdgp_models.hand import load_mano
from handdgp_models.model import DSConv, NetworkConfig, SpiralConv, load_hierarchy
from handdgp_models.model.network import _MeshDecoder, spiral_layer_parameters


def _random_spiral(num_verts=7, length=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = torch.randint(0, num_verts, (num_verts, length), generator=g)
    s[:, 0] = torch.arange(num_verts)
    return s


def _naive_dsconv(x, spiral, depthwise, pointwise):
    """Per-vertex, per-channel loops: the definition, written out."""
    b, v, c = x.shape
    y = torch.zeros(b, v, c, dtype=x.dtype)
    for bi in range(b):
        for vi in range(v):
            for ci in range(c):
                y[bi, vi, ci] = sum(depthwise[ci, li] * x[bi, spiral[vi, li], ci]
                                    for li in range(spiral.shape[1]))
    out = torch.zeros(b, v, pointwise.shape[0], dtype=x.dtype)
    for bi in range(b):
        for vi in range(v):
            out[bi, vi] = pointwise @ y[bi, vi]
    return out


def _naive_dense(x, spiral, weight, bias):
    b, v, _ = x.shape
    out = torch.zeros(b, v, weight.shape[0], dtype=x.dtype)
    for bi in range(b):
        for vi in range(v):
            out[bi, vi] = weight @ torch.cat([x[bi, j] for j in spiral[vi]]) + bias
    return out


def test_dsconv_matches_the_per_vertex_loop():
    torch.manual_seed(0)
    spiral = _random_spiral()
    layer = DSConv(5, 3, spiral).double()
    x = torch.randn(2, 7, 5, dtype=torch.float64)
    ref = _naive_dsconv(x, spiral, layer.depthwise.detach(), layer.pointwise.weight.detach())
    torch.testing.assert_close(layer(x), ref, rtol=1e-12, atol=1e-12)
    assert layer.pointwise.bias is None
    assert sum(p.numel() for p in layer.parameters()) == spiral_layer_parameters("dsconv", 5, 3, 4)


def test_dense_spiral_conv_matches_the_per_vertex_loop():
    torch.manual_seed(0)
    spiral = _random_spiral()
    layer = SpiralConv(5, 3, spiral).double()
    x = torch.randn(2, 7, 5, dtype=torch.float64)
    ref = _naive_dense(x, spiral, layer.linear.weight.detach(), layer.linear.bias.detach())
    torch.testing.assert_close(layer(x), ref, rtol=1e-12, atol=1e-12)
    assert sum(p.numel() for p in layer.parameters()) == spiral_layer_parameters("dense", 5, 3, 4)


@pytest.mark.parametrize("layer_type", [DSConv, SpiralConv])
def test_spiral_layers_pass_gradcheck(layer_type):
    torch.manual_seed(0)
    layer = layer_type(4, 3, _random_spiral(6, 3)).double()
    x = torch.randn(2, 6, 4, dtype=torch.float64, requires_grad=True)
    params = tuple(layer.parameters())

    def fn(x, *p):
        return torch.func.functional_call(layer, dict(zip(dict(layer.named_parameters()), p,
                                                          strict=True)), (x,))

    assert torch.autograd.gradcheck(fn, (x, *params))


@pytest.fixture(scope="module")
def hier(tmp_path_factory):
    hand = load_mano()
    return load_hierarchy(hand.template, hand.faces, cache_dir=tmp_path_factory.mktemp("h"))


def _spiral_parameters(decoder, channels):
    """Parameters of the decoder's spiral layers, written out: four stages, then -> 3."""
    pairs = list(zip(channels, channels[1:], strict=False)) + [(channels[-1], 3)]
    if decoder == "dsconv":
        return sum(9 * ci + ci * co for ci, co in pairs)
    return sum(9 * ci * co + co for ci, co in pairs)


@pytest.mark.parametrize("sizes", [{}, {"mesh_channels": [64, 64, 48, 32, 16],
                                        "feature_channels": 64}])
def test_dsconv_decoder_has_far_fewer_parameters(hier, sizes):
    channels = NetworkConfig(**sizes).mesh_channels
    spiral, total = {}, {}
    for decoder in ("dsconv", "dense"):
        dec = _MeshDecoder(512, NetworkConfig(decoder=decoder, **sizes), hier, 21)
        spiral[decoder] = sum(p.numel() for m in [*dec.convs, dec.out] for p in m.parameters())
        total[decoder] = sum(p.numel() for p in dec.parameters())
    expected = {d: _spiral_parameters(d, channels) for d in spiral}
    assert spiral == expected
    assert total["dense"] - total["dsconv"] == spiral["dense"] - spiral["dsconv"]  # rest shared
    ratio = spiral["dense"] / spiral["dsconv"]
    assert ratio == expected["dense"] / expected["dsconv"] and ratio > 5


def test_decoder_sizes_come_from_the_hierarchy_and_keypoint_count(hier):
    dec = _MeshDecoder(32, NetworkConfig(mesh_channels=[8, 8, 8, 8, 8], feature_channels=8),
                       hier, 29)
    assert dec.lift.shape == (49, 29)
    out = dec.decode(torch.randn(2, 29, 8))
    assert out.shape == (2, 778, 3)


def test_decoder_must_be_known():
    with pytest.raises(ValueError, match="decoder"):
        NetworkConfig(decoder="sparse")
