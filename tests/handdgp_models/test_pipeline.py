"""Input pipeline: exact geometry through crop, rectification, jitter, rotation, two views."""

import math

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from handdgp_models.data import FreiHAND, InputPipeline, PipelineConfig, make_loader
from tests.handdgp_models.fixtures import write_freihand

MODES = ["perspective", "affine", "crop"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("fh")
    write_freihand(root, num=4, num_versions=1)
    return FreiHAND(root)


def _pipe(out_size=224, focal=1000.0, train=True, root_index=0, **settings):
    """The pipeline of ``PipelineConfig(**settings)`` with its constructor arguments."""
    return InputPipeline(PipelineConfig(**settings), out_size=out_size, focal=focal, train=train,
                         root_index=root_index)


def _proj(X, K):
    p = X.double() @ K.double().T
    return p[:, :2] / p[:, 2:]


def _hom(T, uv):
    p = torch.cat([uv.double(), torch.ones(len(uv), 1, dtype=torch.float64)], 1) @ T.double().T
    return p[:, :2] / p[:, 2:]


def _check_view(v, sample):
    K, R = v["K"].double(), v["R"].double()
    np.testing.assert_allclose(_proj(v["joints3d"], K), v["joints2d"].double(), atol=1e-3)
    np.testing.assert_allclose(_proj(v["verts3d"], K)[:5],
                               _hom(v["H"], _proj(torch.from_numpy(sample["verts3d"][:5]),
                                                  v["K_orig"])), atol=1e-3)
    np.testing.assert_allclose(v["joints3d_orig"].double() @ R.T, v["joints3d"].double(),
                               atol=1e-6)
    np.testing.assert_allclose(R @ R.T, torch.eye(3, dtype=torch.float64), atol=1e-6)
    assert torch.linalg.det(R).item() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(v["root"], v["joints3d"][0])
    # H maps the original 2D keypoints onto the output keypoints
    np.testing.assert_allclose(_hom(v["H"], torch.from_numpy(sample["joints2d"])),
                               v["joints2d"].double(), atol=1e-3)
    S = v["image"].shape[-1]
    assert v["image"].shape == (3, S, S) and v["image"].dtype == torch.float32
    assert 0.0 <= v["image"].min() and v["image"].max() <= 1.0
    for key in ("K", "R", "joints2d", "joints3d", "verts3d", "root", "K_orig", "H"):
        assert v[key].dtype == torch.float32, key


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("train", [False, True])
def test_geometry_consistent(dataset, mode, train):
    pipe = _pipe(mode=mode, train=train, focal=500.0)
    g = torch.Generator().manual_seed(1)
    for i in range(len(dataset)):
        _check_view(pipe(dataset[i], g), dataset[i])


def test_eval_mode_matches_independent_homography(dataset):
    """Perspective rectification without augmentation equals K_c R K⁻¹ with R built here."""
    S, f = 160, 400.0
    s = dataset[2]
    out = _pipe(mode="perspective", train=False, focal=f,
                                           out_size=S, crop_first=False)(s)
    K = s["K"].astype(np.float64)
    ray = np.linalg.solve(K, [s["box"][0], s["box"][1], 1.0])
    z = ray / np.linalg.norm(ray)
    axis = np.cross(z, [0.0, 0.0, 1.0])
    angle = math.acos(z[2])
    R = cv2.Rodrigues(axis / np.linalg.norm(axis) * angle)[0]
    Kc = np.array([[f, 0, S / 2], [0, f, S / 2], [0, 0, 1]])
    H = Kc @ R @ np.linalg.inv(K)
    np.testing.assert_allclose(out["R"], R, atol=1e-6)
    np.testing.assert_allclose(out["K"], Kc, atol=1e-4)
    np.testing.assert_allclose(out["H"].double().numpy(), H / H[2, 2], rtol=1e-5, atol=1e-5)
    # the box centre lands on the canonical principal point
    centre = _hom(out["H"], torch.from_numpy(s["box"][None, :2]))
    np.testing.assert_allclose(centre, [[S / 2, S / 2]], atol=1e-3)
    # image agrees with OpenCV's warp of the same homography (interior pixels)
    ref = cv2.warpPerspective(s["image"].astype(np.float32) / 255, H, (S, S),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    got = out["image"].permute(1, 2, 0).numpy()
    inside = cv2.erode((ref.sum(-1) > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert inside.sum() > 1000
    np.testing.assert_allclose(got[inside], ref[inside], atol=2e-3)
    # deterministic
    again = _pipe(mode="perspective", train=False, focal=f,
                                             out_size=S, crop_first=False)(s)
    assert torch.equal(again["image"], out["image"])


@pytest.mark.parametrize("mode", ["affine", "perspective"])
def test_crop_first_blacks_out_everything_outside_the_crop(dataset, mode):
    """The release's order: cut the crop square out of the image, then rectify it."""
    s = dataset[1]
    kw = {"mode": mode, "train": False, "focal": 400.0, "out_size": 96, "crop_scale": 1.3}
    full = _pipe(crop_first=False, **kw)(s)
    cut = _pipe(crop_first=True, **kw)(s)
    np.testing.assert_allclose(cut["H"], full["H"])
    np.testing.assert_allclose(cut["K"], full["K"])
    # where each output pixel samples the original image
    S = 96
    uv = np.stack(np.meshgrid(np.arange(S), np.arange(S)), -1).reshape(-1, 2).astype(np.float64)
    src = _hom(torch.linalg.inv(full["H"].double()), torch.from_numpy(uv)).numpy()
    u, v, side = (float(x) for x in s["box"])
    half = 0.65 * side
    d = np.maximum(np.abs(src[:, 0] - u), np.abs(src[:, 1] - v))
    img_cut = cut["image"].permute(1, 2, 0).reshape(-1, 3).numpy()
    img_full = full["image"].permute(1, 2, 0).reshape(-1, 3).numpy()
    outside, inside = d > half + 1.0, d < half - 1.0
    assert outside.sum() > 50 and inside.sum() > 50
    assert np.all(img_cut[outside] == 0)
    np.testing.assert_allclose(img_cut[inside], img_full[inside], atol=1e-5)  # float32 H


def test_crop_jitter_keeps_the_canonical_camera(dataset):
    """Paper: shift/scale move the crop before rectification; K stays K_c."""
    s = dataset[0]
    cfg = dict(mode="affine", focal=300.0, out_size=64, scale_jitter=0.4, shift=0.2)
    zoom = dict(mode="affine", focal=300.0, out_size=64, scale_jitter=0.4, shift=0.2,
                          jitter="zoom")
    focals = {"crop": set(), "zoom": set()}
    for seed in range(6):
        for name, c in (("crop", cfg), ("zoom", zoom)):
            out = _pipe(**c)(s, torch.Generator().manual_seed(seed))
            _check_view(out, s)
            focals[name].add(round(float(out["K"][0, 0]), 3))
    assert focals["crop"] == {300.0}
    assert len(focals["zoom"]) == 6


def test_eval_crop_mode_is_plain_crop(dataset):
    s = dataset[0]
    out = _pipe(mode="crop", train=False, crop_scale=1.3)(s)
    u, v, side = (float(x) for x in s["box"])
    a = 224 / (1.3 * side)
    A = np.array([[a, 0, 112 - a * u], [0, a, 112 - a * v], [0, 0, 1]])
    np.testing.assert_allclose(out["H"], A, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out["R"], np.eye(3), atol=1e-7)
    np.testing.assert_allclose(out["K"], A @ s["K"], rtol=1e-5, atol=1e-3)
    assert out["mask"].dtype == torch.uint8 and out["mask"].shape == (224, 224)
    assert set(out["mask"].unique().tolist()) <= {0, 1}
    ref = cv2.warpPerspective(s["mask"], A, (224, 224), flags=cv2.INTER_NEAREST)
    differ = (out["mask"].numpy() != ref).mean()
    assert ref.sum() > 1000 and differ < 0.01  # only rounding ties at the mask's edges


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), mode=st.sampled_from(MODES),
       rot=st.floats(0, 180), scale=st.floats(0, 0.5), shift=st.floats(0, 0.3))
def test_two_views_property(dataset, seed, mode, rot, scale, shift):
    cfg = dict(mode=mode, two_views=True, rotation_deg=rot, scale_jitter=scale,
                         shift=shift, out_size=64, photometric=None, focal=150.0)
    s = dataset[seed % len(dataset)]
    out = _pipe(**cfg)(s, torch.Generator().manual_seed(seed))
    v1, v2 = out["view1"], out["view2"]
    _check_view(v1, s)
    _check_view(v2, s)
    np.testing.assert_allclose(_hom(out["T12"], v1["joints2d"]), v2["joints2d"].double(),
                               atol=1e-3)
    np.testing.assert_allclose(v1["joints3d"].double() @ out["R12"].double().T,
                               v2["joints3d"].double(), atol=1e-5)


def test_rotation_is_shared_between_views(dataset):
    """Same in-plane angle: in perspective mode with no shift, R12 is the identity."""
    cfg = dict(mode="perspective", jitter="zoom", two_views=True, shift=0.0,
                         rotation_deg=90.0, photometric=None)
    out = _pipe(**cfg)(dataset[1], torch.Generator().manual_seed(3))
    np.testing.assert_allclose(out["R12"], np.eye(3), atol=1e-6)
    assert abs(out["view1"]["R"][0, 1].item()) > 1e-3  # a rotation was applied
    # the scale jitter differs per view: T12 is a zoom about the principal point
    z = out["view2"]["K"][0, 0] / out["view1"]["K"][0, 0]
    assert abs(z - 1) > 1e-4
    np.testing.assert_allclose(out["T12"][:2, :2].numpy(), float(z) * np.eye(2), atol=1e-5)


@pytest.mark.parametrize("crop_first", [False, True])
def test_affine_views_differ_only_in_colour_and_crop_window(dataset, crop_first):
    """The paper's flow (affine map K_c K^-1, the crop moved and scaled before it): the
    two views share their geometry (T12 = R12 = I, the same keypoints); shift and scale move
    only the black crop window, and the photometric changes are drawn per view."""
    from handdgp_models.config import PhotometricConfig

    cfg = dict(mode="affine", jitter="crop", two_views=True, crop_first=crop_first,
               shift=0.1, scale_jitter=0.2, rotation_deg=45.0,
               photometric=PhotometricConfig(blur_prob=0.0))  # blur would grey black pixels
    out = _pipe(**cfg)(dataset[2], torch.Generator().manual_seed(7))
    v1, v2 = out["view1"], out["view2"]
    np.testing.assert_allclose(out["T12"], np.eye(3), atol=1e-6)
    np.testing.assert_allclose(out["R12"], np.eye(3), atol=1e-6)
    np.testing.assert_allclose(v1["joints2d"], v2["joints2d"], atol=1e-4)
    assert not torch.equal(v1["box"], v2["box"])  # the jitter is drawn per view
    assert (v1["image"] - v2["image"]).abs().mean() > 1e-3
    black1, black2 = v1["image"].sum(0) == 0, v2["image"].sum(0) == 0
    assert bool((black1 != black2).any()) == crop_first


def test_rotation_rotates_about_principal_point(dataset):
    """Only rotation: the output keypoints are the eval keypoints rotated about (S/2, S/2)."""
    s = dataset[3]
    base = _pipe(train=False)(s)
    cfg = dict(shift=0.0, scale_jitter=0.0, rotation_deg=60.0, photometric=None)
    rot = _pipe(**cfg)(s, torch.Generator().manual_seed(5))
    Rz = rot["R"].double() @ base["R"].double().T
    theta = math.atan2(Rz[1, 0], Rz[0, 0])
    assert abs(theta) > 1e-3 and abs(Rz[2, 2] - 1) < 1e-6
    c = torch.tensor([112.0, 112.0], dtype=torch.float64)
    rot2d = torch.tensor([[math.cos(theta), -math.sin(theta)],
                          [math.sin(theta), math.cos(theta)]], dtype=torch.float64)
    expected = (base["joints2d"].double() - c) @ rot2d.T + c
    np.testing.assert_allclose(rot["joints2d"].double(), expected, atol=1e-3)


def test_photometric_changes_pixels_not_geometry(dataset):
    s = dataset[0]
    plain = dict(shift=0.0, scale_jitter=0.0, rotation_deg=0.0, photometric=None)
    a = _pipe(**plain)(s, torch.Generator().manual_seed(0))
    b = _pipe(shift=0.0, scale_jitter=0.0, rotation_deg=0.0)(
        s, torch.Generator().manual_seed(0))
    assert not torch.allclose(a["image"], b["image"])
    torch.testing.assert_close(a["joints2d"], b["joints2d"])


def test_synthetic_hands_fit_with_small_focal():
    """Close synthetic hands (0.3-1.2 m) fit a 224 crop at f_c = 300, not at 1000."""
    from handdgp_models.data import SyntheticHands

    ds = SyntheticHands(6, seed=0)
    fits = {300.0: 0, 1000.0: 0}
    for f in fits:
        pipe = _pipe(train=False, focal=f)
        for i in range(len(ds)):
            uv = pipe(ds[i])["joints2d"]
            fits[f] += bool(((uv >= 0) & (uv <= 223)).all())
    assert fits[300.0] == len(ds)
    assert fits[1000.0] < len(ds)


def test_bad_input(dataset):
    with pytest.raises(ValueError, match="mode"):
        PipelineConfig(mode="rotate")
    with pytest.raises(ValueError, match="focal"):
        _pipe(focal=0)
    with pytest.raises(ValueError, match="out_size"):
        _pipe(out_size=0)
    with pytest.raises(TypeError, match="config"):
        InputPipeline({"mode": "crop"}, out_size=224, focal=1000.0)
    s = dict(dataset[0])
    del s["box"]
    with pytest.raises(ValueError, match="box"):
        _pipe()(s)
    s = dict(dataset[0], joints3d=np.zeros((20, 3), np.float32))
    with pytest.raises(ValueError, match="joints3d"):
        _pipe()(s)


def _tensors(tree):
    if isinstance(tree, dict):
        return {k: _tensors(v) for k, v in tree.items() if not isinstance(v, list)}
    return tree


def test_loader_batches_and_is_reproducible(dataset):
    pipe = _pipe(out_size=64, focal=150.0, two_views=True)
    batches = [list(make_loader(dataset, pipe, batch_size=2, shuffle=True, seed=7))
               for _ in range(2)]
    b = batches[0][0]
    assert b["view1"]["image"].shape == (2, 3, 64, 64)
    assert b["T12"].shape == (2, 3, 3) and b["view1"]["joints3d"].shape == (2, 21, 3)
    assert b["view1"]["name"] == ["freihand", "freihand"]
    for x, y in zip(batches[0], batches[1], strict=True):
        torch.testing.assert_close(_tensors(x), _tensors(y))
    other = list(make_loader(dataset, pipe, batch_size=2, shuffle=True, seed=8))
    assert not torch.equal(other[0]["view1"]["image"], b["view1"]["image"])


@pytest.mark.slow
def test_loader_workers_reproducible(dataset):
    pipe = _pipe(out_size=48, focal=100.0)
    runs = []
    for _ in range(2):
        loader = make_loader(dataset, pipe, batch_size=2, num_workers=2, seed=3, drop_last=True)
        runs.append([b["image"] for b in loader])
    # the draws do not depend on the number of workers
    serial = make_loader(dataset, pipe, batch_size=2, num_workers=0, seed=3, drop_last=True)
    runs.append([b["image"] for b in serial])
    assert len(runs[0]) == 2
    for x, y, z in zip(*runs, strict=True):
        assert torch.equal(x, y) and torch.equal(x, z)
    # the two workers draw different augmentations
    assert not torch.equal(runs[0][0][0], runs[0][1][0])


def test_loader_rejects_mixed_keys(dataset):
    from handdgp_models.data import collate_samples

    a = {"x": torch.zeros(2)}
    with pytest.raises(ValueError, match="keys"):
        collate_samples([a, {"y": torch.zeros(2)}])
    with pytest.raises(ValueError, match="batch_size"):
        make_loader(dataset, None, batch_size=0)


def test_ho3d_samples_through_pipeline(tmp_path):
    from handdgp_models.data import HO3D
    from handdgp_models.hand import load_mano
    from tests.handdgp_models.fixtures import write_ho3d

    write_ho3d(tmp_path / "tr", {"SM1": 1})
    s = HO3D(tmp_path / "tr", mano=load_mano(None, tip_ids="ho3d"))[0]
    out = _pipe(focal=500.0)(s, torch.Generator().manual_seed(0))
    _check_view(out, s)

    write_ho3d(tmp_path / "ev", {"SM2": 1}, split="evaluation")
    s = HO3D(tmp_path / "ev", "evaluation")[0]
    pipe = _pipe(focal=500.0, train=False, mode="perspective")
    out = pipe(s)
    assert "joints2d" not in out and "joints3d" not in out
    np.testing.assert_allclose(out["root"], out["R"] @ torch.from_numpy(s["root3d"]), atol=1e-6)
    # the box centre is on the optical axis of the rectified camera
    np.testing.assert_allclose(_hom(out["H"], torch.from_numpy(s["box"][None, :2])),
                               [[112.0, 112.0]], atol=1e-3)
    assert torch.equal(pipe(s)["image"], out["image"])
