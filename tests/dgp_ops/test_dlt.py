"""Correctness of the fused weighted DLT translation op (CPU; CUDA agreement when available)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd import gradcheck

import dgp_ops
from dgp_ops.reference import dlt_translation_handdgp_style, dlt_translation_reference

from .dlt_helpers import random_problem, rotation

solve = dgp_ops.solve_translation
F64 = torch.float64


def _noisy(seed: int = 0, B: int = 3, N: int = 6):
    p3, p2, K, w, _ = random_problem(B, N, seed=seed)
    gen = torch.Generator().manual_seed(seed + 100)
    p2 = p2 + 2.0 * torch.randn(p2.shape, generator=gen, dtype=F64)
    p3 = p3 + 0.005 * torch.randn(p3.shape, generator=gen, dtype=F64)
    return p3, p2, K, w


@pytest.mark.parametrize("damping", [0.0, 0.05])
def test_gradcheck_all_inputs(damping):
    p3, p2, K, w = _noisy()
    ins = [x.clone().requires_grad_() for x in (p3, p2, K, w)]
    assert gradcheck(lambda a, b, c, d: solve(a, b, c, d, damping=damping), ins)


def test_gradcheck_shared_K():
    p3, p2, K, w = _noisy(seed=1)
    ins = [x.clone().requires_grad_() for x in (p3, p2, K[0], w)]
    assert gradcheck(solve, ins)


def test_gradients_match_reference_autograd():
    p3, p2, K, w = _noisy(seed=2, B=5, N=21)
    a = [x.clone().requires_grad_() for x in (p3, p2, K, w)]
    b = [x.clone().requires_grad_() for x in (p3, p2, K, w)]
    g = torch.randn(5, 3, dtype=F64)
    (solve(*a, damping=0.1) * g).sum().backward()
    (dlt_translation_reference(*b, damping=0.1) * g).sum().backward()
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x.grad, y.grad, rtol=1e-7, atol=1e-9)


def test_needs_input_grad_respected():
    p3, p2, K, w = _noisy(seed=3)
    p3 = p3.requires_grad_()
    solve(p3, p2, K, w).sum().backward()
    assert p3.grad is not None and p2.grad is None and K.grad is None and w.grad is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck(dtype):
    p3, p2, K, w = (x.to(dtype) for x in _noisy(seed=4))
    op = torch.ops.dgp_ops.weighted_dlt_translation
    torch.library.opcheck(op, (p3.requires_grad_(), p2, K, w, 0.0))
    torch.library.opcheck(
        op, (p3, p2.requires_grad_(), K.requires_grad_(), w.requires_grad_(), 0.1)
    )
    g = torch.randn(p3.shape[0], 3, dtype=dtype)
    args = (p3.detach(), p2.detach(), K.detach(), w.detach())
    _, _, saved = op(*args, 0.1)
    torch.library.opcheck(
        torch.ops.dgp_ops.weighted_dlt_translation_backward, (g, *args, saved, 0.1)
    )
    with pytest.raises(ValueError, match="saved"):
        torch.ops.dgp_ops.weighted_dlt_translation_backward(g, *args, saved.float(), 0.1)


# ---- properties -------------------------------------------------------------------------------

_seeds = st.integers(0, 2**31 - 1)


@settings(max_examples=25, deadline=None)
@given(seed=_seeds, n=st.integers(3, 30), angle=st.floats(0.0, 3.0))
def test_exact_recovery(seed, n, angle):
    p3, p2, K, w, t = random_problem(2, n, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    R = rotation(torch.randn(3, generator=gen, dtype=F64) * angle / 1.8)
    p3 = p3 @ R.T
    cam = p3 + t[:, None]
    proj = cam @ K.transpose(1, 2)
    p2 = proj[..., :2] / proj[..., 2:]
    t_hat, valid = solve(p3, p2, K, w, return_valid=True)
    assert bool(valid.all())
    torch.testing.assert_close(t_hat, t, rtol=0, atol=1e-9)


@settings(max_examples=20, deadline=None)
@given(seed=_seeds, scale=st.floats(1e-3, 1e3))
def test_weight_scale_invariance(seed, scale):
    p3, p2, K, w = _noisy(seed=seed % 1000)
    torch.testing.assert_close(
        solve(p3, p2, K, w * scale), solve(p3, p2, K, w), rtol=1e-9, atol=1e-12
    )


@settings(max_examples=20, deadline=None)
@given(seed=_seeds)
def test_zero_weight_points_have_no_influence(seed):
    p3, p2, K, w = _noisy(seed=seed % 1000, N=8)
    w = w.clone()
    w[:, :3] = 0.0
    gen = torch.Generator().manual_seed(seed)
    p3b, p2b = p3.clone(), p2.clone()
    p3b[:, :3] += torch.randn(3, 3, 3, generator=gen, dtype=F64)
    p2b[:, :3] += 100.0 * torch.randn(3, 3, 2, generator=gen, dtype=F64)
    torch.testing.assert_close(solve(p3b, p2b, K, w), solve(p3, p2, K, w), rtol=1e-10, atol=1e-12)
    ins = [x.clone().requires_grad_() for x in (p3, p2, K, w)]
    solve(*ins).square().sum().backward()
    assert torch.all(ins[0].grad[:, :3] == 0) and torch.all(ins[1].grad[:, :3] == 0)
    assert torch.all(ins[0].grad[:, 3:] != 0)


@settings(max_examples=20, deadline=None)
@given(seed=_seeds, shift=st.tuples(st.floats(-300, 300), st.floats(-300, 300)))
def test_principal_point_shift(seed, shift):
    p3, p2, K, w = _noisy(seed=seed % 1000)
    d = torch.tensor(shift, dtype=F64)
    K2 = K.clone()
    K2[:, :2, 2] += d
    torch.testing.assert_close(solve(p3, p2 + d, K2, w), solve(p3, p2, K, w), rtol=1e-9, atol=1e-10)


@settings(max_examples=20, deadline=None)
@given(seed=_seeds, damping=st.sampled_from([0.0, 1e-3, 0.5]))
def test_agrees_with_references_on_noisy_data(seed, damping):
    p3, p2, K, w = _noisy(seed=seed % 1000, B=4, N=21)
    t = solve(p3, p2, K, w, damping=damping)
    torch.testing.assert_close(t, dlt_translation_reference(p3, p2, K, w, damping=damping))
    if damping == 0.0:
        torch.testing.assert_close(t, dlt_translation_handdgp_style(p3, p2, K, w))


def test_float32_matches_float64_solve():
    """Done-when: float32 within 1e-5 m of a float64 solve on well-conditioned problems."""
    p3, p2, K, w, _ = random_problem(4096, 21, seed=7)
    gen = torch.Generator().manual_seed(8)
    p2 = p2 + torch.randn(p2.shape, generator=gen, dtype=F64)
    t64 = dlt_translation_reference(p3, p2, K, w)
    t32 = solve(p3.float(), p2.float(), K.float(), w.float())
    assert t32.dtype == torch.float32
    # Inputs are rounded to float32 first: compare against the float64 solve of those inputs.
    t64_of32 = dlt_translation_reference(
        p3.float().double(), p2.float().double(), K.float().double(), w.float().double()
    )
    assert (t32.double() - t64_of32).abs().max() < 1e-5
    assert (t32.double() - t64).abs().max() < 1e-4  # float32 input rounding alone


def test_float32_gradients_match_float64():
    """The float32 backward runs its per-point chain rule in float: check it against float64."""
    p3, p2, K, w, _ = random_problem(512, 21, seed=11)
    gen = torch.Generator().manual_seed(12)
    p2 = p2 + torch.randn(p2.shape, generator=gen, dtype=F64)
    g = torch.randn(512, 3, generator=gen, dtype=F64)

    def grads(dtype):
        xs = [x.to(dtype).requires_grad_() for x in (p3, p2, K, w)]
        solve(*xs, damping=0.01).backward(g.to(dtype))
        return [x.grad.double() for x in xs]

    # Compare on float32-rounded inputs so only the arithmetic differs.
    p3, p2, K, w = (x.float().double() for x in (p3, p2, K, w))
    for name, g32, g64 in zip(("points3d", "points2d", "K", "weights"), grads(torch.float32),
                              grads(F64), strict=True):
        scale = g64.flatten(1).norm(dim=1).clamp(min=1e-12)
        err = (g32 - g64).flatten(1).norm(dim=1) / scale
        assert err.max() < 1e-4, (name, float(err.max()))


# ---- degenerate inputs ------------------------------------------------------------------------


def _degenerate_batch():
    p3, p2, K, w, _ = random_problem(5, 6, seed=11)
    w = w.clone()
    p2 = p2.clone()
    p3 = p3.clone()
    w[0] = 0.0  # all weights zero
    p2[1] = p2[1, :1]  # every point on one ray
    p3[2, 3, 1] = float("nan")
    p2[3, 2, 0] = float("inf")
    return p3, p2, K, w  # item 4 stays well posed


def test_degenerate_items_flagged_zero_and_finite_grads():
    p3, p2, K, w = _degenerate_batch()
    ins = [x.clone().requires_grad_() for x in (p3, p2, K, w)]
    t, valid = solve(*ins, return_valid=True)
    assert valid.tolist() == [False, False, False, False, True]
    assert torch.all(t[:4] == 0) and torch.isfinite(t).all()
    t.sum().backward()
    for x in ins:
        assert torch.isfinite(x.grad).all()
        assert torch.all(x.grad[:4] == 0)
        assert torch.any(x.grad[4] != 0)


def test_damping_makes_one_ray_solvable():
    p3, p2, K, w = _degenerate_batch()
    _, valid = solve(p3[1:2], p2[1:2], K[1:2], w[1:2], damping=1e-3, return_valid=True)
    assert bool(valid.all())


def test_singular_K_is_invalid():
    p3, p2, K, w, _ = random_problem(2, 5, seed=12)
    K = K.clone()
    K[0] = 0.0
    t, valid = solve(p3, p2, K, w, return_valid=True)
    assert valid.tolist() == [False, True] and torch.all(t[0] == 0)


# ---- shapes, layouts, validation --------------------------------------------------------------


def test_empty_batch():
    z3, z2 = torch.zeros(0, 21, 3, requires_grad=True), torch.zeros(0, 21, 2)
    t, valid = solve(z3, z2, torch.eye(3), return_valid=True)
    assert t.shape == (0, 3) and valid.shape == (0,)
    t.sum().backward()
    assert z3.grad.shape == z3.shape


def test_non_contiguous_inputs():
    p3, p2, K, w = _noisy(seed=13, B=4, N=7)
    p3n = p3.transpose(1, 2).contiguous().transpose(1, 2)
    p2n = torch.stack([p2, p2], dim=-1)[..., 0]
    Kn = K.transpose(1, 2).contiguous().transpose(1, 2)
    wn = torch.stack([w, w], dim=-1)[..., 0]
    assert not (
        p3n.is_contiguous() or p2n.is_contiguous() or Kn.is_contiguous() or wn.is_contiguous()
    )
    torch.testing.assert_close(solve(p3n, p2n, Kn, wn), solve(p3, p2, K, w), rtol=0, atol=0)


def test_default_weights_are_ones():
    p3, p2, K, w = _noisy(seed=14)
    torch.testing.assert_close(solve(p3, p2, K), solve(p3, p2, K, torch.ones_like(w)))


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        (dict(points3d=torch.zeros(2, 5, 2)), ValueError, "points3d"),
        (
            dict(points3d=torch.zeros(2, 1, 3), points2d=torch.zeros(2, 1, 2), weights=None),
            ValueError,
            "N >= 2",
        ),
        (dict(points2d=torch.zeros(2, 4, 2)), ValueError, "points2d"),
        (dict(K=torch.zeros(3, 3, 3)), ValueError, "K"),
        (dict(weights=torch.ones(2, 4)), ValueError, "weights"),
        (dict(weights=-torch.ones(2, 5)), ValueError, "weights"),
        (dict(points2d=torch.zeros(2, 5, 2, dtype=F64)), TypeError, "points2d"),
        (dict(points3d=torch.zeros(2, 5, 3, dtype=torch.int64)), TypeError, "points3d"),
        (dict(K=[[1.0, 0, 0], [0, 1, 0], [0, 0, 1]]), TypeError, "K"),
        (dict(weights=torch.ones(2, 5, device="meta")), ValueError, "weights"),
        (dict(damping=-1.0), ValueError, "damping"),
    ],
)
def test_input_validation(kwargs, exc, name):
    args = dict(
        points3d=torch.zeros(2, 5, 3),
        points2d=torch.zeros(2, 5, 2),
        K=torch.eye(3),
        weights=torch.ones(2, 5),
    )
    args.update(kwargs)
    with pytest.raises(exc, match=name):
        solve(**args)


def test_one_negative_weight_anywhere_is_an_error():
    p3, p2, K, w, _ = random_problem(300, 21, seed=3)
    for b, i in ((0, 0), (299, 20), (150, 7)):
        bad = w.clone()
        bad[b, i] = -1e-6
        with pytest.raises(ValueError, match=rf"weights must be non-negative.*\[{b}\]"):
            solve(p3, p2, K, bad)
        # The op itself never reads values on the host: the item is invalid, on every device.
        t, valid, saved = torch.ops.dgp_ops.weighted_dlt_translation(p3, p2, K, bad, 0.0)
        assert not valid[b] and valid.sum() == 299
        assert torch.all(t[b] == 0) and torch.all(saved[b] == 0)
        t2, valid2 = solve(p3, p2, K, bad, return_valid=True, check_values=False)
        assert torch.equal(t2, t) and torch.equal(valid2, valid)
    # NaN is not negative: the item is flagged invalid instead.
    nan = w.clone()
    nan[5, 3] = float("nan")
    _, valid = solve(p3, p2, K, nan, return_valid=True)
    assert not valid[5] and valid.sum() == 299


def test_negative_weight_items_have_zero_gradients():
    p3, p2, K, w = (x.double() for x in random_problem(3, 6, seed=4)[:4])
    w = w.clone()
    w[1, 2] = -0.5
    ins = [x.clone().requires_grad_() for x in (p3, p2, K, w)]
    t, valid = solve(*ins, return_valid=True, check_values=False)
    assert valid.tolist() == [True, False, True]
    t.sum().backward()
    for x in ins:
        assert torch.all(x.grad[1] == 0) and torch.any(x.grad[0] != 0)


@pytest.mark.parametrize("backend", ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)])
def test_torch_compile_fullgraph(backend):
    p3, p2, K, w = (x.float() for x in _noisy(seed=15, B=2, N=5))

    def f(a, b, c, d):
        return solve(a, b, c, d * d, damping=0.01).square().sum()

    compiled = torch.compile(f, fullgraph=True, backend=backend)
    a = [x.clone().requires_grad_() for x in (p3, p2, K, w)]
    b = [x.clone().requires_grad_() for x in (p3, p2, K, w)]
    torch.testing.assert_close(compiled(*a), f(*b))
    compiled(*a).backward()
    f(*b).backward()
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x.grad, y.grad)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(dtype):
    p3, p2, K, w = (x.to(dtype) for x in _noisy(seed=16, B=300, N=21))
    p3[0, 1, 0] = float("nan")
    cpu = [x.clone().requires_grad_() for x in (p3, p2, K, w)]
    gpu = [x.cuda().requires_grad_() for x in (p3, p2, K, w)]
    tc, vc = solve(*cpu, damping=0.01, return_valid=True)
    tg, vg = solve(*gpu, damping=0.01, return_valid=True)
    assert torch.equal(vc, vg.cpu())
    tol = dict(rtol=1e-4, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(tg.cpu(), tc, **tol)
    g = torch.randn_like(tc)
    (tc * g).sum().backward()
    (tg * g.cuda()).sum().backward()
    for x, y in zip(cpu, gpu, strict=True):
        torch.testing.assert_close(y.grad.cpu(), x.grad, **tol)
    if dtype == torch.float64:
        torch.library.opcheck(
            torch.ops.dgp_ops.weighted_dlt_translation, tuple(x.detach() for x in gpu) + (0.0,)
        )
