"""The registered ops are public: malformed raw calls raise errors naming the argument, mixed
devices are errors (never a call to the fake kernel), double backward raises, non-finite
upstream gradients propagate, fake kernels explain themselves, and the public functions work
on meta and fake tensors."""

from __future__ import annotations

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import dgp_ops
from dgp_ops import _C
from dgp_ops import rectify as rc

from .dlt_helpers import random_problem

dlt_op = torch.ops.dgp_ops.weighted_dlt_translation
dlt_bwd = torch.ops.dgp_ops.weighted_dlt_translation_backward
warp_op = torch.ops.dgp_ops.warp_perspective
warp_bwd = torch.ops.dgp_ops.warp_perspective_backward
F64 = torch.float64


def _dlt_args(B: int = 4, N: int = 21, dtype=torch.float32):
    p3, p2, K, w, _ = random_problem(B, N, seed=0)
    return [x.to(dtype) for x in (p3, p2, K, w)]


def _warp_args(B: int = 2):
    H = torch.eye(3).expand(B, 3, 3).clone()
    H[:, :2, 2] = 1.5
    return torch.rand(B, 3, 8, 9), H


# ---- the raw DLT calls -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "bad", "exc", "name"),
    [
        (2, torch.eye(3), ValueError, "K must have shape"),
        (3, torch.ones(4, 3), ValueError, "weights must have shape"),
        (0, torch.zeros(4, 21, 2), ValueError, "points3d must have shape"),
        (1, torch.zeros(2, 21, 2), ValueError, "points2d must have shape"),
        (1, torch.zeros(4, 21, 2, dtype=F64), TypeError, "points2d has dtype"),
        (2, torch.eye(3, dtype=torch.int32).expand(4, 3, 3), TypeError, "K has dtype"),
        (0, torch.zeros(4, 1, 3), ValueError, "N >= 2"),
        (3, torch.ones(4, 21, device="meta"), ValueError, "weights is on meta"),
    ],
)
def test_raw_dlt_forward_rejects_malformed_calls(index, bad, exc, name):
    args = _dlt_args()
    args[index] = bad
    with pytest.raises(exc, match=name):
        dlt_op(*args, 0.0)


def test_raw_dlt_scalar_and_default_damping():
    args = _dlt_args()
    torch.testing.assert_close(dlt_op(*args)[0], dlt_op(*args, 0.0)[0])
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="damping"):
            dlt_op(*args, bad)


def test_raw_dlt_backward_rejects_large_mismatched_inputs():
    """Large point counts that disagree between arguments: an error, never a heap write."""
    B, N = 4, 100_000
    p3, p2, K, w = _dlt_args(B, 21)
    _, _, saved = dlt_op(p3, p2, K, w)
    g = torch.ones(B, 3)
    big3, big2, bigw = torch.rand(B, N, 3), torch.rand(B, N, 2), torch.rand(B, N)
    cases = [
        ((g, big3, p2, K, w, saved), "points2d"),
        ((g, p3, big2, K, w, saved), "points2d"),
        ((g, big3, big2, K, bigw, saved[:2]), "saved"),
        ((g, big3, big2, K, bigw[:, :10], saved), "weights"),
        ((g[:1], big3, big2, K, bigw, saved), "grad_t"),
        ((g, big3, big2, K[:1], bigw, saved), "K"),
        ((g, p3, p2, K, w, saved.float()), "saved"),
        ((g, p3, p2, K, w, saved[:, :4]), "saved"),
    ]
    for args, name in cases:
        with pytest.raises(ValueError, match=name):
            dlt_bwd(*args, 0.0)
    with pytest.raises(ValueError, match="weights"):
        dlt_op(big3, big2, K, bigw[:2])


def test_raw_dlt_strides_are_handled():
    p3, p2, K, w = _dlt_args(B=5, N=7)
    views = [p3.transpose(1, 2).contiguous().transpose(1, 2), p2[:, :, :].flip(0).flip(0),
             K[:1].expand(5, 3, 3), torch.stack([w, w], -1)[..., 0]]
    Ke = K[:1].expand(5, 3, 3).contiguous()
    t, valid, saved = dlt_op(*views)
    t_ref, _, saved_ref = dlt_op(p3, p2, Ke, w)
    torch.testing.assert_close(t, t_ref, rtol=0, atol=0)
    g = torch.rand(5, 3).t().contiguous().t()
    for a, b in zip(dlt_bwd(g, *views, saved_ref, 0.0),
                    dlt_bwd(g.contiguous(), p3, p2, Ke, w, saved_ref, 0.0), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_mixed_meta_and_cpu_are_errors_for_every_op():
    p3, p2, K, w = _dlt_args()
    _, _, saved = dlt_op(p3, p2, K, w)
    with pytest.raises(ValueError, match="is on meta"):
        dlt_op(p3, p2.to("meta"), K, w)
    with pytest.raises(ValueError, match="is on"):
        dlt_op(p3.to("meta"), p2, K, w)
    with pytest.raises(ValueError, match="saved is on"):
        dlt_bwd(torch.ones(4, 3), p3, p2, K, w, saved.to("meta"), 0.0)
    img, H = _warp_args()
    with pytest.raises(ValueError, match="H is on meta"):
        warp_op(img, H.to("meta"), 4, 4, "bilinear", "zeros")
    with pytest.raises(ValueError, match="grad_output is on meta"):
        warp_bwd(torch.ones(2, 3, 4, 4, device="meta"), img, H, "bilinear", "zeros", True, True)


def test_raw_warp_rejects_malformed_calls():
    img, H = _warp_args()
    cases = [
        ((img[0], H, 4, 4, "bilinear", "zeros"), ValueError, "image must have shape"),
        ((img, H[:1], 4, 4, "bilinear", "zeros"), ValueError, "H must have shape"),
        ((img, H.double(), 4, 4, "bilinear", "zeros"), TypeError, "H has dtype"),
        ((img.int(), H, 4, 4, "bilinear", "zeros"), TypeError, "image must be"),
        ((img, H, 0, 4, "bilinear", "zeros"), ValueError, "out_h and out_w"),
        ((img, H, 4, -2, "bilinear", "zeros"), ValueError, "out_h and out_w"),
        ((img, H, 4, 4, "cubic", "zeros"), ValueError, "mode"),
        ((img, H, 4, 4, "bilinear", "wrap"), ValueError, "padding_mode"),
        ((img[:, :, :0], H, 4, 4, "bilinear", "zeros"), ValueError, "height and width"),
    ]
    for args, exc, match in cases:
        with pytest.raises(exc, match=match):
            warp_op(*args)
    g = torch.ones(2, 3, 4, 4)
    bad_backward = [
        ((g[:, :2], img, H), "grad_output must have shape"),
        ((g[:1], img, H), "grad_output must have shape"),
        ((g[:, :, :0], img, H), "out_h and out_w"),
        ((g, img, H[:1]), "H must have shape"),
    ]
    for (gg, i, h), match in bad_backward:
        with pytest.raises(ValueError, match=match):
            warp_bwd(gg, i, h, "bilinear", "zeros", True, True)
    with pytest.raises(TypeError, match="image must be float16, bfloat16, float32 or float64"):
        warp_bwd(g, (img * 255).to(torch.uint8), H, "bilinear", "zeros", True, True)


# ---- autograd -----------------------------------------------------------------------------------


def test_dlt_double_backward_raises():
    ins = [x.double().requires_grad_() for x in _dlt_args(B=2, N=6)]
    t = dgp_ops.solve_translation(*ins)
    (g,) = torch.autograd.grad(t.square().sum(), ins[1], create_graph=True)
    with pytest.raises(NotImplementedError, match="double backward"):
        torch.autograd.grad(g.sum(), ins[1])


def test_warp_double_backward_raises():
    img = torch.rand(1, 1, 8, 8, dtype=F64, requires_grad=True)
    H = (torch.eye(3, dtype=F64) + 0.01 * torch.rand(3, 3, dtype=F64)).requires_grad_()
    out = dgp_ops.warp_perspective(img, H, (6, 6))
    (gH,) = torch.autograd.grad(out.square().sum(), H, create_graph=True)
    with pytest.raises(NotImplementedError, match="double backward"):
        torch.autograd.grad(gH.sum(), H)


def test_first_order_gradients_with_create_graph_still_work():
    ins = [x.double().requires_grad_() for x in _dlt_args(B=2, N=6)]
    g1 = torch.autograd.grad(dgp_ops.solve_translation(*ins).sum(), ins, create_graph=True)
    g2 = torch.autograd.grad(dgp_ops.solve_translation(*ins).sum(), ins)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_upstream_gradient_propagates_on_valid_items(value):
    p3, p2, K, w = (x.double() for x in _dlt_args(B=3, N=6))
    w = w.clone()
    w[2] = 0.0  # invalid item: its gradients stay zero
    ins = [x.clone().requires_grad_() for x in (p3, p2, K, w)]
    t, valid = dgp_ops.solve_translation(*ins, return_valid=True)
    assert valid.tolist() == [True, True, False]
    g = torch.zeros_like(t)
    g[0, 1] = value
    t.backward(g)
    for x in ins:
        assert not torch.isfinite(x.grad[0]).all()
        assert torch.equal(x.grad[1], torch.zeros_like(x.grad[1]))
        assert torch.equal(x.grad[2], torch.zeros_like(x.grad[2]))


def test_negative_weights_make_items_invalid_inside_compiled_graphs():
    """A compiled graph reads no values: a negative weight invalidates its item, as the raw op
    and check_values=False do eagerly."""
    p3, p2, K, w = _dlt_args(B=2, N=5)
    w = w.clone()
    w[1, 3] = -0.5

    def f(*args):
        return dgp_ops.solve_translation(*args, return_valid=True)

    t, valid = torch.compile(f, fullgraph=True, backend="aot_eager")(p3, p2, K, w)
    assert valid.tolist() == [True, False] and torch.all(t[1] == 0)
    with pytest.raises(ValueError, match="weights must be non-negative"):
        f(p3, p2, K, w)


# ---- the warp computes only the gradients asked for -----------------------------------------


@pytest.mark.parametrize(("need_image", "need_h"), [(True, True), (True, False), (False, True)])
def test_warp_backward_returns_only_requested_gradients(need_image, need_h):
    img, H = (x.double() for x in _warp_args())
    g = torch.rand(2, 3, 5, 6, dtype=F64)
    gi, gh = warp_bwd(g, img, H, "bilinear", "zeros", need_image, need_h)
    assert gi.shape == (img.shape if need_image else (0,))
    assert gh.shape == (H.shape if need_h else (0,))
    full_i, full_h = warp_bwd(g, img, H, "bilinear", "zeros", True, True)
    if need_image:
        torch.testing.assert_close(gi, full_i, rtol=0, atol=0)
    if need_h:
        torch.testing.assert_close(gh, full_h)
    i = img.clone().requires_grad_(need_image)
    h = H.clone().requires_grad_(need_h)
    torch.library.opcheck(warp_op.default, (i, h, 5, 6, "bilinear", "border"))
    f = torch.compile(lambda a, b: dgp_ops.warp_perspective(a, b, (5, 6)).square().sum(),
                      fullgraph=True, backend="aot_eager")
    leaves = [x for x in (i, h) if x.requires_grad]
    got = torch.autograd.grad(f(i, h), leaves)
    ref = torch.autograd.grad(dgp_ops.warp_perspective(i, h, (5, 6)).square().sum(), leaves)
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b)


def test_h_only_backward_allocates_nothing_image_sized():
    img = torch.rand(2, 3, 120, 160)
    H = torch.eye(3).expand(2, 3, 3).clone().requires_grad_()
    out = dgp_ops.warp_perspective(img, H, (40, 40))
    image_bytes = img.numel() * img.element_size()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                profile_memory=True) as prof:
        out.sum().backward()
    allocated = [e.cpu_memory_usage for e in prof.events() if e.cpu_memory_usage > 0]
    assert allocated, "the profiler recorded no allocation"
    assert max(allocated) < image_bytes / 4
    assert H.grad is not None and img.grad is None


# ---- fake kernels and meta tensors ----------------------------------------------------------


def test_fake_kernels_say_what_is_wrong():
    with FakeTensorMode():
        p3, p2 = torch.rand(4, 21, 3), torch.rand(4, 21, 2)
        K, w = torch.rand(3, 3), torch.rand(4, 21)
        with pytest.raises(ValueError, match="K must have shape"):
            dlt_op(p3, p2, K, w)
        with pytest.raises(TypeError, match="weights has dtype"):
            dlt_op(p3, p2, K.expand(4, 3, 3), w.double())
        with pytest.raises(ValueError, match="saved must be"):
            dlt_bwd(torch.rand(4, 3), p3, p2, K.expand(4, 3, 3), w, torch.rand(4, 3), 0.0)
        img = torch.rand(2, 3, 8, 8)
        with pytest.raises(ValueError, match="H must have shape"):
            warp_op(img, torch.rand(3, 3, 3), 4, 4, "bilinear", "zeros")
        with pytest.raises(ValueError, match="padding_mode"):
            warp_op(img, torch.rand(2, 3, 3), 4, 4, "bilinear", "wrap")


def test_public_functions_on_meta_and_fake_tensors():
    for ctx_device in ("meta", "fake"):
        mode = FakeTensorMode() if ctx_device == "fake" else None
        dev = "cpu" if mode is not None else "meta"
        with mode if mode is not None else torch.device("meta"):
            p3 = torch.rand(4, 21, 3, device=dev)
            t, valid = dgp_ops.solve_translation(p3, torch.rand(4, 21, 2, device=dev),
                                                 torch.eye(3, device=dev),
                                                 torch.rand(4, 21, device=dev), return_valid=True)
            assert t.shape == (4, 3) and valid.shape == (4,)
            img = torch.rand(2, 3, 48, 64, device=dev)
            assert dgp_ops.warp_perspective(img, torch.eye(3, device=dev), (8, 9)).shape == (
                2, 3, 8, 9)
            K = torch.eye(3, device=dev).expand(2, 3, 3)
            crops, rect = rc.rectify_images(img, K, torch.rand(2, 2, device=dev),
                                            torch.ones(2, device=dev), out_size=16)
            assert crops.shape == (2, 3, 16, 16) and rect.H.shape == (2, 3, 3)


def test_constants_come_from_the_extension():
    p3, p2, K, w = _dlt_args()
    assert dlt_op(p3, p2, K, w)[2].shape[1] == dgp_ops.dlt.SAVED_PER_ITEM == _C.DLT_SAVED_PER_ITEM
    assert dgp_ops.warp.MODES == _C.WARP_MODES == ("bilinear", "nearest")
    assert dgp_ops.warp.PADDING_MODES == _C.WARP_PADDING_MODES
    assert dgp_ops.MIN_REL_DET == _C.MIN_REL_DET == 1e-12
    from dgp_ops import reference_warp
    assert reference_warp._MIN_W == _C.WARP_MIN_W


# ---- rectify checks the values it depends on ----------------------------------------------------


def _box(B=2):
    K = torch.tensor([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]], dtype=F64).expand(B, 3, 3)
    return K.clone(), torch.tensor([[300.0, 200.0]] * B, dtype=F64), torch.full((B,), 90.0,
                                                                               dtype=F64)


def _with(t, index, value):
    t = t.clone()
    t[index] = value
    return t


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda K, c, s: dict(side=_with(s, 1, 0.0), mode="crop"), "side"),
        (lambda K, c, s: dict(side=_with(s, 0, -3.0)), "side"),
        (lambda K, c, s: dict(side=_with(s, 0, float("nan"))), "side"),
        (lambda K, c, s: dict(focal=torch.tensor([500.0, float("inf")], dtype=F64)), "focal"),
        (lambda K, c, s: dict(focal=torch.tensor([500.0, -1.0], dtype=F64)), "focal"),
        (lambda K, c, s: dict(focal=float("inf")), "focal"),
        (lambda K, c, s: dict(focal=float("nan")), "focal"),
        (lambda K, c, s: dict(K=_with(K, (1, 2), 0.0)), "K is not invertible"),
        (lambda K, c, s: dict(K=_with(K, 0, 0.0)), "K is not invertible"),
        (lambda K, c, s: dict(K=_with(K, (0, 0, 0), float("inf"))), "K has non-finite"),
        (lambda K, c, s: dict(K=_with(K, (1, 2, 2), -1.0)), "center: the viewing ray"),
        (lambda K, c, s: dict(center=_with(c, (0, 1), float("nan"))), "center"),
        (lambda K, c, s: dict(scale=float("inf"), mode="crop"), "scale"),
        (lambda K, c, s: dict(scale=0.0, mode="crop"), "scale"),
    ],
)
def test_rectification_rejects_bad_values(change, match):
    K, c, s = _box()
    args = dict(K=K, center=c, side=s)
    args.update(change(K, c, s))
    with pytest.raises(ValueError, match=match):
        rc.rectification(**args)
    with pytest.raises(ValueError, match=match):
        extra = {k: v for k, v in args.items() if k not in ("K", "center", "side")}
        rc.rectify_images(torch.rand(2, 1, 8, 8, dtype=F64), args["K"], args["center"],
                          args["side"], out_size=8, **extra)
