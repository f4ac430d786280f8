"""The CUDA kernels and launchers (csrc/*/..._cuda.cuh), run on the host under the emulation of
csrc/emu/cuda_emu.h, against the CPU kernels: every kernel, dtype and mode; partial blocks and
partly inactive warps; invalid items; empty batches; batches across the grid limit (lowered);
non-contiguous and expanded inputs; uint8 bytes; deterministic mode."""

from __future__ import annotations

import contextlib

import pytest
import torch

import dgp_ops
from dgp_ops import _C
from tests.dgp_ops.dlt_helpers import random_problem
from tests.dgp_ops.test_warp import random_homographies, smooth_images

CPU = torch.ops.dgp_ops
F32, F64 = torch.float32, torch.float64
MODES = dgp_ops.warp.MODES
PADS = dgp_ops.warp.PADDING_MODES


def close(dtype, loose: bool = False) -> dict:
    if dtype == F64:
        return dict(rtol=1e-9, atol=1e-11)
    return dict(rtol=1e-4, atol=1e-4) if loose else dict(rtol=2e-5, atol=2e-6)


def test_schemas_are_the_extensions(emu):
    for name in ("weighted_dlt_translation", "weighted_dlt_translation_backward",
                 "warp_perspective", "warp_perspective_backward", "warp_perspective_distorted",
                 "warp_perspective_distorted_backward"):
        ours = str(getattr(CPU, name).default._schema).replace("dgp_ops::", "")
        theirs = str(getattr(emu, name).default._schema).replace("dgp_ops_emu::", "")
        assert ours == theirs


# ---- weighted DLT ------------------------------------------------------------------------------


def dlt_batch(B: int, N: int, dtype, seed: int = 0):
    """Random problems; items 1-4 (where present) are invalid in four different ways."""
    p3, p2, K, w, _ = random_problem(max(B, 1), N, seed=seed)
    p3, p2, K, w = (x[:B].to(dtype).clone() for x in (p3, p2, K, w))
    if B > 4:
        K[1] = 0.0  # singular K
        w[2] = 0.0  # no weight at all
        p3[3, N // 2, 0] = float("nan")
        w[4, N - 1] = -0.25  # a negative weight
    return p3, p2, K, w


def compare_dlt(emu, args, dtype, damping=0.01):
    t, valid, saved = CPU.weighted_dlt_translation(*args, damping)
    te, valide, savede = emu.weighted_dlt_translation(*args, damping)
    assert torch.equal(valide, valid)
    torch.testing.assert_close(te, t, **close(dtype))
    torch.testing.assert_close(savede, saved, **close(F64))
    gt = torch.randn(t.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
    ref = CPU.weighted_dlt_translation_backward(gt, *args, saved, damping)
    got = emu.weighted_dlt_translation_backward(gt, *args, saved, damping)
    for a, b in zip(got, ref, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, **close(dtype, loose=True))
    return valid


@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize(("B", "N"), [(0, 21), (1, 2), (9, 21), (6, 45)])
def test_dlt_matches_cpu(emu, dtype, B, N):
    """9 items: 3 blocks of 4 warps, the last with 3 warps that exit at once; N = 45 gives
    lanes 2 points and 1 point; items 1-4 invalid."""
    valid = compare_dlt(emu, dlt_batch(B, N, dtype), dtype)
    if B > 4:
        assert valid[:5].tolist() == [True, False, False, False, False]


def test_dlt_layouts(emu):
    p3, p2, K, w = dlt_batch(6, 7, F64, seed=2)
    views = (p3.transpose(1, 2).contiguous().transpose(1, 2), p2[:, :, :].flip(0).flip(0),
             K[:1].expand(6, 3, 3), w[:1].expand(6, 7))
    assert not views[0].is_contiguous() and views[2].stride(0) == 0
    compare_dlt(emu, views, F64)


def test_dlt_batch_across_the_grid_limit(emu, grid_limits):
    grid_limits(2, 65535)  # 2 blocks of 4 items per launch
    args = dlt_batch(19, 21, F64, seed=3)
    before = emu.launches()
    emu.weighted_dlt_translation(*args, 0.0)
    assert emu.launches() - before == 3
    compare_dlt(emu, args, F64)


# ---- perspective warp --------------------------------------------------------------------------

OUT = (9, 30)  # 270 pixels: 2 blocks of 256 threads, the second with 14 (warp 0 in part)


def warp_batch(dtype, B: int = 2, C: int = 2, h: int = 11, w: int = 13, seed: int = 4):
    """B images and homographies; the last item's H is singular (its output and gradient are
    zero)."""
    img = smooth_images(B, C, h, w, dtype, seed=seed)
    H = random_homographies(B, h, w, dtype, seed=seed + 1, strength=3.0)
    H[-1] = 0.0
    return img, H


ALL_GRADIENTS = ((True, True), (False, True), (True, False))


def compare_warp(emu, img, H, mode, pad, dtype, out=OUT, needs=ALL_GRADIENTS):
    """Forward and the backward for each (image, H) gradient request in needs, against the
    CPU's. (An H gradient costs the most to emulate: a thread per pixel meets in shuffles.)"""
    ref = CPU.warp_perspective(img, H, *out, mode, pad)
    got = emu.warp_perspective(img, H, *out, mode, pad)
    torch.testing.assert_close(got, ref, **close(dtype))
    g = torch.rand(ref.shape, generator=torch.Generator().manual_seed(5), dtype=dtype)
    for need_image, need_h in needs:
        a = CPU.warp_perspective_backward(g, img, H, mode, pad, need_image, need_h)
        b = emu.warp_perspective_backward(g, img, H, mode, pad, need_image, need_h)
        for x, y in zip(b, a, strict=True):
            assert x.shape == y.shape
            torch.testing.assert_close(x, y, **close(dtype, loose=True))
    return ref


@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("pad", PADS)
def test_warp_matches_cpu(emu, dtype, mode, pad):
    img, H = warp_batch(dtype)
    out = compare_warp(emu, img, H, mode, pad, dtype)
    assert torch.all(out[-1] == 0)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("h_dtype", [F32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("pad", PADS)
def test_warp_uint8_gives_the_cpu_bytes(emu, layout, h_dtype, mode, pad):
    g = torch.Generator().manual_seed(6)
    hwc = (torch.rand(3, 21, 26, 3, generator=g) * 256).to(torch.uint8)  # noise: sharp edges
    img = hwc.permute(0, 3, 1, 2)
    if layout == "nchw":
        img = img.contiguous()
    H = random_homographies(3, 21, 26, h_dtype, seed=7, strength=2.0)
    H[1] = torch.tensor([[0.0, 0, 0], [0, 0, 0], [0, 0, 1]], dtype=h_dtype)  # singular
    got = emu.warp_perspective(img, H, 19, 23, mode, pad)
    assert torch.equal(got, CPU.warp_perspective(img, H, 19, 23, mode, pad))
    previous = _C._set_cpu_v3_enabled(False)
    try:
        assert torch.equal(got, CPU.warp_perspective(img, H, 19, 23, mode, pad))
    finally:
        _C._set_cpu_v3_enabled(previous)
    assert torch.all(got[1] == 0)


def test_warp_empty_batch(emu):
    img, H = warp_batch(F32, B=1)
    img, H = img[:0], H[:0]
    assert emu.warp_perspective(img, H, *OUT, "bilinear", "zeros").shape == (0, 2, *OUT)
    g = torch.zeros(0, 2, *OUT)
    gi, gh = emu.warp_perspective_backward(g, img, H, "bilinear", "zeros", True, True)
    assert gi.shape == img.shape and gh.shape == H.shape


def test_warp_batch_across_the_grid_limit(emu, grid_limits):
    grid_limits(2147483647, 2)  # 2 items per launch of the pixel kernels
    img, H = warp_batch(F64, B=5, seed=8)
    before = emu.launches()
    emu.warp_perspective(img, H, *OUT, "bilinear", "border")
    assert emu.launches() - before == 1 + 3  # prepare, then 3 launches over the items
    compare_warp(emu, img, H, "bilinear", "border", F64, needs=((True, True),))
    u8 = (img * 255).to(torch.uint8)
    got = emu.warp_perspective(u8, H, *OUT, "bilinear", "reflection")
    assert torch.equal(got, CPU.warp_perspective(u8, H, *OUT, "bilinear", "reflection"))


def test_warp_layouts(emu):
    img, H = warp_batch(F64, B=3, seed=9)
    transposed = img.transpose(2, 3).contiguous().transpose(2, 3)
    expanded = img[:1].expand(3, -1, -1, -1)
    shared_h = H[:1].expand(3, 3, 3)
    for i, h in ((transposed, H), (expanded, H), (img, shared_h)):
        compare_warp(emu, i, h, "bilinear", "zeros", F64, needs=((True, True),))
    # An expanded incoming gradient (what out.sum().backward() hands over) is read in place.
    g = torch.ones(1, 1, 1, 1, dtype=F64).expand(3, 2, *OUT)
    for need in ((True, True),):
        a = CPU.warp_perspective_backward(g, img, H, "bilinear", "zeros", *need)
        b = emu.warp_perspective_backward(g, img, H, "bilinear", "zeros", *need)
        for x, y in zip(b, a, strict=True):
            torch.testing.assert_close(x, y, **close(F64))


@contextlib.contextmanager
def deterministic():
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(False)


def test_warp_deterministic_mode(emu):
    """dL/dH is reduced in a fixed order (bitwise repeatable); the image gradient, scattered
    with atomic adds, raises PyTorch's not-deterministic error in deterministic mode."""
    img, H = warp_batch(F32, seed=10)
    g = torch.rand(2, 2, *OUT)
    with deterministic():
        runs = [emu.warp_perspective_backward(g, img, H, "bilinear", "zeros", False, True)[1]
                for _ in range(2)]
        assert torch.equal(runs[0], runs[1])
        with pytest.raises(RuntimeError, match="does not have a deterministic implementation"):
            emu.warp_perspective_backward(g, img, H, "bilinear", "zeros", True, True)
    emu.warp_perspective_backward(g, img, H, "bilinear", "zeros", True, True)


# ---- perspective warp of a distorted image -----------------------------------------------------

LENSES = {"pinhole": [-0.28, 0.09, 0.0012, -0.0008, 0.01], "fisheye": [-0.013, 0.021, -0.011,
                                                                        0.002]}


def distort_batch(dtype, model, B: int = 3, seed: int = 11):
    """B items; item 1 has no distortion (the plain warp's path), the last a singular H."""
    img, H = warp_batch(dtype, B=B, seed=seed)
    K = torch.tensor([[9.0, 0.3, 6.2], [0.0, 9.5, 4.9], [0.0, 0.0, 1.0]], dtype=dtype)
    K = K.expand(B, 3, 3).contiguous()
    d = torch.tensor(LENSES[model], dtype=dtype).expand(B, -1).clone()
    d[1] = 0.0
    return img, H, K, d


@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("pad", PADS)
@pytest.mark.parametrize("model", ["pinhole", "fisheye"])
def test_distort_matches_cpu(emu, dtype, mode, pad, model):
    img, H, K, d = distort_batch(dtype, model)
    ref = CPU.warp_perspective_distorted(img, H, K, d, *OUT, model, mode, pad)
    got = emu.warp_perspective_distorted(img, H, K, d, *OUT, model, mode, pad)
    torch.testing.assert_close(got, ref, **close(dtype))
    assert torch.all(got[-1] == 0) and got[0].abs().sum() > 0
    g = torch.rand(ref.shape, generator=torch.Generator().manual_seed(5), dtype=dtype)
    for need in ALL_GRADIENTS:
        a = CPU.warp_perspective_distorted_backward(g, img, H, K, d, model, mode, pad, *need)
        b = emu.warp_perspective_distorted_backward(g, img, H, K, d, model, mode, pad, *need)
        for x, y in zip(b, a, strict=True):
            assert x.shape == y.shape
            torch.testing.assert_close(x, y, **close(dtype, loose=True))


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("model", ["pinhole", "fisheye"])
def test_distort_uint8_gives_the_cpu_bytes(emu, layout, model):
    img, H, K, d = distort_batch(F64, model, seed=12)
    u8 = (img * 255).to(torch.uint8)
    if layout == "channels_last":
        u8 = u8.contiguous(memory_format=torch.channels_last)
    for mode in MODES:
        ref = CPU.warp_perspective_distorted(u8, H, K, d, *OUT, model, mode, "reflection")
        got = emu.warp_perspective_distorted(u8, H, K, d, *OUT, model, mode, "reflection")
        assert torch.equal(got, ref)


def test_distort_batch_across_the_grid_limit(emu, grid_limits):
    grid_limits(2147483647, 2)
    img, H, K, d = distort_batch(F64, "pinhole", B=5, seed=13)
    ref = CPU.warp_perspective_distorted(img, H, K, d, *OUT, "pinhole", "bilinear", "border")
    got = emu.warp_perspective_distorted(img, H, K, d, *OUT, "pinhole", "bilinear", "border")
    torch.testing.assert_close(got, ref, **close(F64))
    g = torch.ones(1, 1, 1, 1, dtype=F64).expand(5, 2, *OUT)  # expanded, read in place
    a = CPU.warp_perspective_distorted_backward(g, img, H, K, d, "pinhole", "bilinear", "border",
                                                True, True)
    b = emu.warp_perspective_distorted_backward(g, img, H, K, d, "pinhole", "bilinear", "border",
                                                True, True)
    for x, y in zip(b, a, strict=True):
        torch.testing.assert_close(x, y, **close(F64))
