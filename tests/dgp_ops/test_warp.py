"""Tests of dgp_ops.warp_perspective: agreement with grid_sample and OpenCV, gradients,
op registration, properties and bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dgp_ops
from dgp_ops.reference_warp import warp_perspective_reference
from dgp_ops.warp import MODES, PADDING_MODES

warp = dgp_ops.warp_perspective


def smooth_images(B: int, C: int, h: int, w: int, dtype=torch.float64, seed: int = 0):
    """Low-frequency images in [0, 1] (so OpenCV's 1/32 px coordinate rounding is small)."""
    g = torch.Generator().manual_seed(seed)
    ys = torch.arange(h, dtype=torch.float64)[:, None]
    xs = torch.arange(w, dtype=torch.float64)[None, :]
    out = torch.zeros(B, C, h, w, dtype=torch.float64)
    for _ in range(3):
        fx, fy, ph = (torch.rand(B, C, 3, generator=g) * torch.tensor([0.15, 0.15, 6.0])).unbind(-1)
        out += torch.sin(fx[..., None, None] * xs + fy[..., None, None] * ys + ph[..., None, None])
    return ((out / 6.0) + 0.5).to(dtype)


def random_homographies(B: int, h: int, w: int, dtype=torch.float64, seed: int = 0, strength=1.0):
    """Homographies near a centred scale + rotation with a mild perspective term."""
    g = torch.Generator().manual_seed(seed)
    Hs = []
    for _ in range(B):
        ang = (torch.rand(1, generator=g).item() - 0.5) * 0.6 * strength
        s = 0.8 + 0.4 * torch.rand(1, generator=g).item()
        c, sn = np.cos(ang) * s, np.sin(ang) * s
        T1 = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]])
        T2 = np.array([[1, 0, w / 2], [0, 1, h / 2], [0, 0, 1]])
        A = np.array([[c, -sn, 0], [sn, c, 0], [0, 0, 1]])
        P = np.eye(3)
        P[2, :2] = (torch.rand(2, generator=g).numpy() - 0.5) * 2e-3 * strength
        P[:2, 2] = (torch.rand(2, generator=g).numpy() - 0.5) * 6 * strength
        Hs.append(T2 @ P @ A @ T1)
    return torch.tensor(np.stack(Hs), dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("padding_mode", PADDING_MODES)
@pytest.mark.parametrize("B", [1, 3])
def test_matches_grid_sample_reference(dtype, mode, padding_mode, B):
    img = torch.rand(B, 2, 23, 31, generator=torch.Generator().manual_seed(1)).to(dtype)
    H = random_homographies(B, 23, 31, dtype, seed=2, strength=3.0)
    out = warp(img, H, (27, 19), mode=mode, padding_mode=padding_mode)
    ref = warp_perspective_reference(img, H, (27, 19), mode, padding_mode)
    assert out.shape == (B, 2, 27, 19) and out.dtype == dtype
    if mode == "nearest" and dtype == torch.float32:
        # Rounding ties may fall differently in float32 coordinate math.
        assert (out - ref).abs().gt(1e-6).float().mean() < 0.01
    else:
        torch.testing.assert_close(out, ref, atol=1e-5 if dtype == torch.float32 else 1e-12, rtol=0)


@pytest.mark.parametrize(
    "padding_mode,border", [("zeros", cv2.BORDER_CONSTANT), ("border", cv2.BORDER_REPLICATE)]
)
def test_matches_opencv_bilinear(padding_mode, border):
    h, w = 48, 64
    img = smooth_images(2, 3, h, w, torch.float32, seed=3)
    H = random_homographies(2, h, w, torch.float64, seed=4)
    out = warp(img, H.float(), (40, 56), padding_mode=padding_mode)
    for b in range(2):
        src = img[b].permute(1, 2, 0).numpy()
        ref = cv2.warpPerspective(
            src, H[b].numpy(), (56, 40), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=0
        )
        got = out[b].permute(1, 2, 0).numpy()
        # OpenCV rounds source coordinates to 1/32 px.
        np.testing.assert_allclose(got, ref, atol=2e-2)
        assert np.abs(got - ref).mean() < 2e-3


@pytest.mark.parametrize(
    "padding_mode,border",
    [
        ("zeros", cv2.BORDER_CONSTANT),
        ("border", cv2.BORDER_REPLICATE),
        ("reflection", cv2.BORDER_REFLECT_101),
    ],
)
def test_matches_opencv_nearest(padding_mode, border):
    h, w = 30, 40
    img = torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    H = random_homographies(1, h, w, torch.float64, seed=6, strength=3.0)
    out = warp(img, H, (50, 45), mode="nearest", padding_mode=padding_mode)[0, 0].numpy()
    ref = cv2.warpPerspective(
        img[0, 0].numpy(), H[0].numpy(), (45, 50), flags=cv2.INTER_NEAREST, borderMode=border
    )
    # Only exact rounding ties may differ.
    assert np.mean(np.abs(out - ref) > 1e-12) < 0.01


@pytest.mark.parametrize("padding_mode", PADDING_MODES)
@pytest.mark.parametrize("B", [1, 2])
def test_gradcheck_bilinear(padding_mode, B):
    img = torch.rand(B, 2, 7, 9, dtype=torch.float64, requires_grad=True)
    H = random_homographies(B, 7, 9, seed=7, strength=4.0).requires_grad_()

    def f(i, h):
        return warp(i, h, (6, 8), padding_mode=padding_mode)

    assert torch.autograd.gradcheck(f, (img, H))


@pytest.mark.parametrize("padding_mode", PADDING_MODES)
def test_gradcheck_nearest_image(padding_mode):
    img = torch.rand(2, 2, 7, 9, dtype=torch.float64, requires_grad=True)
    H = random_homographies(2, 7, 9, seed=8, strength=4.0)
    assert torch.autograd.gradcheck(
        lambda i: warp(i, H, (6, 8), mode="nearest", padding_mode=padding_mode),
        (img,),
        fast_mode=True,
    )
    # Piecewise constant in H: its gradient is zero, not missing.
    Hg = H.clone().requires_grad_()
    warp(img, Hg, (6, 8), mode="nearest", padding_mode=padding_mode).sum().backward()
    assert torch.equal(Hg.grad, torch.zeros_like(H))


@pytest.mark.parametrize("padding_mode", PADDING_MODES)
def test_gradients_match_reference_float32(padding_mode):
    img = smooth_images(2, 3, 30, 40, torch.float32, seed=9).requires_grad_()
    H = random_homographies(2, 30, 40, torch.float32, seed=10, strength=2.0).requires_grad_()
    gout = torch.rand(2, 3, 25, 35, generator=torch.Generator().manual_seed(11))
    g1 = torch.autograd.grad(
        (warp(img, H, (25, 35), padding_mode=padding_mode) * gout).sum(), (img, H)
    )
    ref = warp_perspective_reference(img, H, (25, 35), "bilinear", padding_mode)
    g2 = torch.autograd.grad((ref * gout).sum(), (img, H))
    torch.testing.assert_close(g1[0], g2[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(g1[1], g2[1], atol=1e-3, rtol=2e-3)


def test_shared_h_broadcasts_and_gets_summed_gradient():
    img = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    H = random_homographies(1, 8, 8, seed=12)[0].requires_grad_()
    out = warp(img, H, (8, 8))
    out.sum().backward()
    torch.testing.assert_close(out, warp(img, H.detach().expand(3, 3, 3), (8, 8)))
    Hb = H.detach().expand(3, 3, 3).clone().requires_grad_()
    warp(img, Hb, (8, 8)).sum().backward()
    torch.testing.assert_close(H.grad, Hb.grad.sum(0))


def test_scale_and_sign_of_h_do_not_matter():
    img = torch.rand(2, 2, 12, 10, dtype=torch.float64)
    H = random_homographies(2, 12, 10, seed=13)
    ref = warp(img, H, (11, 9))
    torch.testing.assert_close(warp(img, -3.0 * H, (11, 9)), ref)
    torch.testing.assert_close(warp(img, 1e-4 * H, (11, 9)), ref)


def test_behind_camera_is_padding_with_zero_gradient():
    # Output column x maps to source w = 1 - x / 5: columns x >= 5 have no valid source (the
    # output's centre, x = 3.5, sees its source in front: that fixes the sign of H).
    Hinv = torch.tensor([[1.0, 0, 0], [0, 1, 0], [-0.2, 0, 1]], dtype=torch.float64)
    H = torch.linalg.inv(Hinv)[None].requires_grad_()
    img = torch.rand(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    for padding_mode in PADDING_MODES:
        out = warp(img, H, (6, 8), padding_mode=padding_mode)
        assert torch.isfinite(out).all()
        assert (out[..., 5:] == 0).all()
        ref = warp_perspective_reference(img, H, (6, 8), "bilinear", padding_mode)
        torch.testing.assert_close(out, ref)
        gi, gh = torch.autograd.grad(out[..., 5:].sum(), (img, H), retain_graph=True)
        assert torch.equal(gi, torch.zeros_like(gi)) and torch.equal(gh, torch.zeros_like(gh))
        gi, gh = torch.autograd.grad(out.sum(), (img, H))
        assert torch.isfinite(gi).all() and torch.isfinite(gh).all()


def test_identity_copies_and_crops():
    img = torch.rand(2, 3, 9, 11, dtype=torch.float32)
    eye = torch.eye(3)
    torch.testing.assert_close(warp(img, eye, (9, 11)), img, atol=0, rtol=0)
    torch.testing.assert_close(warp(img, eye, (5, 7)), img[..., :5, :7], atol=0, rtol=0)
    shift = torch.tensor([[1.0, 0, -2], [0, 1, -3], [0, 0, 1]])
    torch.testing.assert_close(warp(img, shift, (6, 9)), img[..., 3:, 2:], atol=1e-6, rtol=0)


def test_threads_give_the_same_result():
    img = smooth_images(3, 3, 40, 50, torch.float32, seed=14)
    H = random_homographies(3, 40, 50, torch.float32, seed=15)
    gout = torch.rand(3, 3, 33, 44, generator=torch.Generator().manual_seed(16))
    old = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            for B in (1, 3):  # one item: row chunks with private buffers; many: per item
                i = img[:B].clone().requires_grad_()
                h = H[:B].clone().requires_grad_()
                out = warp(i, h, (33, 44))
                results.append((out, *torch.autograd.grad((out * gout[:B]).sum(), (i, h))))
    finally:
        torch.set_num_threads(old)
    for a, b in zip(results[:2], results[2:], strict=True):
        for x, y in zip(a, b, strict=True):
            torch.testing.assert_close(x, y, atol=1e-4, rtol=1e-5)


def test_noncontiguous_inputs():
    img = torch.rand(2, 10, 12, 3, dtype=torch.float64).permute(0, 3, 1, 2)
    H = random_homographies(2, 10, 12, seed=17).transpose(1, 2)
    torch.testing.assert_close(warp(img, H, (8, 9)), warp(img.contiguous(), H.contiguous(), (8, 9)))


def test_empty_batch():
    img = torch.rand(0, 3, 8, 8, requires_grad=True)
    H = torch.rand(0, 3, 3, requires_grad=True)
    out = warp(img, H, (4, 5))
    assert out.shape == (0, 3, 4, 5)
    out.sum().backward()
    assert img.grad.shape == img.shape and H.grad.shape == H.shape


def test_opcheck():
    img = torch.rand(2, 2, 7, 8, dtype=torch.float64, requires_grad=True)
    H = random_homographies(2, 7, 8, seed=18).requires_grad_()
    for mode in MODES:
        torch.library.opcheck(
            torch.ops.dgp_ops.warp_perspective.default, (img, H, 5, 6, mode, "border")
        )
    gout = torch.rand(2, 2, 5, 6, dtype=torch.float64)
    torch.library.opcheck(
        torch.ops.dgp_ops.warp_perspective_backward.default,
        (gout, img.detach(), H.detach(), "bilinear", "zeros", True, True),
    )
    for flags in ((True, False), (False, True)):
        torch.library.opcheck(
            torch.ops.dgp_ops.warp_perspective_backward.default,
            (gout, img.detach(), H.detach(), "bilinear", "reflection", *flags),
        )


def test_torch_compile_fullgraph():
    img = torch.rand(2, 2, 10, 12, requires_grad=True)
    H = random_homographies(2, 10, 12, torch.float32, seed=19).requires_grad_()

    def f(i, h):
        return (warp(i, h, (8, 9), padding_mode="reflection") ** 2).sum()

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(img, H), f(img, H))
    g1 = torch.autograd.grad(compiled(img, H), (img, H))
    g2 = torch.autograd.grad(f(img, H), (img, H))
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b)


@settings(max_examples=20, deadline=None)
@given(
    h=st.integers(2, 12),
    w=st.integers(2, 12),
    padding_mode=st.sampled_from(PADDING_MODES),
    mode=st.sampled_from(MODES),
    seed=st.integers(0, 2**16),
)
def test_property_identity(h, w, padding_mode, mode, seed):
    img = torch.rand(1, 2, h, w, generator=torch.Generator().manual_seed(seed))
    out = warp(img, torch.eye(3), (h, w), mode=mode, padding_mode=padding_mode)
    torch.testing.assert_close(out, img, atol=0, rtol=0)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_property_composition(seed):
    # Keep every intermediate sample well inside the image so padding plays no part.
    h, w = 64, 64
    img = smooth_images(1, 1, h, w, torch.float64, seed=seed)
    g = torch.Generator().manual_seed(seed)

    def small_h():
        M = torch.eye(3, dtype=torch.float64)
        M[:2, :2] += (torch.rand(2, 2, generator=g, dtype=torch.float64) - 0.5) * 0.1
        M[:2, 2] = (torch.rand(2, generator=g, dtype=torch.float64) - 0.5) * 2
        M[2, :2] = (torch.rand(2, generator=g, dtype=torch.float64) - 0.5) * 1e-3
        C = torch.tensor([[1.0, 0, -32], [0, 1, -32], [0, 0, 1]], dtype=torch.float64)
        return torch.linalg.inv(C) @ M @ C

    H1, H2 = small_h(), small_h()
    two = warp(warp(img, H1, (h, w)), H2, (h, w))
    one = warp(img, H2 @ H1, (h, w))
    inner = (slice(None), slice(None), slice(12, -12), slice(12, -12))
    # Bilinear twice blurs a little more than once: bounded by the image curvature.
    torch.testing.assert_close(two[inner], one[inner], atol=5e-3, rtol=0)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(image=torch.rand(3, 8, 8)), ValueError, "image"),
        (dict(image=torch.randint(0, 9, (1, 3, 8, 8), dtype=torch.int32)), TypeError, "image"),
        (dict(image=torch.rand(1, 3, 8, 8, dtype=torch.float64)), TypeError, "H"),
        (dict(H=torch.eye(3)[None].expand(2, 3, 3)), ValueError, "H"),
        (dict(H=torch.eye(4)), ValueError, "H"),
        (dict(H=torch.zeros(3, 3)), ValueError, "H is not invertible"),
        (dict(H=torch.tensor([[1.0, 2, 3], [2, 4, 6], [0, 0, 1]])), ValueError, "not invertible"),
        (dict(H=torch.full((3, 3), float("nan"))), ValueError, "H is not invertible"),
        (dict(H=torch.eye(3).numpy()), TypeError, "H"),
        (dict(out_size=(0, 4)), ValueError, "out_h and out_w must be positive"),
        (dict(out_size=(4, -1)), ValueError, "out_h and out_w must be positive"),
        (dict(out_size=5), ValueError, "out_size"),
        (dict(mode="bicubic"), ValueError, "mode"),
        (dict(padding_mode="wrap"), ValueError, "padding_mode"),
    ],
)
def test_bad_input(kwargs, exc, match):
    args = dict(image=torch.rand(1, 3, 8, 8), H=torch.eye(3), out_size=(4, 4))
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        warp(**args)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("padding_mode", PADDING_MODES)
def test_cuda_matches_cpu(dtype, mode, padding_mode):
    img = smooth_images(3, 3, 40, 50, dtype, seed=20)
    H = random_homographies(3, 40, 50, dtype, seed=21, strength=3.0)
    gout = torch.rand(3, 3, 30, 35, generator=torch.Generator().manual_seed(22)).to(dtype)
    res = []
    for dev in ("cpu", "cuda"):
        i = img.to(dev).requires_grad_()
        h = H.to(dev).requires_grad_()
        out = warp(i, h, (30, 35), mode=mode, padding_mode=padding_mode)
        res.append([out, *torch.autograd.grad((out * gout.to(dev)).sum(), (i, h))])
    tol = dict(atol=1e-4, rtol=1e-3) if dtype == torch.float32 else dict(atol=1e-9, rtol=1e-9)
    for a, b in zip(res[0], res[1], strict=True):
        torch.testing.assert_close(b.cpu(), a, **tol)


@pytest.mark.parametrize("B", [1, 3])
def test_expanded_incoming_gradient(B):
    # out.sum().backward() hands the kernel a stride-0 gradient; it must equal a dense one.
    img = smooth_images(B, 3, 20, 24, torch.float64, seed=23).requires_grad_()
    H = random_homographies(B, 20, 24, seed=24, strength=3.0).requires_grad_()
    for padding_mode in PADDING_MODES:
        out = warp(img, H, (17, 21), padding_mode=padding_mode)
        g1 = torch.autograd.grad(out.sum(), (img, H), retain_graph=True)
        g2 = torch.autograd.grad(out, (img, H), torch.ones_like(out))
        for a, b in zip(g1, g2, strict=True):
            torch.testing.assert_close(a, b)


def test_large_tensors_match_reference():
    # Outputs and image gradients of several MiB come from a separate allocation path.
    img = smooth_images(2, 3, 420, 500, torch.float32, seed=25).requires_grad_()
    H = random_homographies(2, 420, 500, torch.float32, seed=26).requires_grad_()
    out = warp(img, H, (400, 520))
    ref = warp_perspective_reference(img, H, (400, 520))
    # float32 coordinates of a few hundred pixels: rounding differs at the 1e-5 px level.
    torch.testing.assert_close(out, ref, atol=1e-3, rtol=0)
    g1 = torch.autograd.grad(out.sum(), img)[0]
    g2 = torch.autograd.grad(ref.sum(), img)[0]
    torch.testing.assert_close(g1, g2, atol=1e-3, rtol=1e-3)
    g1.add_(1.0)  # the returned gradient is an ordinary writable tensor
    assert g1.sum() > 0


# ---- uint8 images -----------------------------------------------------------------------------


def _u8_batch(B: int, h: int, w: int, seed: int = 30):
    g = torch.Generator().manual_seed(seed)
    hwc = (torch.rand(B, h, w, 3, generator=g) * 256).to(torch.uint8)  # noise: sharp edges
    return hwc, random_homographies(B, h, w, torch.float64, seed=seed + 1, strength=2.0)


@pytest.mark.parametrize(
    ("mode", "flag"), [("bilinear", cv2.INTER_LINEAR), ("nearest", cv2.INTER_NEAREST)]
)
@pytest.mark.parametrize(
    ("padding_mode", "border"),
    [("zeros", cv2.BORDER_CONSTANT), ("border", cv2.BORDER_REPLICATE),
     ("reflection", cv2.BORDER_REFLECT_101)],
)
def test_uint8_matches_opencv(mode, flag, padding_mode, border):
    hwc, H = _u8_batch(3, 37, 45)
    image = hwc.permute(0, 3, 1, 2)  # channels-last memory, read in place
    assert image.is_contiguous(memory_format=torch.channels_last)
    out = warp(image, H, (33, 41), mode=mode, padding_mode=padding_mode)
    assert out.dtype == torch.uint8 and out.shape == (3, 3, 33, 41)
    for b in range(3):
        ref = cv2.warpPerspective(hwc[b].numpy(), H[b].numpy(), (41, 33), flags=flag,
                                  borderMode=border, borderValue=0)
        got = out[b].permute(1, 2, 0).numpy()
        diff = np.abs(got.astype(np.int32) - ref.astype(np.int32))
        assert diff.max() <= 1, (b, diff.max())
        assert (diff > 0).mean() < 0.01


def test_uint8_layouts_and_dtypes_of_h_agree():
    hwc, H = _u8_batch(2, 20, 24, seed=32)
    nchw = hwc.permute(0, 3, 1, 2).contiguous()
    ref = warp(nchw, H, (18, 19))
    torch.testing.assert_close(warp(hwc.permute(0, 3, 1, 2), H, (18, 19)), ref, rtol=0, atol=0)
    torch.testing.assert_close(warp(nchw, H.float(), (18, 19)), ref, rtol=0, atol=1)
    # Close to the float warp of the same image (exact coordinates, no 1/32 px rounding).
    f = warp(nchw.double(), H, (18, 19)).round()
    assert (f - ref.double()).abs().max() <= 8


def test_uint8_has_no_gradient_and_saturates():
    img = torch.full((1, 1, 6, 6), 255, dtype=torch.uint8)
    H = torch.tensor([[0.7, 0.1, 0.3], [0.0, 0.8, 0.2], [0.0, 0.0, 1.0]], requires_grad=True)
    out = warp(img, H, (5, 5), padding_mode="border")
    assert not out.requires_grad
    assert torch.equal(out, torch.full_like(out, 255))
    torch.library.opcheck(torch.ops.dgp_ops.warp_perspective.default,
                          (img, H.detach().expand(1, 3, 3), 5, 5, "bilinear", "zeros"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_mirroring_and_negated_homographies_match_opencv(dtype):
    """H and -H are one homography, and a mirror (det H < 0) is as valid as a rotation: the
    warp samples where OpenCV does, for every sign."""
    hwc, H = _u8_batch(2, 37, 45, seed=40)
    flip = torch.tensor([[-1.0, 0.0, 40.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=H.dtype)
    mirrored = flip @ H  # det < 0
    assert (torch.linalg.det(mirrored) < 0).all()
    image = hwc.permute(0, 3, 1, 2)
    if dtype == torch.float32:
        image = image.float() / 255
        H, mirrored = H.float(), mirrored.float()
    for Hs in (mirrored, -mirrored, -H):
        out = warp(image, Hs, (33, 41))
        assert out.abs().sum() > 0
        for b in range(2):
            src = image[b].permute(1, 2, 0).contiguous().numpy()
            ref = cv2.warpPerspective(src, Hs[b].numpy(), (41, 33), flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            got = out[b].permute(1, 2, 0).numpy()
            diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
            tol = 1 if dtype == torch.uint8 else 2e-2  # OpenCV rounds coordinates to 1/32 px
            assert diff.max() <= tol, (b, diff.max())
    # the reference implementation orients the same way
    source = image.double() if dtype == torch.float32 else image.double() / 255
    ref = warp_perspective_reference(source, mirrored.double(), (33, 41), "bilinear", "zeros")
    got = warp(source, mirrored.double(), (33, 41))
    assert ref.abs().sum() > 0
    torch.testing.assert_close(got, ref)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(1, 9), (9, 1), (1, 1), (2, 1)])
@pytest.mark.parametrize("padding_mode", PADDING_MODES)
def test_images_of_one_row_or_column_warp_as_the_reference(dtype, shape, padding_mode):
    # No output pixel has four taps inside such an image; the fast bilinear rows must not read
    # the taps they skip (the last channel's would lie past the end of the image).
    image = torch.rand(2, 3, *shape, dtype=dtype)
    H = torch.tensor([[0.9, 0.1, 0.3], [-0.1, 0.8, 0.2], [0.0, 0.0, 1.0]], dtype=dtype)
    H = H.expand(2, 3, 3).contiguous()
    out = dgp_ops.warp_perspective(image, H, (5, 19), "bilinear", padding_mode)
    if padding_mode != "zeros":  # every coordinate along a size-1 axis clamps to 0
        ref = warp_perspective_reference(image, H, (5, 19), "bilinear", padding_mode)
    else:  # grid_sample's align_corners normalisation degenerates on a size-1 axis: by hand
        img = image.double().numpy()
        Hinv = np.linalg.inv(H[0].double().numpy())
        ref = np.zeros((2, 3, 5, 19))
        for y in range(5):
            for x in range(19):
                q = Hinv @ [x, y, 1.0]
                u, v = q[0] / q[2], q[1] / q[2]
                x0, y0 = int(np.floor(u)), int(np.floor(v))
                for xi, yi in ((x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)):
                    if 0 <= xi < shape[1] and 0 <= yi < shape[0]:
                        wgt = (1 - abs(u - xi)) * (1 - abs(v - yi))
                        ref[:, :, y, x] += wgt * img[:, :, yi, xi]
        ref = torch.from_numpy(ref).to(dtype)
    torch.testing.assert_close(out, ref)
