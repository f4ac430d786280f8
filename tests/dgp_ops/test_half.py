"""float16 and bfloat16 arguments: accepted by both ops and their public functions, computed in
float32 inside, results and gradients in the arguments' dtype."""

import pytest
import torch

import dgp_ops
from dgp_ops.warp import warp_perspective

from .dlt_helpers import random_problem

HALF = (torch.float16, torch.bfloat16)
#: Relative precision of each half type (its unit roundoff).
EPS = {torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}


@pytest.mark.parametrize("dtype", HALF)
def test_dlt_in_half_equals_the_float32_solve_of_the_same_values(dtype):
    p3, p2, K, w, _ = random_problem(6, 21, seed=3)
    low = [x.to(dtype).requires_grad_() for x in (p3, p2, K, w)]
    t, valid = dgp_ops.solve_translation(*low, return_valid=True)
    assert t.dtype == dtype and valid.all()
    # the same (rounded) values in float32: the half call computes exactly that, then rounds
    ref = [x.detach().float().requires_grad_() for x in low]
    t32 = dgp_ops.solve_translation(*ref)
    torch.testing.assert_close(t, t32.to(dtype), rtol=0, atol=0)
    g = torch.rand(6, 3)
    t.backward(g.to(dtype))
    t32.backward(g.to(dtype).float())
    for a, b in zip(low, ref, strict=True):
        assert a.grad.dtype == dtype
        torch.testing.assert_close(a.grad, b.grad.to(dtype), rtol=0, atol=0)
    # and close to the full-precision answer, within what the inputs' rounding allows
    t64 = dgp_ops.solve_translation(*(x.double() for x in (p3, p2, K, w)))
    err = (t.detach().double() - t64).norm(dim=1) / t64.norm(dim=1)
    assert float(err.max()) < 2000 * EPS[dtype], err


@pytest.mark.parametrize("dtype", HALF)
def test_warp_in_half_equals_the_float32_warp_of_the_same_values(dtype):
    img = torch.rand(2, 3, 20, 24).to(dtype).requires_grad_()
    H = torch.tensor([[0.9, 0.1, 1.5], [-0.05, 1.1, 0.5], [1e-3, 0.0, 1.0]]).expand(2, 3, 3)
    H = H.to(dtype).requires_grad_()
    out = warp_perspective(img, H, (18, 22))
    assert out.dtype == dtype
    img32, H32 = (x.detach().float().requires_grad_() for x in (img, H))
    out32 = warp_perspective(img32, H32, (18, 22))
    torch.testing.assert_close(out, out32.to(dtype), rtol=0, atol=0)
    g = torch.rand_like(out32)
    out.backward(g.to(dtype))
    out32.backward(g.to(dtype).float())
    assert img.grad.dtype == dtype and H.grad.dtype == dtype
    torch.testing.assert_close(img.grad, img32.grad.to(dtype), rtol=0, atol=0)
    torch.testing.assert_close(H.grad, H32.grad.to(dtype), rtol=0, atol=0)


def test_uint8_image_with_a_half_homography():
    img = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8)
    H = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0], [0.0, 0.0, 1.0]])[None]
    out = warp_perspective(img, H.half(), (12, 12))
    assert out.dtype == torch.uint8
    torch.testing.assert_close(out, warp_perspective(img, H, (12, 12)), rtol=0, atol=0)


def test_half_arguments_must_agree_and_fake_kernels_follow():
    p3, p2, K, w, _ = random_problem(2, 5, seed=1)
    with pytest.raises(TypeError, match="K has dtype torch.float64 but points3d has"):
        torch.ops.dgp_ops.weighted_dlt_translation(p3.half(), p2.half(), K, w.half(), 0.0)
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        args = [torch.empty(x.shape, dtype=torch.bfloat16) for x in (p3, p2, K, w)]
        t, valid, saved = torch.ops.dgp_ops.weighted_dlt_translation(*args, 0.0)
        assert t.dtype == torch.bfloat16 and saved.dtype == torch.float64
        out = torch.ops.dgp_ops.warp_perspective(torch.empty(2, 3, 8, 8, dtype=torch.float16),
                                                 torch.empty(2, 3, 3, dtype=torch.float16), 4,
                                                 5, "bilinear", "zeros")
        assert out.dtype == torch.float16 and out.shape == (2, 3, 4, 5)
