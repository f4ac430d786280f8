"""Tests of lens distortion: dgp_ops.lens (points) against OpenCV, and
dgp_ops.warp_perspective_distorted against OpenCV's undistortion maps, the grid_sample
reference, gradcheck, opcheck, torch.compile, vmap, properties and bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dgp_ops
from dgp_ops import rectify as rc
from dgp_ops.lens import Distortion, distort_points, undistort_points
from dgp_ops.reference_warp import warp_perspective_distorted_reference

from .test_warp import random_homographies, smooth_images

warpd = dgp_ops.warp_perspective_distorted
op = torch.ops.dgp_ops.warp_perspective_distorted
op_bwd = torch.ops.dgp_ops.warp_perspective_distorted_backward
F64 = torch.float64

# Realistic lenses: a webcam-like barrel lens with tangential terms, a rational 8-coefficient
# lens, and a fisheye.
PINHOLE4 = [-0.28, 0.09, 0.0012, -0.0008]
PINHOLE5 = [-0.25, 0.07, 0.001, 0.0005, -0.012]
PINHOLE8 = [0.12, -0.05, 0.0007, -0.0011, 0.01, 0.35, -0.02, 0.01]
FISHEYE = [-0.013, 0.021, -0.011, 0.002]
LENSES = [("pinhole", PINHOLE4), ("pinhole", PINHOLE5), ("pinhole", PINHOLE8),
          ("fisheye", FISHEYE)]
LENS_IDS = ["pinhole4", "pinhole5", "pinhole8", "fisheye"]


def camera(h: int, w: int, f: float, dtype=F64) -> torch.Tensor:
    return torch.tensor([[f, 0.0, (w - 1) / 2 + 1.3], [0.0, f * 1.02, (h - 1) / 2 - 0.7],
                         [0.0, 0.0, 1.0]], dtype=dtype)


def grid_points(h: int, w: int, n: int = 9, margin: float = 0.0) -> np.ndarray:
    us, vs = np.meshgrid(np.linspace(margin, w - 1 - margin, n),
                         np.linspace(margin, h - 1 - margin, n))
    return np.stack([us.ravel(), vs.ravel()], -1)


# ---- points ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "coeffs"), LENSES, ids=LENS_IDS)
def test_distort_points_matches_opencv(model, coeffs):
    K = camera(480, 640, 420.0)
    ideal = grid_points(480, 640, margin=-40.0)
    got = distort_points(torch.tensor(ideal)[None], K[None],
                         Distortion(torch.tensor(coeffs, dtype=F64), model))[0].numpy()
    Kn, D = K.numpy(), np.array(coeffs)
    rays = np.concatenate([ideal, np.ones((len(ideal), 1))], 1) @ np.linalg.inv(Kn).T
    if model == "pinhole":
        ref, _ = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), Kn, D)
    else:
        ref = cv2.fisheye.distortPoints(rays[None, :, :2], Kn, D)
    np.testing.assert_allclose(got, ref.reshape(-1, 2), atol=1e-6)


@pytest.mark.parametrize(("model", "coeffs"), LENSES, ids=LENS_IDS)
def test_undistort_points_matches_opencv_and_inverts(model, coeffs):
    K = camera(480, 640, 420.0)
    dist = Distortion(torch.tensor(coeffs, dtype=F64), model)
    distorted = grid_points(480, 640)
    got = undistort_points(torch.tensor(distorted)[None], K[None], dist)
    Kn, D = K.numpy(), np.array(coeffs)
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-15)
    if model == "pinhole":
        ref = cv2.undistortPoints(distorted[:, None], Kn, D, None, None, Kn, crit)
    else:
        ref = cv2.fisheye.undistortPoints(distorted[:, None], Kn, D, None, Kn, criteria=crit)
    # OpenCV stops on its own step-size criterion: agreement to 1e-3 pixels.
    np.testing.assert_allclose(got[0].numpy(), ref.reshape(-1, 2), atol=1e-3)
    # The stated tolerance: distorting again gives the input back to 1e-9 pixels.
    back = distort_points(got, K[None], dist)
    np.testing.assert_allclose(back[0].numpy(), distorted, atol=1e-9)


@pytest.mark.parametrize(("model", "coeffs"), [LENSES[2], LENSES[3]], ids=["pinhole8", "fisheye"])
def test_point_gradients(model, coeffs):
    K = camera(60, 80, 50.0)[None].requires_grad_()
    c = torch.tensor([coeffs], dtype=F64, requires_grad=True)
    pts = torch.tensor(grid_points(60, 80, n=3, margin=5.0))[None].requires_grad_()
    assert torch.autograd.gradcheck(lambda p, k, cc: distort_points(p, k, Distortion(cc, model)),
                                    (pts, K, c))
    assert torch.autograd.gradcheck(
        lambda p, k, cc: undistort_points(p, k, Distortion(cc, model)), (pts, K, c))


# ---- the fused warp against OpenCV -----------------------------------------------------------


def cv_maps(model, coeffs, K, R, newK, size):
    Kn, D = K.numpy(), np.array(coeffs)
    if model == "pinhole":
        return cv2.initUndistortRectifyMap(Kn, D, R, newK, size, cv2.CV_32FC1)
    return cv2.fisheye.initUndistortRectifyMap(Kn, D, R, newK, size, cv2.CV_32FC1)


def interior(mapx, mapy, h, w):
    return (mapx > 1) & (mapx < w - 2) & (mapy > 1) & (mapy < h - 2)


@pytest.mark.parametrize(("model", "coeffs"), LENSES, ids=LENS_IDS)
def test_undistortion_matches_opencv_remap(model, coeffs):
    """H = I: the undistorted image of the same camera, as initUndistortRectifyMap + remap."""
    h, w = 72, 96
    K = camera(h, w, 70.0)
    img = smooth_images(1, 3, h, w, torch.float32, seed=3)
    u8 = (img * 255).round().to(torch.uint8)
    dist = Distortion(torch.tensor(coeffs), model)
    eye = torch.eye(3)
    got = warpd(img, eye, K.float(), dist, (h, w))[0].permute(1, 2, 0).numpy()
    got8 = warpd(u8, eye.double(), K, dist, (h, w))[0].permute(1, 2, 0).numpy()
    mapx, mapy = cv_maps(model, coeffs, K, np.eye(3), K.numpy(), (w, h))
    inside = interior(mapx, mapy, h, w)
    assert inside.mean() > 0.8
    ref = cv2.remap(img[0].permute(1, 2, 0).numpy(), mapx, mapy, cv2.INTER_LINEAR)
    ref8 = cv2.remap(u8[0].permute(1, 2, 0).numpy(), mapx, mapy, cv2.INTER_LINEAR)
    # float: OpenCV's remap quantises coordinates to 1/32 pixel; the images are smooth.
    assert np.abs(got - ref)[inside].max() < 2e-3
    diff8 = np.abs(got8.astype(int) - ref8.astype(int))[inside]
    assert diff8.max() <= 1


@pytest.mark.parametrize(("model", "coeffs"), [LENSES[0], LENSES[3]], ids=["pinhole", "fisheye"])
def test_rectify_images_matches_opencv_rectify_map(model, coeffs):
    """rectify_images of a distorted camera = initUndistortRectifyMap(K, D, R, K_c) + remap."""
    h, w, S = 96, 128, 48
    K = camera(h, w, 90.0)[None]
    img = smooth_images(1, 3, h, w, F64, seed=5)
    dist = Distortion(torch.tensor([coeffs], dtype=F64), model)
    center = torch.tensor([[95.0, 30.0]], dtype=F64)
    crops, rect = rc.rectify_images(img, K, center, torch.tensor([40.0], dtype=F64), focal=60.0,
                                    out_size=S, distortion=dist)
    mapx, mapy = cv_maps(model, coeffs, K[0], rect.R[0].numpy(), rect.K[0].numpy(), (S, S))
    ref = cv2.remap(img[0].permute(1, 2, 0).numpy().astype(np.float32), mapx, mapy,
                    cv2.INTER_LINEAR)
    inside = interior(mapx, mapy, h, w)
    assert inside.mean() > 0.7
    got = crops[0].permute(1, 2, 0).numpy()
    assert np.abs(got - ref)[inside].max() < 2e-3
    # The crop centre (given in the distorted image) lands on the canonical principal point.
    c = torch.tensor([[[S / 2, S / 2]]], dtype=F64)
    ideal = rc.transform_points2d(torch.linalg.inv(rect.H), c)
    torch.testing.assert_close(distort_points(ideal, K, dist), center[:, None], atol=1e-8,
                               rtol=0)


# ---- the fused warp against the reference, gradients, registration ---------------------------


def problem(model, coeffs, B=2, dtype=F64, h=23, w=31):
    img = torch.rand(B, 2, h, w, generator=torch.Generator().manual_seed(1)).to(dtype)
    H = random_homographies(B, h, w, dtype, seed=2, strength=2.0)
    K = camera(h, w, 25.0, dtype).expand(B, 3, 3).clone()
    K[-1, 0, 1] = 0.8  # a skewed camera
    c = torch.tensor(coeffs, dtype=dtype).expand(B, len(coeffs)).clone()
    c[0] *= 1.5
    return img, H, K, Distortion(c, model)


@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize("mode", dgp_ops.warp.MODES)
@pytest.mark.parametrize("padding_mode", dgp_ops.warp.PADDING_MODES)
@pytest.mark.parametrize(("model", "coeffs"), [LENSES[2], LENSES[3]], ids=["pinhole8", "fisheye"])
def test_matches_reference(dtype, mode, padding_mode, model, coeffs):
    img, H, K, dist = problem(model, coeffs, dtype=dtype)
    out = warpd(img, H, K, dist, (19, 27), mode, padding_mode)
    ref = warp_perspective_distorted_reference(img, H, K, dist, (19, 27), mode, padding_mode)
    if mode == "nearest":
        assert (out - ref).abs().gt(1e-6).float().mean() < 0.01
    else:
        torch.testing.assert_close(out, ref, atol=1e-4 if dtype == torch.float32 else 1e-11,
                                   rtol=0)


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize(("model", "coeffs"), [LENSES[1], LENSES[3]], ids=["pinhole5", "fisheye"])
def test_gradcheck(padding_mode, model, coeffs):
    img, H, K, dist = problem(model, coeffs, h=7, w=9)
    img.requires_grad_()
    H.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda i, h: warpd(i, h, K, dist, (6, 8), padding_mode=padding_mode), (img, H))


def test_opcheck_and_compile():
    img, H, K, dist = problem("pinhole", PINHOLE4, h=9, w=11)
    args = (img.requires_grad_(), H.requires_grad_(), K, dist.coeffs, 7, 8, "pinhole",
            "bilinear", "border")
    torch.library.opcheck(op.default, args)
    u8 = (img.detach() * 255).to(torch.uint8)
    torch.library.opcheck(op.default, (u8, H.detach(), K, dist.coeffs, 7, 8, "fisheye",
                                       "bilinear", "zeros"))
    f = lambda i, h: warpd(i, h, K, dist, (7, 8)).square().sum()  # noqa: E731
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(img, H), f(img, H))
    torch.testing.assert_close(torch.autograd.grad(compiled(img, H), (img, H)),
                               torch.autograd.grad(f(img, H), (img, H)))


def test_double_backward_raises_and_func_transforms_work():
    img, H, K, dist = problem("pinhole", PINHOLE4, h=9, w=11)
    h = H.clone().requires_grad_()
    with pytest.raises(NotImplementedError, match="double backward"):
        torch.autograd.grad(warpd(img, h, K, dist, (5, 6)).square().sum(), h, create_graph=True)

    def f(hb, ib):
        return warpd(ib[None], hb[None], K[:1], Distortion(dist.coeffs[:1], "pinhole"),
                     (5, 6)).square().sum()

    per_sample = torch.func.vmap(torch.func.grad(f))(H, img)
    for b in range(2):
        hb = H[b].clone().requires_grad_()
        ref, = torch.autograd.grad(f(hb, img[b]), hb)
        torch.testing.assert_close(per_sample[b], ref)


def test_vmap():
    img, H, K, dist = problem("fisheye", FISHEYE, B=2, h=9, w=11)
    stacked = torch.stack([img, img.flip(0)])
    out = torch.vmap(lambda i: warpd(i, H, K, dist, (5, 6)))(stacked)
    torch.testing.assert_close(out[1], warpd(img.flip(0), H, K, dist, (5, 6)))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), ncoef=st.sampled_from([4, 5, 8]),
       mode=st.sampled_from(dgp_ops.warp.MODES),
       padding_mode=st.sampled_from(dgp_ops.warp.PADDING_MODES),
       u8=st.booleans())
def test_property_zero_coefficients_is_the_plain_warp(seed, ncoef, mode, padding_mode, u8):
    """A pinhole lens with zero coefficients is no lens (a fisheye's is the equidistant one)."""
    img = torch.rand(2, 3, 13, 17, generator=torch.Generator().manual_seed(seed))
    if u8:
        img = (img * 255).to(torch.uint8)
    H = random_homographies(2, 13, 17, torch.float32, seed=seed, strength=2.0)
    K = camera(13, 17, 12.0, torch.float32)
    dist = Distortion(torch.zeros(ncoef), "pinhole")
    out = warpd(img, H, K, dist, (11, 15), mode, padding_mode)
    assert torch.equal(out, dgp_ops.warp_perspective(img, H, (11, 15), mode, padding_mode))
    # and its gradients
    if not u8:
        i1, h1 = img.clone().requires_grad_(), H.clone().requires_grad_()
        i2, h2 = img.clone().requires_grad_(), H.clone().requires_grad_()
        g = torch.rand(2, 3, 11, 15, generator=torch.Generator().manual_seed(seed + 1))
        a = torch.autograd.grad((warpd(i1, h1, K, dist, (11, 15), mode, padding_mode) * g).sum(),
                                (i1, h1))
        b = torch.autograd.grad(
            (dgp_ops.warp_perspective(i2, h2, (11, 15), mode, padding_mode) * g).sum(), (i2, h2))
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_fisheye_with_zero_coefficients_is_the_equidistant_lens():
    img, H, K, _ = problem("fisheye", FISHEYE)
    dist = Distortion(torch.zeros(2, 4, dtype=F64), "fisheye")
    out = warpd(img, H, K, dist, (19, 27))
    ref = warp_perspective_distorted_reference(img, H, K, dist, (19, 27))
    torch.testing.assert_close(out, ref, atol=1e-11, rtol=0)
    assert not torch.allclose(out, dgp_ops.warp_perspective(img, H, (19, 27)), atol=1e-3)


def test_rectification_without_distortion_is_unchanged():
    K = camera(96, 128, 90.0)[None]
    img = smooth_images(1, 3, 96, 128, F64, seed=5)
    center, side = torch.tensor([[95.0, 30.0]], dtype=F64), torch.tensor([40.0], dtype=F64)
    a, ra = rc.rectify_images(img, K, center, side, out_size=32)
    b, rb = rc.rectify_images(img, K, center, side, out_size=32,
                              distortion=Distortion(torch.zeros(5, dtype=F64)))
    assert torch.equal(a, b)
    for x, y in zip(ra, rb, strict=True):
        assert torch.equal(x, y)


def test_invalid_items_are_zero_without_checks():
    img, H, K, dist = problem("pinhole", PINHOLE4, B=3)
    K[1, 2, 2] = 2.0  # not a camera matrix
    dist.coeffs[2, 0] = float("nan")
    out = warpd(img, H, K, dist, (5, 6), check_values=False)
    assert out[0].abs().sum() > 0 and torch.all(out[1:] == 0)
    with pytest.raises(ValueError, match=r"K must be .* in batch items \[1, 2\]"):
        warpd(img, H, K, dist, (5, 6))


def test_raw_op_rejects_malformed_calls_naming_the_argument():
    img, H, K, dist = problem("pinhole", PINHOLE4)
    c = dist.coeffs
    cases = [
        ((img, H, K[:1], c, 4, 4, "pinhole"), ValueError, "K must have shape"),
        ((img, H, K.float(), c, 4, 4, "pinhole"), TypeError, "K has dtype"),
        ((img, H, K, c[:, :3], 4, 4, "pinhole"), ValueError, "dist must have 4, 5 or 8"),
        ((img, H, K, torch.zeros(2, 5, dtype=F64), 4, 4, "fisheye"), ValueError,
         "dist must have 4 coefficients"),
        ((img, H, K, c[0], 4, 4, "pinhole"), ValueError, "dist must have shape"),
        ((img, H, K, c, 4, 4, "kannala"), ValueError, "model must be"),
        ((img, H, K, c, 0, 4, "pinhole"), ValueError, "out_h and out_w must be positive"),
    ]
    for args, exc, match in cases:
        with pytest.raises(exc, match=match):
            op(*args)
        # the fake kernel raises the same
        with torch._subclasses.fake_tensor.FakeTensorMode() as mode:
            fake = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args]
            with pytest.raises(exc, match=match):
                op(*fake)
    g = torch.zeros(2, 2, 4, 4, dtype=F64)
    with pytest.raises(ValueError, match="dist must have shape"):
        op_bwd(g, img, H, K, c[0], "pinhole", "bilinear", "zeros", True, True)


def test_public_function_errors():
    img, H, K, dist = problem("pinhole", PINHOLE4)
    with pytest.raises(TypeError, match="dist must be a dgp_ops.lens.Distortion"):
        warpd(img, H, K, dist.coeffs, (4, 4))
    with pytest.raises(ValueError, match="dist.model must be"):
        warpd(img, H, K, Distortion(dist.coeffs, "equidistant"), (4, 4))
    with pytest.raises(ValueError, match=r"dist.coeffs must be \(B, D\)"):
        warpd(img, H, K, Distortion(torch.zeros(3, 4, dtype=F64)), (4, 4))
