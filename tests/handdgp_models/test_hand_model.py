"""The embedded default hand and the HandModel wrapper."""

import numpy as np
import pytest
import torch

from handdgp_models.hand import (
    FREIHAND_TIP_IDS,
    JOINT_LIMITS,
    MANO_TO_OPENPOSE,
    default_hand_data,
    load_mano,
)

FINGERS = {"thumb": [1, 2, 3, 4], "index": [5, 6, 7, 8], "middle": [9, 10, 11, 12],
           "ring": [13, 14, 15, 16], "little": [17, 18, 19, 20]}


@pytest.fixture(scope="module")
def hand():
    return load_mano()


def test_default_hand_layout():
    d = default_hand_data()
    assert d["v_template"].shape == (778, 3)
    assert d["weights"].shape == (778, 16)
    np.testing.assert_allclose(d["weights"].sum(1), 1.0, atol=1e-9)
    assert (d["weights"] >= 0).all()
    assert d["J_regressor"].shape == (16, 778)
    np.testing.assert_allclose(d["J_regressor"].sum(1), 1.0, atol=1e-9)
    assert d["shapedirs"].shape == (778, 3, 10)
    assert d["kintree_table"].shape == (2, 16)
    f = d["f"].astype(np.int64)
    assert f.min() == 0 and f.max() == 777
    assert len(np.unique(f)) == 778  # every vertex is used


def test_default_hand_is_closed_and_outward():
    d = default_hand_data()
    f = d["f"].astype(np.int64)
    v = d["v_template"]
    # Closed: every directed edge appears once and its reverse once.
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    fwd = {tuple(e) for e in edges}
    assert len(fwd) == len(edges)
    assert all((b, a) in fwd for a, b in fwd)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    assert np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6 > 0  # outward winding


def test_default_hand_deterministic():
    a, b = default_hand_data(), default_hand_data()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_keypoints_order_and_tips(hand):
    verts, joints = hand(torch.zeros(1, 48))
    assert verts.shape == (1, 778, 3) and joints.shape == (1, 21, 3)
    j = joints[0]
    torch.testing.assert_close(j[0], torch.zeros(3), atol=1e-6, rtol=0)  # wrist at the origin
    for k, vid in zip((4, 8, 12, 16, 20), FREIHAND_TIP_IDS, strict=True):
        torch.testing.assert_close(j[k], verts[0, vid])
    # Finger chains run away from the wrist, base to tip, in the rest pose.
    for chain in FINGERS.values():
        d = torch.linalg.norm(j[chain], dim=1)
        assert (d[1:] > d[:-1]).all()
        assert (j[chain][:, 0].diff() > 0).all()  # fingers point along +x
    length = torch.linalg.norm(j[12] - j[0]).item()
    assert 0.18 <= length <= 0.19
    # Thumb on the -z side and little finger on the +z side of a right hand.
    assert j[4, 2] < j[8, 2] < j[12, 2] < j[16, 2] < j[20, 2]


def test_keypoint_regressor_matches_rest_joints(hand):
    verts, joints = hand(torch.zeros(1, 48))
    torch.testing.assert_close(hand.keypoint_regressor @ verts[0], joints[0], atol=1e-6, rtol=0)
    assert hand.keypoint_regressor.shape == (21, 778)
    assert hand.template.shape == (778, 3) and hand.faces.dtype == torch.long


def test_mano_to_openpose_is_permutation():
    assert sorted(MANO_TO_OPENPOSE) == list(range(21))


def test_global_rotation_about_wrist_and_translation(hand):
    rot = torch.zeros(1, 48)
    rot[0, 2] = torch.pi / 2  # 90 degrees about z
    t = torch.tensor([[0.1, -0.2, 0.5]])
    v0, j0 = hand(torch.zeros(1, 48))
    v1, j1 = hand(rot, transl=t)
    r = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(v1[0], v0[0] @ r.T + t, atol=1e-6, rtol=0)
    torch.testing.assert_close(j1[0], j0[0] @ r.T + t, atol=1e-6, rtol=0)


def test_shape_scale_direction(hand):
    _, j0 = hand(torch.zeros(1, 48))
    _, j1 = hand(torch.zeros(1, 48), torch.tensor([[1.0]]))
    ratio = torch.linalg.norm(j1[0, 12]) / torch.linalg.norm(j0[0, 12])
    assert abs(ratio.item() - 1.05) < 1e-4


def test_float64_keeps_dtype(hand):
    v, j = hand(torch.zeros(2, 48, dtype=torch.float64), torch.zeros(2, 10, dtype=torch.float64))
    assert v.dtype == torch.float64 and j.dtype == torch.float64


def test_sampled_poses_within_limits_and_curl_towards_palm(hand):
    rng = np.random.default_rng(0)
    poses = hand.sample_pose(256, rng)
    assert poses.shape == (256, 45) and poses.dtype == np.float32
    assert np.isfinite(poses).all()
    max_angle = max(abs(x) for lim in JOINT_LIMITS.values() for rng_ in lim for x in rng_)
    assert np.linalg.norm(poses.reshape(256, 15, 3), axis=2).max() <= max_angle * 1.5
    np.testing.assert_array_equal(poses, hand.sample_pose(256, np.random.default_rng(0)))
    _, j = hand(torch.cat([torch.zeros(256, 3), torch.from_numpy(poses)], 1))
    # Fingers bend towards the palm (-y), never far through the back of the hand.
    assert (j[:, 12, 1] < 0.035).all()
    assert (j[:, 12, 1] < -0.02).float().mean() > 0.3


def test_bad_input(hand):
    with pytest.raises(ValueError, match="pose"):
        hand(torch.zeros(1, 45))
    with pytest.raises(ValueError, match="shape"):
        hand(torch.zeros(1, 48), torch.zeros(1, 11))
    with pytest.raises(ValueError, match="transl"):
        hand(torch.zeros(1, 48), transl=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="tip_ids"):
        load_mano(tip_ids="nope")
    with pytest.raises(ValueError, match="path"):
        load_mano("does-not-exist.pkl")


def test_tip_id_sets():
    h = load_mano(tip_ids="ho3d")
    assert h.tip_ids == (744, 333, 444, 555, 672)
    assert h.keypoint_regressor[8, 333] == 1.0
    h = load_mano(tip_ids=(1, 2, 3, 4, 5))
    assert h.keypoint_regressor[4, 1] == 1.0
