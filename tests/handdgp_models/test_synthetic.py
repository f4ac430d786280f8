"""SyntheticHands: the sample contract, geometric consistency, cameras and determinism."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from handdgp_models.data import CAMERA_DOMAINS, CameraDomain, SyntheticHands
from handdgp_models.data.render import project


def _proj32(points, K):
    p = points.astype(np.float32) @ K.astype(np.float32).T
    return p[:, :2] / p[:, 2:]


def _grow(mask):
    out = mask.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            out |= np.roll(np.roll(mask, dy, 0), dx, 1)
    return out


@pytest.fixture(scope="module")
def train_set():
    return SyntheticHands(10, seed=3, occlusion_prob=0.0)


def test_contract_shapes_and_dtypes(train_set):
    s = train_set[0]
    h, w = s["image"].shape[:2]
    assert (h, w) in CAMERA_DOMAINS["train"].sizes
    expected = {"image": ((h, w, 3), np.uint8), "K": ((3, 3), np.float32),
                "joints3d": ((21, 3), np.float32), "verts3d": ((778, 3), np.float32),
                "joints2d": ((21, 2), np.float32), "mask": ((h, w), np.uint8),
                "box": ((3,), np.float32), "pose": ((48,), np.float32),
                "shape": ((10,), np.float32)}
    assert set(s) == set(expected)
    for key, (shape, dtype) in expected.items():
        assert s[key].shape == shape and s[key].dtype == dtype, key
    assert set(np.unique(s["mask"])) <= {0, 1}


@pytest.mark.parametrize("camera", ["train", "test"])
def test_samples_are_consistent(camera):
    ds = SyntheticHands(6 if camera == "train" else 3, seed=11, camera=camera,
                        occlusion_prob=0.0)
    dom = CAMERA_DOMAINS[camera]
    for i in range(len(ds)):
        s = ds[i]
        h, w = s["mask"].shape
        K = s["K"]
        np.testing.assert_allclose(_proj32(s["joints3d"], K), s["joints2d"], atol=1e-3)
        uv = project(s["verts3d"].astype(np.float64), K.astype(np.float64))
        # Every vertex lies in the image and on (or within a pixel of) the silhouette.
        assert (uv >= 0).all() and (uv[:, 0] <= w - 1).all() and (uv[:, 1] <= h - 1).all()
        r = np.round(uv).astype(int)
        assert _grow(s["mask"].astype(bool))[r[:, 1], r[:, 0]].all()
        # The box contains every keypoint and vertex.
        cu, cv, side = s["box"]
        for pts in (s["joints2d"], uv):
            assert (np.abs(pts - [cu, cv]) <= side / 2 + 1e-3).all()
        # Camera within the domain; hand in front of it at the documented depths.
        assert dom.focal[0] * 0.9 <= K[0, 0] <= dom.focal[1] * 1.01
        assert abs(K[0, 2] - (w - 1) / 2) <= dom.principal_jitter * w + 1e-3
        centre_z = (s["verts3d"][:, 2].min() + s["verts3d"][:, 2].max()) / 2
        assert 0.25 < centre_z < 1.6
        assert (s["verts3d"][:, 2] > 0.05).all()


def test_pose_and_shape_reproduce_the_mesh(train_set):
    s = train_set[1]
    v, j = train_set.hand(torch.from_numpy(s["pose"])[None].double(),
                          torch.from_numpy(s["shape"])[None].double())
    t = s["joints3d"][0] - j[0, 0].numpy()  # the translation is the wrist offset
    np.testing.assert_allclose(v[0].numpy() + t, s["verts3d"], atol=2e-5)
    np.testing.assert_allclose(j[0].numpy() + t, s["joints3d"], atol=2e-5)


def test_deterministic_in_seed_and_index():
    a, b = SyntheticHands(4, seed=5), SyntheticHands(4, seed=5)
    for i in (3, 0):
        sa, sb = a[i], b[i]
        for key in sa:
            np.testing.assert_array_equal(sa[key], sb[key])
    c = SyntheticHands(4, seed=6)
    assert not np.array_equal(a[0]["joints3d"], c[0]["joints3d"])
    assert not np.array_equal(a[0]["joints3d"], a[1]["joints3d"])
    np.testing.assert_array_equal(a[-1]["joints3d"], a[3]["joints3d"])


def test_occluders_only_remove_hand_pixels():
    clean = SyntheticHands(3, seed=2, occlusion_prob=0.0, image_size=(160, 160))
    occl = SyntheticHands(3, seed=2, occlusion_prob=1.0, image_size=(160, 160))
    removed = 0
    for i in range(3):
        a, b = clean[i], occl[i]
        np.testing.assert_array_equal(a["joints3d"], b["joints3d"])
        assert (b["mask"] <= a["mask"]).all()
        removed += int(a["mask"].sum() - b["mask"].sum())
    assert removed > 0


def test_test_domain_differs_and_custom_domain():
    dom = CameraDomain(focal=(500.0, 500.0), sizes=((120, 160),), principal_jitter=0.0)
    s = SyntheticHands(1, camera=dom)[0]
    assert s["image"].shape == (120, 160, 3)
    np.testing.assert_allclose(s["K"][0, 0], 500.0, rtol=1e-5)
    np.testing.assert_allclose(s["K"][:2, 2], [79.5, 59.5], atol=1e-5)
    assert set(CAMERA_DOMAINS["train"].sizes).isdisjoint(CAMERA_DOMAINS["test"].sizes)


def _palm_normal_and_finger_dir(sample: dict) -> tuple[np.ndarray, np.ndarray]:
    """Unit palm normal (towards the palm side) and wrist-to-middle-MCP direction, camera space."""
    j = sample["joints3d"].astype(np.float64)
    wrist, index_mcp, middle_mcp, pinky_mcp = j[0], j[5], j[9], j[17]
    # For a right hand, (index - wrist) x (pinky - wrist) points out of the palm.
    n = np.cross(index_mcp - wrist, pinky_mcp - wrist)
    f = middle_mcp - wrist
    return n / np.linalg.norm(n), f / np.linalg.norm(f)


def test_orientation_spread_bounds_the_global_rotation():
    # Spread 0: palm faces the camera (normal towards -z) and fingers point up the image (-y).
    for i in range(3):
        n, f = _palm_normal_and_finger_dir(SyntheticHands(3, seed=4, orientation_spread=0.0)[i])
        assert n[2] < -0.8 and f[1] < -0.8
    # Spread 60: the angle between the palm normal and -z stays within 60 degrees plus the
    # finger pose's effect on the MCP joints; the uniform default leaves that range.
    spread = SyntheticHands(24, seed=5, orientation_spread=60.0)
    uniform = SyntheticHands(24, seed=5)
    cos_spread = [-_palm_normal_and_finger_dir(spread[i])[0][2] for i in range(24)]
    cos_uniform = [-_palm_normal_and_finger_dir(uniform[i])[0][2] for i in range(24)]
    assert min(cos_spread) > np.cos(np.deg2rad(75.0))
    assert min(cos_uniform) < 0.0
    with pytest.raises(ValueError, match="orientation_spread"):
        SyntheticHands(1, orientation_spread=-1.0)


def test_collates_with_a_fixed_image_size():
    ds = SyntheticHands(4, seed=1, image_size=(96, 128))
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 96, 128, 3) and batch["K"].shape == (4, 3, 3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_samples"):
        SyntheticHands(-1)
    with pytest.raises(ValueError, match="camera"):
        SyntheticHands(1, camera="nope")
    with pytest.raises(TypeError, match="camera"):
        SyntheticHands(1, camera=3)
    with pytest.raises(ValueError, match="image_size"):
        SyntheticHands(1, image_size=(8, 8))
    with pytest.raises(ValueError, match="occlusion_prob"):
        SyntheticHands(1, occlusion_prob=2.0)
    with pytest.raises(IndexError):
        SyntheticHands(2)[2]


def test_disk_cache_round_trip(tmp_path, monkeypatch):
    a = SyntheticHands(2, seed=4, image_size=(96, 96), cache_dir=tmp_path)
    first = a[1]
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    b = SyntheticHands(2, seed=4, image_size=(96, 96), cache_dir=tmp_path)
    monkeypatch.setattr(b, "_generate", lambda i: pytest.fail("cache was not used"))
    again = b[1]
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
        assert first[key].dtype == again[key].dtype
    # Other arguments use other cache entries.
    SyntheticHands(2, seed=5, image_size=(96, 96), cache_dir=tmp_path)[1]
    assert len(list(tmp_path.glob("*.npz"))) == 2


@pytest.mark.parametrize("processes", [1, 2])
def test_render_all_fills_the_cache_with_the_same_samples(tmp_path, processes, monkeypatch):
    ds = SyntheticHands(40, seed=6, image_size=(64, 64), cache_dir=tmp_path)
    ds[3]  # already cached: not rendered again
    assert ds.render_all(processes=processes) == 39
    assert len(list(tmp_path.glob("*.npz"))) == 40
    assert ds.render_all(processes=processes) == 0
    cached = SyntheticHands(40, seed=6, image_size=(64, 64), cache_dir=tmp_path)
    monkeypatch.setattr(cached, "_generate", lambda i: pytest.fail("cache was not used"))
    fresh = SyntheticHands(40, seed=6, image_size=(64, 64))
    for i in (0, 17, 39):
        want, got = fresh[i], cached[i]
        for key in want:
            np.testing.assert_array_equal(want[key], got[key])


def test_render_all_needs_a_cache():
    with pytest.raises(ValueError, match="cache_dir"):
        SyntheticHands(2).render_all()
