"""The CUDA kernels on a GPU (skipped without one; scripts/gpu_check.sh runs them): agreement
with the CPU kernels for uint8 (the same bytes), channels-last, non-contiguous and expanded
inputs, empty batches, batches beyond 65,535 items, a non-default stream and a second device;
no host synchronisation; CUDA graph capture and torch.compile(mode="reduce-overhead");
deterministic mode; autocast."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import dgp_ops

from .dlt_helpers import random_problem
from .test_warp import random_homographies, smooth_images

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

warp = dgp_ops.warp_perspective
solve = dgp_ops.solve_translation
F32, F64 = torch.float32, torch.float64


def tol(dtype):
    return dict(atol=1e-4, rtol=1e-3) if dtype == F32 else dict(atol=1e-9, rtol=1e-9)


def dlt_inputs(B, N=21, dtype=F32, seed=0):
    p3, p2, K, w, _ = random_problem(B, N, seed=seed)
    return [x.to(dtype) for x in (p3, p2, K, w)]


def warp_on(device, img, H, out, **kw):
    """Forward and both gradients of a random loss on ``device``."""
    i = img.to(device).requires_grad_(img.is_floating_point())
    h = H.to(device).requires_grad_()
    o = warp(i, h, out, **kw)
    if not o.is_floating_point():
        return [o]
    g = torch.rand(o.shape, generator=torch.Generator().manual_seed(3), dtype=o.dtype)
    return [o, *torch.autograd.grad((o * g.to(device)).sum(), (i, h))]


def assert_same(gpu, cpu, dtype):
    for a, b in zip(gpu, cpu, strict=True):
        if a.dtype == torch.uint8:
            assert torch.equal(a.cpu(), b)
        else:
            torch.testing.assert_close(a.cpu(), b, **tol(dtype))


# ---- agreement with the CPU kernels --------------------------------------------------------------


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("mode", dgp_ops.warp.MODES)
@pytest.mark.parametrize("padding_mode", dgp_ops.warp.PADDING_MODES)
def test_uint8_gives_the_cpu_bytes(layout, mode, padding_mode):
    g = torch.Generator().manual_seed(1)
    hwc = (torch.rand(4, 61, 75, 3, generator=g) * 256).to(torch.uint8)
    img = hwc.permute(0, 3, 1, 2)
    img = img.contiguous() if layout == "nchw" else img
    H = random_homographies(4, 61, 75, F64, seed=2, strength=2.0)
    kw = dict(mode=mode, padding_mode=padding_mode)
    cpu = warp(img, H, (57, 66), **kw)
    gpu = warp(img.cuda(), H.cuda(), (57, 66), **kw)
    assert torch.equal(gpu.cpu(), cpu)
    assert torch.equal(warp(img.cuda(), H.float().cuda(), (57, 66), **kw).cpu(),
                       warp(img, H.float(), (57, 66), **kw))


@pytest.mark.parametrize("dtype", [F32, F64])
def test_warp_non_contiguous_and_expanded_inputs(dtype):
    img = smooth_images(3, 3, 30, 40, dtype, seed=4)
    H = random_homographies(3, 30, 40, dtype, seed=5)
    cases = [
        (img.transpose(2, 3).contiguous().transpose(2, 3), H),
        (img[:1].expand(3, -1, -1, -1), H),
        (img, H[:1].expand(3, 3, 3)),
        (img.contiguous(memory_format=torch.channels_last), H.transpose(1, 2).contiguous()
         .transpose(1, 2)),
    ]
    for i, h in cases:
        assert_same(warp_on("cuda", i, h, (25, 33)), warp_on("cpu", i, h, (25, 33)), dtype)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_dlt_non_contiguous_and_expanded_inputs(dtype):
    p3, p2, K, w = dlt_inputs(6, 7, dtype, seed=6)
    views = [p3.transpose(1, 2).contiguous().transpose(1, 2), p2, K[:1].expand(6, 3, 3),
             w[:1].expand(6, 7)]
    res = []
    for dev in ("cpu", "cuda"):
        ins = [x.to(dev).requires_grad_() for x in views]
        t = solve(*ins, damping=0.01)
        res.append([t, *torch.autograd.grad(t.square().sum(), ins)])
    assert_same(res[1], res[0], dtype)


def test_empty_batches():
    p3, p2, K, w = (x.cuda()[:0].requires_grad_() for x in dlt_inputs(1))
    t = solve(p3, p2, K, w)
    t.sum().backward()
    assert t.shape == (0, 3) and p3.grad.shape == p3.shape
    img = torch.rand(0, 3, 8, 8, device="cuda", requires_grad=True)
    out = warp(img, torch.eye(3, device="cuda"), (4, 4))
    out.sum().backward()
    assert out.shape == (0, 3, 4, 4) and img.grad.shape == img.shape


def test_batches_beyond_the_grid_limit():
    """More items than gridDim.y allows (65,535): the warp launches in chunks."""
    B = 70_000
    img = torch.rand(B, 1, 6, 5, device="cuda", requires_grad=True)
    H = torch.eye(3, device="cuda").repeat(B, 1, 1)
    H[:, 0, 2] = torch.linspace(-1, 1, B, device="cuda")
    H.requires_grad_()
    out = warp(img, H, (4, 4), padding_mode="border")
    gi, gh = torch.autograd.grad(out.square().sum(), (img, H))
    for k in (0, 65_534, 65_535, B - 1):
        ref = warp_on("cpu", img[k:k + 1].detach().cpu(), H[k:k + 1].detach().cpu(), (4, 4),
                      padding_mode="border")
        o = out[k:k + 1].detach().cpu()
        torch.testing.assert_close(o, ref[0], **tol(F32))
    assert torch.isfinite(gi).all() and torch.isfinite(gh).all() and gh[-1].abs().sum() > 0
    p3, p2, K, w = (x.cuda() for x in dlt_inputs(B, 5, seed=7))
    t, valid = solve(p3, p2, K, w, return_valid=True)
    assert bool(valid.all())
    torch.testing.assert_close(t[-3:].cpu(), solve(*(x[-3:].cpu() for x in (p3, p2, K, w))),
                               **tol(F32))


def test_non_default_stream():
    img = smooth_images(2, 3, 40, 50, F32, seed=8).cuda()
    H = random_homographies(2, 40, 50, F32, seed=9).cuda()
    p3, p2, K, w = (x.cuda() for x in dlt_inputs(64, seed=10))
    ref_warp, ref_t = warp(img, H, (30, 30)), solve(p3, p2, K, w)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        out, t = warp(img, H, (30, 30)), solve(p3, p2, K, w)
    torch.cuda.current_stream().wait_stream(stream)
    assert torch.equal(out, ref_warp) and torch.equal(t, ref_t)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs a second CUDA device")
def test_second_device():
    img = smooth_images(2, 3, 40, 50, F32, seed=11)
    H = random_homographies(2, 40, 50, F32, seed=12)
    with torch.cuda.device(0):
        assert_same(warp_on("cuda:1", img, H, (20, 20)), warp_on("cpu", img, H, (20, 20)), F32)
        p3, p2, K, w = dlt_inputs(8, seed=13)
        t = solve(*(x.to("cuda:1") for x in (p3, p2, K, w)))
        assert t.device == torch.device("cuda:1")
        torch.testing.assert_close(t.cpu(), solve(p3, p2, K, w), **tol(F32))


# ---- no synchronisation, capture, compile ------------------------------------------------------


def test_ops_and_public_functions_do_not_synchronise():
    img = smooth_images(2, 3, 40, 50, F32, seed=14).cuda().requires_grad_()
    H = random_homographies(2, 40, 50, F32, seed=15).cuda().requires_grad_()
    ins = [x.cuda().requires_grad_() for x in dlt_inputs(16, seed=16)]
    Kc = torch.tensor([[500.0, 0, 25], [0, 500, 20], [0, 0, 1]], device="cuda").expand(2, 3, 3)
    center = torch.tensor([[25.0, 20.0]] * 2, device="cuda")
    side = torch.full((2,), 30.0, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = warp(img, H, (30, 30))
        out.square().sum().backward()
        t = solve(*ins, damping=0.01)
        t.square().sum().backward()
        dgp_ops.rectify.rectify_images(img.detach(), Kc, center, side, out_size=16)
    finally:
        torch.cuda.set_sync_debug_mode(0)


def test_bad_values_are_a_device_side_assertion():
    """check_values on a GPU never waits for the device: a singular H fails the next
    synchronising call (in a child process: a device-side assertion ends its CUDA context)."""
    code = (
        "import torch, dgp_ops\n"
        "out = dgp_ops.warp_perspective(torch.rand(1, 1, 4, 4, device='cuda'),\n"
        "                               torch.zeros(3, 3, device='cuda'), (2, 2))\n"
        "torch.cuda.synchronize()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "device-side assert" in r.stderr


def test_graph_capture():
    img = smooth_images(2, 3, 40, 50, F32, seed=17).cuda().requires_grad_()
    H = random_homographies(2, 40, 50, F32, seed=18).cuda().requires_grad_()
    ins = [x.cuda().requires_grad_() for x in dlt_inputs(16, seed=19)]

    def step():
        loss = warp(img, H, (30, 30)).square().sum() + solve(*ins).square().sum()
        return torch.autograd.grad(loss, [img, H, *ins])

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            expected = step()  # warm-up outside the capture
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = step()
    with torch.no_grad():
        img.mul_(0.5)
        ins[0].add_(0.01)
    graph.replay()
    expected = step()
    for a, b in zip(captured, expected, strict=True):
        torch.testing.assert_close(a, b, **tol(F32))


def test_compile_reduce_overhead():
    class Model(torch.nn.Module):
        def forward(self, img, H, p3, p2, K, w):
            crops = warp(img, H, (24, 24))
            return crops.mean() + solve(p3, p2, K, w * w, damping=0.01).sum()

    model = Model().cuda()
    compiled = torch.compile(model, mode="reduce-overhead", fullgraph=True)
    img = smooth_images(2, 3, 40, 50, F32, seed=20).cuda().requires_grad_()
    H = random_homographies(2, 40, 50, F32, seed=21).cuda().requires_grad_()
    ins = [x.cuda().requires_grad_() for x in dlt_inputs(8, seed=22)]
    for _ in range(4):  # warm-up, recording, replays
        got = compiled(img, H, *ins)
        grads = torch.autograd.grad(got, [img, H, *ins])
    want = model(img, H, *ins)
    torch.testing.assert_close(got, want, **tol(F32))
    for a, b in zip(grads, torch.autograd.grad(want, [img, H, *ins]), strict=True):
        torch.testing.assert_close(a, b, **tol(F32))


# ---- deterministic mode and autocast -------------------------------------------------------------


def test_deterministic_mode():
    """dL/dH is deterministic (fixed-order reduction); the image gradient (atomic adds) raises
    PyTorch's not-deterministic error; the DLT is deterministic."""
    img = smooth_images(2, 3, 60, 70, F32, seed=23).cuda()
    H = random_homographies(2, 60, 70, F32, seed=24).cuda().requires_grad_()
    ins = [x.cuda().requires_grad_() for x in dlt_inputs(300, seed=25)]
    torch.use_deterministic_algorithms(True)
    try:
        gh = [torch.autograd.grad(warp(img, H, (50, 50)).square().sum(), H)[0] for _ in range(3)]
        assert torch.equal(gh[0], gh[1]) and torch.equal(gh[0], gh[2])
        gd = [torch.autograd.grad(solve(*ins).square().sum(), ins) for _ in range(2)]
        assert all(torch.equal(a, b) for a, b in zip(*gd, strict=True))
        i = img.clone().requires_grad_()
        with pytest.raises(RuntimeError, match="does not have a deterministic implementation"):
            torch.autograd.grad(warp(i, H, (50, 50)).sum(), i)
    finally:
        torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize("low", [torch.float16, torch.bfloat16])
def test_autocast(low):
    p3, p2, K, w = (x.cuda() for x in dlt_inputs(8, seed=26))
    img = smooth_images(2, 3, 40, 50, F32, seed=27).cuda()
    H = random_homographies(2, 40, 50, F32, seed=28).cuda()
    with torch.autocast("cuda", dtype=low):
        t = solve(*(x.to(low) for x in (p3, p2, K, w)))
        out = warp(img.to(low), H.to(low), (20, 20))
        # Outputs of a network under autocast (half) feed the ops without casts by the caller.
        lin = torch.nn.Linear(3, 3).cuda()
        t2 = solve(lin(p3), p2, K, w)
    assert t.dtype == F32 and out.dtype == F32 and t2.dtype == F32
    torch.testing.assert_close(t, solve(*(x.to(low).float() for x in (p3, p2, K, w))))
    torch.testing.assert_close(out, warp(img.to(low).float(), H.to(low).float(), (20, 20)))
