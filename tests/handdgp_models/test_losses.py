"""Losses: zero at the ground truth, known values, masking of degenerate items."""

import torch

from handdgp_models.hand import load_mano
from handdgp_models.losses import (
    camera_losses,
    consistency_losses,
    edge_length_loss,
    normal_loss,
    project,
    relative_losses,
)


def _gt(b=2):
    hand = load_mano()
    torch.manual_seed(0)
    pose = torch.randn(b, 48) * 0.2
    verts, joints = hand(pose, transl=torch.tensor([[0.0, 0.0, 0.6]]).expand(b, 3))
    K = torch.tensor([[300.0, 0, 64], [0, 300.0, 64], [0, 0, 1]]).expand(b, 3, 3)
    batch = {"verts3d": verts, "joints3d": joints, "joints2d": project(joints, K), "K": K,
             "root": joints[:, 0]}
    out = {"verts_rel": verts - joints[:, :1], "kp2d": batch["joints2d"].clone(),
           "t": joints[:, 0], "valid": torch.ones(b, dtype=torch.bool), "verts_cam": verts,
           "joints_cam": joints}
    return hand, batch, out


def test_zero_at_ground_truth():
    hand, batch, out = _gt()
    for v in relative_losses(out, batch, hand.faces, 128).values():
        assert float(v) < 1e-5
    for v in camera_losses(out, batch, 128).values():
        assert float(v) < 1e-4


def test_known_offsets():
    hand, batch, out = _gt()
    out["kp2d"] = out["kp2d"] + 12.8  # 0.1 S in u and v
    out["t"] = out["t"] + torch.tensor([0.02, 0.0, 0.0])  # 0.1 units of 0.2 m on one axis
    rel = relative_losses(out, batch, hand.faces, 128)
    cam = camera_losses(out, batch, 128)
    torch.testing.assert_close(rel["kp2d"], torch.tensor(0.1))
    torch.testing.assert_close(cam["transl"], torch.tensor(0.1 / 3))


def test_shape_terms_scale_and_rotation():
    hand, batch, _ = _gt()
    v = batch["verts3d"]
    assert float(normal_loss(v * 2.0, v, hand.faces)) < 1e-5  # scaling keeps normals
    torch.testing.assert_close(edge_length_loss(v * 2.0, v, hand.faces),
                               edge_length_loss(v, 0 * v, hand.faces))


def test_degenerate_items_masked():
    _, batch, out = _gt()
    out["valid"] = torch.tensor([True, False])
    out["t"] = out["t"].clone()
    out["t"][1] = float("nan")
    cam = camera_losses(out, batch, 128)
    assert all(torch.isfinite(v) for v in cam.values())
    out["valid"] = torch.tensor([False, False])
    assert all(float(v) == 0 for v in camera_losses(out, batch, 128).values())


def test_consistency_identity_views():
    _, _, out = _gt()
    eye = torch.eye(3).expand(2, 3, 3)
    c = consistency_losses(out, out, eye, eye, 128)
    assert float(c["consist2d"]) < 1e-6 and float(c["consist3d"]) < 1e-6
    shift = eye.clone()
    shift[:, 0, 2] = 12.8
    c = consistency_losses(out, out, shift, eye, 128)
    torch.testing.assert_close(c["consist2d"], torch.tensor(0.05))


def _views(b=2, n=21, seed=0):
    g = torch.Generator().manual_seed(seed)
    k1 = torch.rand(b, n, 2, generator=g) * 128
    rel1 = (torch.rand(b, 50, 3, generator=g) - 0.5) * 0.2
    return {"kp2d": k1, "verts_rel": rel1}


def _rot_z(deg: float) -> torch.Tensor:
    a = torch.tensor(deg).deg2rad()
    return torch.tensor([[a.cos(), -a.sin(), 0.0], [a.sin(), a.cos(), 0.0], [0.0, 0.0, 1.0]])


def test_consistency_2d_is_the_l1_of_the_mapped_keypoints():
    """‖T₁→₂ k₁ − k₂‖₁ / S, averaged: zero when view 2 is view 1 mapped by a homography; a
    known shift of view 2 on top gives (|du| + |dv|) / 2 / S."""
    v1 = _views()
    T = torch.tensor([[1.1, 0.05, -3.0], [-0.02, 0.95, 4.0], [1e-4, -2e-4, 1.0]]).expand(2, 3, 3)
    hom = torch.cat([v1["kp2d"], torch.ones(2, 21, 1)], -1) @ T.transpose(1, 2)
    mapped = hom[..., :2] / hom[..., 2:]
    eye = torch.eye(3).expand(2, 3, 3)
    zero = consistency_losses(v1, {**v1, "kp2d": mapped}, T, eye, 128)
    assert float(zero["consist2d"]) < 1e-6 and float(zero["consist3d"]) == 0
    shifted = {**v1, "kp2d": mapped + torch.tensor([6.4, -12.8])}
    c = consistency_losses(v1, shifted, T, eye, 128)
    torch.testing.assert_close(c["consist2d"], torch.tensor((6.4 + 12.8) / 2 / 128))


def test_consistency_3d_compares_root_relative_meshes_after_the_rotation():
    """|R₁₂ rel₁ − rel₂| in units of 0.2 m: zero when view 2's mesh is view 1's rotated; a
    known 2 cm offset along x gives 0.02 / 3 / 0.2."""
    v1 = _views()
    R = _rot_z(30.0).expand(2, 3, 3)
    eye = torch.eye(3).expand(2, 3, 3)
    rotated = v1["verts_rel"] @ R.transpose(1, 2)
    c = consistency_losses(v1, {**v1, "verts_rel": rotated}, eye, R, 128)
    assert float(c["consist3d"]) < 1e-6 and float(c["consist2d"]) == 0
    moved = {**v1, "verts_rel": rotated + torch.tensor([0.02, 0.0, 0.0])}
    c = consistency_losses(v1, moved, eye, R, 128)
    torch.testing.assert_close(c["consist3d"], torch.tensor(0.02 / 3 / 0.2))
    # without the rotation the meshes disagree
    assert float(consistency_losses(v1, {**v1, "verts_rel": rotated}, eye, eye,
                                    128)["consist3d"]) > 0.05
