"""One argument spec per op, and no host-device synchronisation.

- The fake kernels and the C++ launchers accept and reject exactly the same calls, with the same
  error, across the size limits (compared on empty batches, which allocate nothing).
- The public functions raise the spec's messages.
- No registered op or public function reads device memory on the host: the CUDA sources hold no
  host read, and the public functions, made to treat their tensors as device tensors, call no
  ATen op that synchronises.
- Value checks are skipped while a CUDA stream is being captured; autocast runs the ops in
  float32.
"""

from __future__ import annotations

import pathlib
import re

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

import dgp_ops
from dgp_ops import _validation
from dgp_ops import rectify as rc

from .dlt_helpers import random_problem

ROOT = pathlib.Path(__file__).resolve().parents[2]
LIMIT = dgp_ops._validation.MAX_INT32_ELEMENTS  # 2^31 - 1
warp_op = torch.ops.dgp_ops.warp_perspective
warp_bwd = torch.ops.dgp_ops.warp_perspective_backward
dlt_op = torch.ops.dgp_ops.weighted_dlt_translation
dlt_bwd = torch.ops.dgp_ops.weighted_dlt_translation_backward


def outcome(call):
    """("ok", output shapes) or (exception type, first line of its message)."""
    try:
        out = call()
    except (ValueError, TypeError, RuntimeError) as e:
        return type(e).__name__, str(e).splitlines()[0]
    outs = out if isinstance(out, tuple) else (out,)
    return "ok", [tuple(o.shape) for o in outs], [o.dtype for o in outs]


def same_outcome(op, *args):
    """The CPU kernel's outcome and the fake kernel's, for the same arguments."""
    real = outcome(lambda: op(*args))
    with FakeTensorMode(allow_non_fake_inputs=False) as mode:
        fake_args = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args]
        fake = outcome(lambda: op(*fake_args))
    assert real == fake, (real, fake)
    return real


# Image sizes (C, H, W) and output sizes around the int32 limits of one item.
SIDE = 46340  # SIDE^2 < 2^31 - 1 < (SIDE + 1)^2
IMAGES = [(1, SIDE, SIDE - 1), (1, SIDE, SIDE), (3, 8, 8), (2, 1, LIMIT // 2 - 6),
          (2, 1, LIMIT // 2 - 5), (1, 0, 5), (1, 5, 0)]
OUT_SIZES = [(SIDE, SIDE), (SIDE + 1, SIDE + 1), (1, LIMIT - 1), (1, LIMIT), (0, 4), (4, -1)]


@pytest.mark.parametrize("chw", IMAGES)
@pytest.mark.parametrize("out", OUT_SIZES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_warp_fake_and_cpu_agree_over_the_limits(chw, out, dtype):
    image = torch.empty(0, *chw, dtype=dtype)
    H = torch.empty(0, 3, 3)
    first = same_outcome(warp_op, image, H, *out, "bilinear", "zeros")
    if dtype == torch.float32:
        g = torch.empty(0, chw[0], *(max(s, 0) for s in out))
        same_outcome(warp_bwd, g, image, H, "bilinear", "zeros", True, True)
    ok_size = out[0] > 0 and out[1] > 0 and out[0] * out[1] < LIMIT
    ok_image = chw[1] > 0 and chw[2] > 0 and chw[0] * chw[1] * chw[2] < LIMIT - 2 * (chw[2] + 1)
    assert (first[0] == "ok") == (ok_size and ok_image), first


@pytest.mark.parametrize(
    "change",
    [
        {}, {"H": torch.empty(1, 3, 3)}, {"H": torch.empty(0, 3, 3, dtype=torch.float64)},
        {"H": torch.empty(0, 3, 3, device="meta")}, {"image": torch.empty(0, 3, 8)},
        {"image": torch.empty(0, 3, 8, 8, dtype=torch.float16)}, {"mode": "cubic"},
        {"padding_mode": "wrap"}, {"image": torch.empty(0, 3, 8, 8, dtype=torch.uint8),
                                   "H": torch.empty(0, 3, 3, dtype=torch.float64)},
    ],
)
def test_warp_fake_and_cpu_agree_on_malformed_calls(change):
    args = dict(image=torch.empty(0, 3, 8, 8), H=torch.empty(0, 3, 3), out_h=4, out_w=5,
                mode="bilinear", padding_mode="zeros")
    args.update(change)
    same_outcome(warp_op, *args.values())


@pytest.mark.parametrize(
    ("B", "N", "change"),
    [
        (0, 21, {}), (0, 1, {}), (0, 2, {}), (3, 21, {"K": torch.empty(3, 3)}),
        (3, 5, {"weights": torch.empty(3, 4)}), (3, 5, {"points2d": torch.empty(3, 5, 2,
                                                                           dtype=torch.float64)}),
        (3, 5, {"damping": -1.0}), (3, 5, {"damping": float("nan")}),
        (3, 5, {"weights": torch.empty(3, 5, device="meta")}),
    ],
)
def test_dlt_fake_and_cpu_agree(B, N, change):
    p3, p2, K, w, _ = random_problem(max(B, 1), max(N, 1), seed=0, dtype=torch.float32)
    args = dict(points3d=p3[:B, :N], points2d=p2[:B, :N], K=K[:B], weights=w[:B, :N],
                damping=0.0)
    args.update(change)
    first = same_outcome(dlt_op, *args.values())
    if first[0] == "ok":
        saved = dlt_op(*args.values())[2]
        same_outcome(dlt_bwd, torch.ones(B, 3), *list(args.values())[:4], saved, 0.0)


@pytest.mark.parametrize(
    ("call", "op_message"),
    [
        (lambda: dgp_ops.warp_perspective(torch.rand(2, 3, 8, 8), torch.eye(3)[None], (4, 4)),
         lambda: warp_op(torch.rand(2, 3, 8, 8), torch.eye(3)[None], 4, 4)),
        (lambda: dgp_ops.warp_perspective(torch.rand(1, 3, 8, 8), torch.eye(3).double(), (4, 4)),
         lambda: warp_op(torch.rand(1, 3, 8, 8), torch.eye(3).double()[None], 4, 4)),
        (lambda: dgp_ops.warp_perspective(torch.rand(1, 3, 8, 8), torch.eye(3), (4, 0)),
         lambda: warp_op(torch.rand(1, 3, 8, 8), torch.eye(3)[None], 4, 0)),
        (lambda: dgp_ops.solve_translation(torch.rand(2, 5, 3), torch.rand(2, 4, 2), torch.eye(3)),
         lambda: dlt_op(torch.rand(2, 5, 3), torch.rand(2, 4, 2), torch.eye(3).expand(2, 3, 3),
                        torch.ones(2, 5))),
    ],
)
def test_public_functions_raise_the_specs_messages(call, op_message):
    assert outcome(call) == outcome(op_message)


# ---- no host-device synchronisation --------------------------------------------------------------

# What would read device memory on the host, in C++.
HOST_READS = re.compile(
    r"\.item\s*[<(]|_local_scalar_dense|\.cpu\(\)|kCPU|cudaDeviceSynchronize|cudaStreamSynchronize"
    r"|cudaMemcpy\s*\(|\.tolist|\.equal\(|is_nonzero|synchronize\("
)


def test_cuda_sources_read_nothing_on_the_host():
    sources = [p for p in (ROOT / "csrc").rglob("*") if p.suffix in (".cu", ".cuh")]
    sources.append(ROOT / "csrc" / "common" / "gpu.h")
    assert len(sources) >= 5
    for path in sources:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("//")[0]
            assert not HOST_READS.search(code), f"{path.name}:{n}: {line.strip()}"


# ATen ops whose CUDA kernels synchronise with the host.
SYNCING = {"_local_scalar_dense", "item", "nonzero", "is_nonzero", "equal", "masked_select",
           "unique", "_unique2", "repeat_interleave", "allclose", "_linalg_check_errors"}


class SyncDetector(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in SYNCING:
            self.calls.append(name)
        return func(*args, **(kwargs or {}))


def public_calls():
    p3, p2, K, w, _ = random_problem(3, 21, seed=1, dtype=torch.float32)
    img = torch.rand(3, 3, 40, 48)
    Kc = torch.tensor([[500.0, 0, 24], [0, 500, 20], [0, 0, 1]]).expand(3, 3, 3).clone()
    center, side = torch.tensor([[20.0, 18.0]] * 3), torch.full((3,), 30.0)
    lens = dgp_ops.Distortion(torch.tensor([-0.2, 0.05, 0.001, 0.0, 0.01]))
    return {
        "solve_translation": lambda: dgp_ops.solve_translation(p3, p2, K, w, return_valid=True),
        "solve_translation(K shared, no weights)": lambda: dgp_ops.solve_translation(
            p3, p2, K[0]),
        "warp_perspective": lambda: dgp_ops.warp_perspective(img, torch.eye(3), (16, 16)),
        "warp_perspective(uint8)": lambda: dgp_ops.warp_perspective(
            (img * 255).to(torch.uint8), torch.eye(3).double(), (16, 16)),
        "crop_intrinsics": lambda: rc.crop_intrinsics(Kc, center, side, 32),
        "rectification": lambda: rc.rectification(Kc, center, side, focal=torch.full((3,), 800.0)),
        "rectify_images": lambda: rc.rectify_images(img, Kc, center, side, out_size=16),
        "rectify_images(distortion)": lambda: rc.rectify_images(
            img, Kc, center, side, out_size=16, distortion=lens),
        "warp_perspective_distorted": lambda: dgp_ops.warp_perspective_distorted(
            img, torch.eye(3), Kc, lens, (16, 16)),
        "warp_perspective_distorted(fisheye, uint8)": lambda: dgp_ops.warp_perspective_distorted(
            (img * 255).to(torch.uint8), torch.eye(3), Kc,
            dgp_ops.Distortion(torch.zeros(4), "fisheye"), (16, 16)),
        "undistort_points": lambda: dgp_ops.undistort_points(p2, Kc, lens),
        "transform_points2d": lambda: rc.transform_points2d(Kc, p2),
        "canonical_intrinsics": lambda: rc.canonical_intrinsics(),
    }


@pytest.mark.parametrize("name", list(public_calls()))
def test_public_functions_do_not_synchronise_on_a_device(monkeypatch, name):
    """With the host-readable devices emptied, CPU tensors take the path device tensors take:
    no ATen op that synchronises may run (the value checks become device-side assertions)."""
    monkeypatch.setattr(_validation, "HOST_READABLE_DEVICES", ())
    call = public_calls()[name]
    with SyncDetector() as detector:
        call()
    assert detector.calls == []
    # The same call with host reads allowed (the CPU's path) does read values.
    if name in ("warp_perspective", "solve_translation", "rectification",
                "warp_perspective_distorted"):
        monkeypatch.setattr(_validation, "HOST_READABLE_DEVICES", ("cpu",))
        with SyncDetector() as detector:
            call()
        assert detector.calls


def test_value_checks_are_skipped_while_a_stream_is_captured(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: True)
    assert not _validation.has_values(torch.zeros(1))
    out = dgp_ops.warp_perspective(torch.rand(1, 1, 4, 4), torch.zeros(3, 3), (3, 3))
    assert torch.all(out == 0)
    p3, p2, K, w, _ = random_problem(2, 5, seed=2, dtype=torch.float32)
    w[1, 0] = -1.0
    _, valid = dgp_ops.solve_translation(p3, p2, K, w, return_valid=True)
    assert valid.tolist() == [True, False]


def test_invertible_is_the_kernels_definition():
    eps = dgp_ops.MIN_REL_DET
    A = torch.eye(3, dtype=torch.float64).repeat(6, 1, 1)
    A[1] *= 1e-30  # scale does not matter
    A[2, 2, 2] = 2 * eps  # det / max = 2 eps: invertible
    A[3, 2, 2] = 0.5 * eps  # below: not
    A[4, 0, 0] = float("inf")
    A[5] = 0.0
    expected = [True, True, True, False, False, False]
    assert dgp_ops.invertible(A).tolist() == expected
    # The kernels agree: the warp zeroes exactly the items it does not invert.
    out = dgp_ops.warp_perspective(torch.ones(6, 1, 4, 4, dtype=torch.float64), A, (2, 2),
                                   check_values=False)
    assert (out.flatten(1).abs().sum(1) > 0).tolist() == expected


# ---- autocast -----------------------------------------------------------------------------------


def test_autocast_runs_the_ops_in_float32():
    p3, p2, K, w, _ = random_problem(4, 21, seed=3, dtype=torch.float32)
    ref = dgp_ops.solve_translation(p3, p2, K, w)
    low = [x.to(torch.bfloat16).requires_grad_() for x in (p3, p2, K, w)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        t = dgp_ops.solve_translation(*low)
    assert t.dtype == torch.float32
    expected = dgp_ops.solve_translation(*(x.detach().float() for x in low))
    torch.testing.assert_close(t, expected)
    assert torch.isfinite(ref).all()
    t.sum().backward()
    assert all(x.grad is not None and x.grad.dtype == torch.bfloat16 for x in low)

    img = torch.rand(2, 3, 16, 16, dtype=torch.bfloat16, requires_grad=True)
    H = torch.eye(3, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = dgp_ops.warp_perspective(img, H, (8, 8))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, dgp_ops.warp_perspective(img.detach().float(), H.float(),
                                                             (8, 8)))
    out.sum().backward()
    assert img.grad.dtype == torch.bfloat16


def test_every_op_carries_the_pt2_compliant_tag():
    names = [n.split("::")[1] for n in torch._C._dispatch_get_all_op_names()
             if n.startswith("dgp_ops::")]
    assert names
    for name in names:
        op = getattr(torch.ops.dgp_ops, name).default
        assert torch.Tag.pt2_compliant_tag in op.tags, name
