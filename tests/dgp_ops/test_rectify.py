"""Tests of dgp_ops.rectify: canonical-camera geometry and image rectification."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dgp_ops import rectify as rc


def cameras(B: int, dtype=torch.float64, seed: int = 0):
    """Random intrinsics (with a little skew), box centres and sides for a 480×640 image."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.rand(*s, generator=g, dtype=dtype)  # noqa: E731
    K = torch.zeros(B, 3, 3, dtype=dtype)
    K[:, 0, 0] = 400 + 600 * r(B)
    K[:, 1, 1] = K[:, 0, 0] * (0.95 + 0.1 * r(B))
    K[:, 0, 1] = (r(B) - 0.5) * 2
    K[:, 0, 2] = 300 + 40 * r(B)
    K[:, 1, 2] = 220 + 40 * r(B)
    K[:, 2, 2] = 1
    center = torch.stack([50 + 540 * r(B), 50 + 380 * r(B)], -1)
    side = 60 + 100 * r(B)
    return K, center, side


def project(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    x = X @ K.transpose(1, 2)
    return x[..., :2] / x[..., 2:]


def random_points(B: int, N: int, dtype=torch.float64, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    X = (torch.rand(B, N, 3, generator=g, dtype=dtype) - 0.5) * 0.6
    X[..., 2] += 0.8
    return X


def test_canonical_intrinsics():
    K = rc.canonical_intrinsics(500.0, 224, dtype=torch.float64)
    expected = torch.tensor([[500.0, 0, 112], [0, 500, 112], [0, 0, 1]], dtype=torch.float64)
    assert torch.equal(K, expected)
    assert rc.canonical_intrinsics().dtype == torch.float32
    assert rc.canonical_intrinsics()[0, 0] == 1000.0


def test_crop_intrinsics_maps_box_to_crop():
    K, center, side = cameras(4)
    Kc = rc.crop_intrinsics(K, center, side, 224, scale=1.3)
    A = Kc @ torch.linalg.inv(K)
    # centre -> (S/2, S/2); box corner (scaled by 1.3) -> output corner (0, 0)
    half = 1.3 * side / 2
    pts = torch.stack([center, center - half[:, None]], 1)
    out = rc.transform_points2d(A, pts)
    torch.testing.assert_close(out[:, 0], torch.full_like(center, 112.0))
    torch.testing.assert_close(out[:, 1], torch.zeros_like(center), atol=1e-9, rtol=0)
    # Pure scale + translation: focal lengths scale by S / (1.3 side).
    torch.testing.assert_close(Kc[:, 0, 0], K[:, 0, 0] * 224 / (1.3 * side))


@pytest.mark.parametrize("mode", rc.RECTIFICATION_MODES)
def test_projection_consistency(mode):
    """Projecting R X with the rectified K equals transform_points2d(H, project(X, K))."""
    K, center, side = cameras(5, seed=2)
    rect = rc.rectification(K, center, side, focal=700.0, mode=mode)
    X = random_points(5, 21)
    lhs = project(rc.to_rectified(rect.R, X), rect.K)
    rhs = rc.transform_points2d(rect.H, project(X, K))
    torch.testing.assert_close(lhs, rhs, atol=1e-8, rtol=1e-9)
    I3 = torch.eye(3, dtype=K.dtype).expand(5, 3, 3)
    torch.testing.assert_close(rect.R @ rect.R.transpose(1, 2), I3)
    torch.testing.assert_close(torch.linalg.det(rect.R), torch.ones(5, dtype=K.dtype))


def test_perspective_centres_the_crop_ray():
    K, center, side = cameras(6, seed=3)
    rect = rc.rectification(K, center, side, focal=1000.0, out_size=224)
    c = rc.transform_points2d(rect.H, center[:, None])[:, 0]
    torch.testing.assert_close(c, torch.full_like(c, 112.0))
    ray = torch.linalg.inv(K) @ torch.cat([center, torch.ones(6, 1, dtype=K.dtype)], -1)[..., None]
    z = rect.R @ ray
    torch.testing.assert_close(z[:, :2, 0], torch.zeros(6, 2, dtype=K.dtype), atol=1e-12, rtol=0)
    assert (z[:, 2] > 0).all()
    torch.testing.assert_close(
        rect.K, rc.canonical_intrinsics(1000.0, 224, dtype=K.dtype).expand(6, 3, 3)
    )


def test_perspective_rotation_is_minimal():
    # The rotation axis is perpendicular to the optical axis (no roll about z).
    K, center, side = cameras(4, seed=4)
    R = rc.rectification(K, center, side).R
    axis = torch.stack(
        [R[:, 2, 1] - R[:, 1, 2], R[:, 0, 2] - R[:, 2, 0], R[:, 1, 0] - R[:, 0, 1]], -1
    )
    torch.testing.assert_close(axis[:, 2], torch.zeros(4, dtype=K.dtype), atol=1e-12, rtol=0)
    # A box centred on the principal point needs no rotation.
    Kz = K.clone()
    Kz[:, 0, 1] = 0
    rect = rc.rectification(Kz, Kz[:, :2, 2], side)
    torch.testing.assert_close(rect.R, torch.eye(3, dtype=K.dtype).expand(4, 3, 3))


def test_affine_is_scale_translation_and_centres_principal_point():
    K, center, side = cameras(3, seed=5)
    K[:, 0, 1] = 0
    rect = rc.rectification(K, center, side, focal=500.0, mode="affine")
    H = rect.H
    zeros = torch.zeros(3, dtype=K.dtype)
    for i, j in ((0, 1), (1, 0), (2, 0), (2, 1)):
        torch.testing.assert_close(H[:, i, j], zeros, atol=1e-12, rtol=0)
    pp = rc.transform_points2d(H, K[:, None, :2, 2])[:, 0]
    torch.testing.assert_close(pp, torch.full_like(pp, 112.0))
    # Same as the release's K_c K_crop^-1 applied after the crop.
    Kcrop = rc.crop_intrinsics(K, center, side, 224)
    A = Kcrop @ torch.linalg.inv(K)
    torch.testing.assert_close(rect.K @ torch.linalg.inv(Kcrop) @ A, H)


def test_crop_mode_is_the_crop():
    K, center, side = cameras(3, seed=6)
    rect = rc.rectification(K, center, side, mode="crop", out_size=128, scale=1.5)
    torch.testing.assert_close(rect.K, rc.crop_intrinsics(K, center, side, 128, scale=1.5))
    torch.testing.assert_close(rect.R, torch.eye(3, dtype=K.dtype).expand(3, 3, 3))


def test_focal_per_item():
    K, center, side = cameras(3, seed=7)
    f = torch.tensor([400.0, 500.0, 1000.0], dtype=K.dtype)
    rect = rc.rectification(K, center, side, focal=f)
    torch.testing.assert_close(rect.K[:, 0, 0], f)
    for b in range(3):
        one = rc.rectification(K[b : b + 1], center[b : b + 1], side[b : b + 1], focal=float(f[b]))
        torch.testing.assert_close(one.H[0], rect.H[b])


def test_round_trip_camera_points():
    K, center, side = cameras(4, seed=8)
    R = rc.rectification(K, center, side).R
    X = random_points(4, 10)
    torch.testing.assert_close(rc.from_rectified(R, rc.to_rectified(R, X)), X)


def test_transform_points2d_matches_homogeneous_math():
    H = torch.tensor([[[1.0, 0.1, 3], [0.2, 0.9, -1], [1e-3, 2e-3, 1]]], dtype=torch.float64)
    p = torch.tensor([[[10.0, 20.0], [0.0, 0.0]]], dtype=torch.float64)
    q = torch.cat([p, torch.ones(1, 2, 1, dtype=torch.float64)], -1) @ H[0].T
    torch.testing.assert_close(rc.transform_points2d(H, p), q[..., :2] / q[..., 2:])


@pytest.mark.parametrize("mode", rc.RECTIFICATION_MODES)
def test_rectified_blob_lands_at_transformed_point(mode):
    """Draw a blob at a keypoint, rectify the image; the peak is where H sends the point."""
    h, w = 240, 320
    K = torch.tensor([[[300.0, 0, 160], [0, 300, 120], [0, 0, 1]]], dtype=torch.float64)
    center = torch.tensor([[230.0, 80.0]], dtype=torch.float64)
    side = torch.tensor([100.0], dtype=torch.float64)
    kp = torch.tensor([[[245.3, 71.6]]], dtype=torch.float64)
    ys = torch.arange(h, dtype=torch.float64)[:, None]
    xs = torch.arange(w, dtype=torch.float64)[None, :]
    img = torch.exp(-((xs - kp[0, 0, 0]) ** 2 + (ys - kp[0, 0, 1]) ** 2) / (2 * 3.0**2))
    img = img[None, None]
    # The affine map keeps the principal point at the centre: zoom out to keep the point.
    focal = 100.0 if mode == "affine" else 300.0
    crops, rect = rc.rectify_images(img, K, center, side, focal=focal, out_size=128, mode=mode)
    assert crops.shape == (1, 1, 128, 128)
    target = rc.transform_points2d(rect.H, kp)[0, 0]
    assert 0 < target[0] < 127 and 0 < target[1] < 127
    peak = torch.nonzero(crops[0, 0] == crops[0, 0].max())[0].flip(0).double()
    assert (peak - target).abs().max() <= 1.0
    # Sub-pixel: the intensity-weighted centroid near the peak.
    v, u = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    m = crops[0, 0] * (crops[0, 0] > 0.3 * crops[0, 0].max())
    centroid = torch.stack([(m * u).sum(), (m * v).sum()]) / m.sum()
    assert (centroid.double() - target).abs().max() < 0.3


def test_rectify_images_gradients():
    K, center, side = cameras(1, seed=9)
    img = torch.rand(1, 1, 480, 640, dtype=torch.float64)
    K = K.requires_grad_()
    center = center.requires_grad_()

    def f(k, c):
        return rc.rectify_images(img, k, c, side, focal=400.0, out_size=6)[0]

    assert torch.autograd.gradcheck(f, (K, center), atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), focal=st.floats(100.0, 2000.0))
def test_property_perspective_centre(seed, focal):
    K, center, side = cameras(2, seed=seed)
    rect = rc.rectification(K, center, side, focal=focal, out_size=64)
    c = rc.transform_points2d(rect.H, center[:, None])[:, 0]
    torch.testing.assert_close(c, torch.full_like(c, 32.0), atol=1e-8, rtol=0)
    X = random_points(2, 5, seed=seed)
    lhs = project(rc.to_rectified(rect.R, X), rect.K)
    torch.testing.assert_close(lhs, rc.transform_points2d(rect.H, project(X, K)))


def test_float32_keeps_dtype():
    K, center, side = cameras(2, dtype=torch.float32)
    rect = rc.rectification(K, center, side)
    assert all(t.dtype == torch.float32 for t in rect)
    crops, _ = rc.rectify_images(torch.rand(2, 3, 48, 64), K, center, side, out_size=32)
    assert crops.shape == (2, 3, 32, 32) and crops.dtype == torch.float32


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(K=torch.eye(3, dtype=torch.float64)), ValueError, "K"),
        (dict(K=torch.eye(3).expand(2, 3, 3)), TypeError, "center"),
        (dict(center=torch.zeros(2, 3, dtype=torch.float64)), ValueError, "center"),
        (dict(side=torch.ones(3, dtype=torch.float64)), ValueError, "side"),
        (dict(side=[1.0, 2.0]), TypeError, "side"),
        (dict(mode="rotate"), ValueError, "mode"),
        (dict(out_size=0), ValueError, "out_size"),
        (dict(focal=-1.0), ValueError, "focal"),
        (dict(focal=torch.ones(3, dtype=torch.float64)), ValueError, "focal"),
    ],
)
def test_bad_input(kwargs, exc, match):
    K, center, side = cameras(2)
    args = dict(K=K, center=center, side=side)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        rc.rectification(**args)


def test_bad_input_points_and_images():
    with pytest.raises(ValueError, match="points"):
        rc.transform_points2d(torch.eye(3)[None], torch.zeros(1, 4, 3))
    with pytest.raises(ValueError, match="X"):
        rc.to_rectified(torch.eye(3)[None], torch.zeros(2, 4, 3))
    with pytest.raises(ValueError, match="images"):
        K, center, side = cameras(2, dtype=torch.float32)
        rc.rectify_images(torch.rand(3, 3, 8, 8), K, center, side)
    with pytest.raises(ValueError, match="size"):
        rc.canonical_intrinsics(1000.0, 0)
    with pytest.raises(TypeError, match="points"):
        rc.transform_points2d(torch.eye(3)[None], torch.zeros(1, 4, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="X"):
        rc.from_rectified(torch.eye(3)[None], torch.zeros(1, 4, 3, dtype=torch.float64))
    K, center, side = cameras(2, dtype=torch.float32)
    with pytest.raises(TypeError, match="images"):
        rc.rectify_images(torch.rand(2, 3, 8, 8, dtype=torch.float64), K, center, side)
