"""Hypothesis fuzzing of every raw op and public function with malformed arguments.

Each case starts from a well-formed call and perturbs some arguments: rank, sizes that
disagree between arguments, dtypes (also mixed), strides (non-contiguous and expanded views),
devices (``meta`` mixed with real tensors), NaN/Inf, singular matrices, empty batches, too few
points and bad scalars. An oracle written from the documented contract says whether the call
is well formed: then it must succeed with outputs of the documented shapes; otherwise it must
raise ValueError or TypeError naming the op or argument -- never crash, read out of bounds
(the sanitizer run of these tests checks that) or return garbage.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dgp_ops
from dgp_ops import rectify as rc

from .dlt_helpers import random_problem

FLOATS = (torch.float32, torch.float64)
ACCEPTED = FLOATS + (torch.float16, torch.bfloat16)  # the ops compute the half types in float32
BAD_ERRORS = (ValueError, TypeError)
KINDS = ("same", "same", "noncontig", "expand", "rank", "size", "dtype", "meta", "nonfinite")
OTHER_DTYPES = (torch.float32, torch.float64, torch.float16, torch.int64, torch.uint8, torch.bool)
SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def variant(draw, t: torch.Tensor) -> torch.Tensor:
    """One perturbation of a well-formed tensor argument."""
    kind = draw(st.sampled_from(KINDS))
    if kind == "same":
        return t
    if kind == "noncontig":
        return torch.stack([t, t], dim=-1)[..., 0]
    if kind == "expand":
        return t[:1].expand_as(t) if t.dim() > 0 and t.shape[0] > 0 else t
    if kind == "rank":
        return t[None] if t.dim() == 0 or draw(st.booleans()) else t.sum(-1)
    if kind == "size" and t.dim() > 0:
        d = draw(st.integers(0, t.dim() - 1))
        shape = list(t.shape)
        shape[d] = draw(st.integers(0, shape[d] + 2).filter(lambda v, s=shape[d]: v != s))
        return torch.rand(shape, dtype=t.dtype) if t.is_floating_point() else torch.zeros(
            shape, dtype=t.dtype)
    if kind == "dtype":
        return t.to(draw(st.sampled_from(OTHER_DTYPES)))
    if kind == "meta":
        return t.to("meta")
    if kind == "nonfinite" and t.numel() > 0 and t.is_floating_point():
        t = t.clone(memory_format=torch.contiguous_format)
        t.view(-1)[draw(st.integers(0, t.numel() - 1))] = draw(
            st.sampled_from([math.nan, math.inf, -math.inf]))
        return t
    return t


def one_device(*ts: torch.Tensor) -> bool:
    return len({t.device for t in ts}) == 1


def expect(ok: bool, call, names: tuple[str, ...]):
    """Run ``call``; succeed iff ``ok``, else demand a ValueError/TypeError naming something."""
    if ok:
        return call()
    with pytest.raises(BAD_ERRORS) as info:
        call()
    msg = str(info.value)
    assert any(n in msg for n in names), msg
    return None


def scalar(draw) -> float:
    return draw(st.sampled_from([0.0, 0.0, 0.1, -1.0, math.nan, math.inf]))


def has_negative(t: torch.Tensor) -> bool:
    return t.device.type != "meta" and t.is_floating_point() and bool((t < 0).any())


# ---- weighted DLT ------------------------------------------------------------------------------

DLT_NAMES = ("points3d", "points2d", "K", "weights", "saved", "grad_t", "damping")


@st.composite
def dlt_problem(draw):
    B = draw(st.sampled_from([0, 1, 3]))
    N = draw(st.sampled_from([0, 1, 2, 5]))
    dtype = draw(st.sampled_from(FLOATS))
    p3, p2, K, w, _ = random_problem(B, max(N, 1), seed=draw(st.integers(0, 100)))
    return [x[:, :N].to(dtype) if x.dim() > 1 and x is not K else x.to(dtype)
            for x in (p3, p2, K, w)]


def dlt_well_formed(p3, p2, K, w, damping, check_values: bool = False) -> bool:
    """Whether a DLT call is accepted: the ops read no values (a negative weight makes its item
    invalid); the public function with check_values rejects negative weights."""
    if p3.dim() != 3 or p3.shape[2] != 3 or p3.dtype not in ACCEPTED:
        return False
    B, N = p3.shape[:2]
    return (N >= 2 and p2.shape == (B, N, 2) and K.shape == (B, 3, 3) and w.shape == (B, N)
            and all(x.dtype == p3.dtype for x in (p2, K, w)) and one_device(p3, p2, K, w)
            and math.isfinite(damping) and damping >= 0
            and not (check_values and has_negative(w)))


@SETTINGS
@given(data=st.data(), base=dlt_problem())
def test_fuzz_raw_dlt_forward(data, base):
    args = [variant(data.draw, t) for t in base]
    damping = scalar(data.draw)
    ok = dlt_well_formed(*args, damping)
    out = expect(ok, lambda: torch.ops.dgp_ops.weighted_dlt_translation(*args, damping),
                 DLT_NAMES)
    if ok:
        t, valid, saved = out
        B = args[0].shape[0]
        assert t.shape == (B, 3) and valid.shape == (B,)
        assert saved.shape == (B, dgp_ops.dlt.SAVED_PER_ITEM) and saved.dtype == torch.float64
        if t.device.type != "meta":
            assert torch.isfinite(t).all()


@SETTINGS
@given(data=st.data(), base=dlt_problem())
def test_fuzz_raw_dlt_backward(data, base):
    p3, p2, K, w = base
    N = p3.shape[1]
    if N < 2:
        saved = torch.zeros(p3.shape[0], dgp_ops.dlt.SAVED_PER_ITEM, dtype=torch.float64)
    else:
        saved = torch.ops.dgp_ops.weighted_dlt_translation(p3, p2, K, w, 0.0)[2]
    grad_t = torch.rand(p3.shape[0], 3, dtype=p3.dtype)
    args = [variant(data.draw, t) for t in (grad_t, p3, p2, K, w, saved)]
    damping = scalar(data.draw)
    g, q3, q2, qK, qw, sv = args
    B = q3.shape[0] if q3.dim() == 3 else -1
    ok = (dlt_well_formed(q3, q2, qK, qw, damping)
          and g.shape == (B, 3) and g.dtype == q3.dtype
          and sv.shape == (B, dgp_ops.dlt.SAVED_PER_ITEM) and sv.dtype == torch.float64
          and one_device(g, q3, sv))
    out = expect(ok, lambda: torch.ops.dgp_ops.weighted_dlt_translation_backward(*args, damping),
                 DLT_NAMES)
    if ok:
        assert [o.shape for o in out] == [q3.shape, q2.shape, qK.shape, qw.shape]


@SETTINGS
@given(data=st.data(), base=dlt_problem(), shared_K=st.booleans(), no_weights=st.booleans())
def test_fuzz_solve_translation(data, base, shared_K, no_weights):
    p3, p2, K, w = base
    if shared_K and K.shape[0] > 0:
        K = K[0]
    p3, p2, K, w = (variant(data.draw, t) for t in (p3, p2, K, w))
    w = None if no_weights else w
    damping = scalar(data.draw)
    K_full = K.expand(p3.shape[0], 3, 3) if (K.shape == (3, 3) and p3.dim() == 3) else K
    w_full = p3.new_ones(p3.shape[:2]) if (w is None and p3.dim() == 3) else w
    ok = (w_full is not None and dlt_well_formed(p3, p2, K_full, w_full, damping,
                                                 check_values=True))
    out = expect(ok, lambda: dgp_ops.solve_translation(p3, p2, K, w, damping=damping),
                 DLT_NAMES)
    if ok:
        assert out.shape == (p3.shape[0], 3) and out.dtype == p3.dtype


# ---- perspective warp -------------------------------------------------------------------------

WARP_NAMES = ("image", "H", "out_h", "out_w", "out_size", "mode", "padding_mode",
              "grad_output")
MODES = ("bilinear", "nearest", "bicubic")
PADS = ("zeros", "border", "reflection", "wrap")


@st.composite
def warp_problem(draw):
    B, C = draw(st.sampled_from([0, 1, 2])), draw(st.sampled_from([0, 1, 3]))
    h, w = draw(st.sampled_from([1, 2, 7])), draw(st.sampled_from([1, 3, 8]))
    dtype = draw(st.sampled_from(FLOATS + (torch.uint8,)))
    image = torch.rand(B, C, h, w)
    image = (image * 255).to(dtype) if dtype == torch.uint8 else image.to(dtype)
    if draw(st.booleans()):
        image = image.contiguous(memory_format=torch.channels_last)
    H = torch.eye(3).expand(B, 3, 3).clone()
    H[:, :2, 2] = torch.rand(B, 2) * 2
    if draw(st.booleans()):
        H[:, :] = 0.0 if draw(st.booleans()) else H  # singular items
    return image, H.to(torch.float32 if dtype == torch.uint8 else dtype)


def warp_image_ok(image, H, allow_uint8: bool) -> bool:
    if image.dim() != 4 or H.dim() != 3 or H.shape != (image.shape[0], 3, 3):
        return False
    image_types = ACCEPTED + ((torch.uint8,) if allow_uint8 else ())
    if image.dtype not in image_types or H.dtype not in ACCEPTED:
        return False
    if image.dtype != torch.uint8 and H.dtype != image.dtype:
        return False
    return one_device(image, H) and image.shape[2] > 0 and image.shape[3] > 0


def sizes(draw) -> tuple[int, int]:
    return draw(st.sampled_from([-1, 0, 1, 5])), draw(st.sampled_from([0, 1, 4]))


@SETTINGS
@given(data=st.data(), base=warp_problem())
def test_fuzz_raw_warp_forward(data, base):
    image, H = (variant(data.draw, t) for t in base)
    oh, ow = sizes(data.draw)
    mode, pad = data.draw(st.sampled_from(MODES)), data.draw(st.sampled_from(PADS))
    ok = (warp_image_ok(image, H, True) and oh > 0 and ow > 0 and mode in MODES[:2]
          and pad in PADS[:3])
    out = expect(ok, lambda: torch.ops.dgp_ops.warp_perspective(image, H, oh, ow, mode, pad),
                 WARP_NAMES)
    if ok:
        assert out.shape == (image.shape[0], image.shape[1], oh, ow)
        assert out.dtype == image.dtype
        if out.device.type != "meta" and out.is_floating_point():
            assert torch.isfinite(out[..., :, :]).all() or not torch.isfinite(image).all()


@SETTINGS
@given(data=st.data(), base=warp_problem(), need=st.sampled_from([(1, 1), (1, 0), (0, 1), (0, 0)]))
def test_fuzz_raw_warp_backward(data, base, need):
    image, H = base
    if image.dtype == torch.uint8:
        image, H = image.float(), H.float()
    g = torch.rand(image.shape[0], image.shape[1], 4, 5, dtype=image.dtype)
    g, image, H = (variant(data.draw, t) for t in (g, image, H))
    mode, pad = data.draw(st.sampled_from(MODES)), data.draw(st.sampled_from(PADS))
    ok = (warp_image_ok(image, H, False) and g.dim() == 4
          and g.shape[:2] == image.shape[:2] and g.shape[2] > 0 and g.shape[3] > 0
          and g.dtype == image.dtype and one_device(g, image) and mode in MODES[:2]
          and pad in PADS[:3])
    out = expect(ok, lambda: torch.ops.dgp_ops.warp_perspective_backward(
        g, image, H, mode, pad, bool(need[0]), bool(need[1])), WARP_NAMES)
    if ok:
        gi, gh = out
        assert gi.shape == (image.shape if need[0] else (0,))
        assert gh.shape == (H.shape if need[1] else (0,))


def h_values_ok(H: torch.Tensor) -> bool:
    if H.device.type == "meta" or H.numel() == 0:
        return True
    Hd = H.double()
    if not torch.isfinite(Hd).all():
        return False
    scale = Hd.abs().flatten(1).amax(1).clamp_min(1e-300)
    return bool((torch.linalg.det(Hd / scale[:, None, None]).abs() > dgp_ops.MIN_REL_DET).all())


@SETTINGS
@given(data=st.data(), base=warp_problem(), shared_H=st.booleans())
def test_fuzz_warp_perspective(data, base, shared_H):
    image, H = base
    if shared_H:
        H = torch.eye(3, dtype=H.dtype) * data.draw(st.sampled_from([1.0, 0.0]))
    image, H = (variant(data.draw, t) for t in (image, H))
    out_size = data.draw(st.sampled_from([(4, 5), (0, 3), (3, -1), (2,), 4, (2.5, 3)]))
    mode, pad = data.draw(st.sampled_from(MODES)), data.draw(st.sampled_from(PADS))
    B = image.shape[0] if image.dim() == 4 else -1
    H_full = H.expand(B, 3, 3) if (H.shape == (3, 3) and B >= 0) else H
    good_size = (isinstance(out_size, tuple) and len(out_size) == 2
                 and all(isinstance(s, int) and s > 0 for s in out_size))
    ok = (warp_image_ok(image, H_full, True) and good_size and mode in MODES[:2]
          and pad in PADS[:3] and h_values_ok(H_full))
    out = expect(ok, lambda: dgp_ops.warp_perspective(image, H, out_size, mode, pad), WARP_NAMES)
    if ok:
        assert out.shape == (*image.shape[:2], *out_size) and out.dtype == image.dtype


# ---- rectification ------------------------------------------------------------------------------

RECT_NAMES = ("K", "center", "side", "focal", "scale", "out_size", "mode", "images")


@SETTINGS
@given(data=st.data(), B=st.sampled_from([0, 1, 3]), dtype=st.sampled_from(FLOATS),
       mode=st.sampled_from(rc.RECTIFICATION_MODES))
def test_fuzz_rectification(data, B, dtype, mode):
    K = torch.tensor([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]], dtype=dtype).repeat(B, 1, 1)
    center = torch.rand(B, 2, dtype=dtype) * 400
    side = 50 + torch.rand(B, dtype=dtype) * 100
    K, center, side = (variant(data.draw, t) for t in (K, center, side))
    if data.draw(st.booleans()) and K.dim() == 3 and K.shape[0] > 0:
        K = K.clone()
        K[0] = data.draw(st.sampled_from([0.0, -1.0, 1.0])) * K[0]  # singular or flipped
    focal = data.draw(st.sampled_from([1000.0, 0.0, -5.0, math.inf, math.nan]))
    scale = data.draw(st.sampled_from([1.3, 0.0, math.inf]))
    try:
        rect = rc.rectification(K, center, side, focal=focal, scale=scale, mode=mode)
    except BAD_ERRORS as e:
        assert any(n in str(e) for n in RECT_NAMES), str(e)
        return
    # Whatever it accepted gives finite, well-shaped geometry.
    for m in rect:
        assert m.shape == (K.shape[0], 3, 3)
        if m.device.type != "meta":
            assert torch.isfinite(m).all()
