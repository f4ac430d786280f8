"""torch.func over the public functions: vmap, per-sample gradients (vmap of grad) and jacrev,
each against a Python loop of ordinary calls."""

import pytest
import torch
from torch.func import grad, jacfwd, jacrev, vmap

import dgp_ops
from dgp_ops import solve_translation, warp_perspective

from .dlt_helpers import random_problem


def _problem(B=4, N=12, seed=0):
    return tuple(x.double() for x in random_problem(B, N, seed=seed)[:4])


def test_vmap_of_solve_translation_equals_a_loop():
    p3, p2, K, w = _problem()
    V = torch.stack([p3, p3 * 1.02, p3 * 0.97])  # (3, B, N, 3): a vmapped dimension in front
    got = vmap(lambda a: solve_translation(a, p2, K, w))(V)
    want = torch.stack([solve_translation(v, p2, K, w) for v in V])
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    # in_dims on other arguments, and the valid flags
    Ws = torch.stack([w, w.flip(1)], dim=1)  # vmapped along dim 1
    t, valid = vmap(lambda x: solve_translation(p3, p2, K, x, return_valid=True),
                    in_dims=1)(Ws)
    assert t.shape == (2, 4, 3) and valid.all()
    torch.testing.assert_close(t[1], solve_translation(p3, p2, K, w.flip(1)), rtol=0, atol=0)


def test_per_sample_gradients_of_solve_translation():
    p3, p2, K, w = _problem()

    def loss(a, b, c):  # one item's loss
        return solve_translation(a[None], b[None], K[:1], c[None]).square().sum()

    got = vmap(grad(loss, argnums=(0, 1, 2)))(p3, p2, w)
    for i in range(p3.shape[0]):
        args = [x[i].clone().requires_grad_() for x in (p3, p2, w)]
        want = torch.autograd.grad(loss(*args), args)
        for g, ref in zip(got, want, strict=True):
            torch.testing.assert_close(g[i], ref, rtol=1e-12, atol=1e-12)


def test_jacrev_of_solve_translation_equals_the_autograd_jacobian():
    p3, p2, K, w = _problem(B=2, N=6)
    J = jacrev(lambda b: solve_translation(p3, b, K, w))(p2)  # (B, 3, B, N, 2)
    want = torch.autograd.functional.jacobian(lambda b: solve_translation(p3, b, K, w), p2)
    torch.testing.assert_close(J, want, rtol=1e-12, atol=1e-12)
    assert J[0, :, 1].abs().max() == 0  # items do not interact


def _warp_problem(B=3):
    g = torch.Generator().manual_seed(1)
    img = torch.rand(B, 2, 9, 11, dtype=torch.float64, generator=g)
    H = torch.eye(3, dtype=torch.float64).repeat(B, 1, 1)
    H[:, 0, 2] = torch.rand(B, generator=g, dtype=torch.float64)
    H[:, 2, 0] = 0.01 * torch.rand(B, generator=g, dtype=torch.float64)
    return img, H


def test_vmap_of_warp_perspective_equals_a_loop():
    img, H = _warp_problem()
    Hs = torch.stack([H, H.flip(0)])
    got = vmap(lambda h: warp_perspective(img, h, (7, 8)))(Hs)
    want = torch.stack([warp_perspective(img, h, (7, 8)) for h in Hs])
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    imgs = torch.stack([img, 1 - img], dim=2)  # vmapped along dim 2
    got = vmap(lambda x: warp_perspective(x, H, (7, 8), "nearest"), in_dims=2)(imgs)
    torch.testing.assert_close(got[1], warp_perspective(1 - img, H, (7, 8), "nearest"))


def test_per_sample_gradients_of_warp_perspective():
    img, H = _warp_problem()
    target = torch.rand(3, 2, 7, 8, dtype=torch.float64)

    def loss(x, h, y):
        return (warp_perspective(x[None], h[None], (7, 8)) - y[None]).square().sum()

    g_img, g_h = vmap(grad(loss, argnums=(0, 1)))(img, H, target)
    for i in range(3):
        x, h = img[i].clone().requires_grad_(), H[i].clone().requires_grad_()
        want = torch.autograd.grad(loss(x, h, target[i]), (x, h))
        torch.testing.assert_close(g_img[i], want[0], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(g_h[i], want[1], rtol=1e-10, atol=1e-12)


def test_forward_mode_is_refused_clearly():
    p3, p2, K, w = _problem(B=1, N=4)
    with pytest.raises(RuntimeError, match="(?i)forward|jvp"):
        jacfwd(lambda b: solve_translation(p3, b, K, w))(p2)


def test_ordinary_calls_keep_the_compiled_autograd():
    """Outside torch.func the ops' own (C++) autograd runs: the graph's node is the op's."""
    p3, p2, K, w = (x.requires_grad_() for x in _problem(B=1, N=4))
    t = solve_translation(p3, p2, K, w)
    assert "SolveTranslation" not in type(t.grad_fn).__name__
    assert dgp_ops._transforms.transforms_active() is False
