"""The embedded SMPL-layout body, SMPL files through the restricted unpickler, the 29-keypoint
regressor and the H36M joint regressor file."""

import numpy as np
import pytest
import torch
import trimesh

from handdgp_models.body import (
    BODY_BONES,
    DEFAULT_FACE_VERTEX_IDS,
    NUM_KEYPOINTS,
    SMPL_PARENTS,
    load_joint_regressor,
    load_smpl,
)
from handdgp_models.template import TemplateModel
from tests.handdgp_models.h36m_fixtures import write_h36m_regressor, write_smpl


@pytest.fixture(scope="module")
def body():
    return load_smpl()


def test_smpl_joint_tree_and_keypoint_layout(body):
    assert isinstance(body, TemplateModel)
    assert tuple(body.smpl.parents.tolist()) == (-1, *SMPL_PARENTS[1:])
    assert body.keypoint_regressor.shape == (NUM_KEYPOINTS, body.template.shape[0]) == (29, 1052)
    assert body.root_index == 0 and body.num_keypoints == 29
    assert all(0 <= a < 29 and 0 <= b < 29 for a, b in BODY_BONES)
    # the regressor rows are convex combinations; the five face rows are one-hot
    reg = body.keypoint_regressor
    assert torch.allclose(reg.sum(1), torch.ones(29), atol=1e-6) and (reg >= 0).all()
    assert [int(r.argmax()) for r in reg[24:]] == list(DEFAULT_FACE_VERTEX_IDS)


def test_rest_mesh_is_closed_and_face_keypoints_sit_on_the_head(body):
    mesh = trimesh.Trimesh(body.template.numpy(), body.faces.numpy(), process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
    _, kp = body(torch.zeros(1, 72))
    kp = kp[0]
    head, neck = kp[15], kp[12]
    nose, leye, reye, lear, rear = kp[24:]
    assert nose[2] > head[2] + 0.05  # the body faces +z
    assert leye[0] > 0 > reye[0] and lear[0] > leye[0] and rear[0] < reye[0]  # left is +x
    assert min(float(p[1]) for p in kp[24:]) > float(neck[1])


def test_keypoints_follow_the_mesh_and_pose_moves_only_descendants(body):
    rng = np.random.default_rng(0)
    pose = torch.tensor(rng.normal(0, 0.3, (3, 72)))
    shape = torch.tensor(rng.normal(0, 1.0, (3, 10)))
    verts, kp = body.double()(pose, shape)
    # the face keypoints are mesh vertices; at rest the joints are the regressor's
    assert torch.allclose(kp[:, 24:], verts[:, list(DEFAULT_FACE_VERTEX_IDS)])
    v0, k0 = body(torch.zeros(1, 72, dtype=torch.float64), shape[:1])
    assert torch.allclose(k0[0, :24], body.smpl.J_regressor.double() @ v0[0], atol=1e-9)
    # bending the left elbow (joint 18) moves the forearm and hand, nothing else
    bent = torch.zeros(1, 72, dtype=torch.float64)
    bent[0, 3 * 18 + 1] = 1.0
    v1, k1 = body(bent)
    v0, k0 = body(torch.zeros(1, 72, dtype=torch.float64))
    moved = (k1 - k0)[0].norm(dim=-1) > 1e-9
    assert set(torch.nonzero(moved).ravel().tolist()) == {20, 22}
    w = body.smpl.lbs_weights
    still = w[:, [18, 20, 22]].sum(1) == 0
    assert torch.allclose(v1[0, still], v0[0, still])
    body.float()


@pytest.mark.parametrize("suffix", [".pkl", ".npz"])
def test_smpl_file_round_trip(tmp_path, body, suffix):
    path = write_smpl(tmp_path / f"SMPL_NEUTRAL{suffix}")
    loaded = load_smpl(path)
    assert not loaded.is_default and loaded.face_vertex_ids == DEFAULT_FACE_VERTEX_IDS
    pose = torch.randn(2, 72) * 0.2
    assert torch.allclose(loaded(pose)[0], body(pose)[0], atol=1e-6)


def test_smpl_file_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="nope.pkl.*--smpl"):
        load_smpl(tmp_path / "nope.pkl")
    bad = tmp_path / "corrupt.pkl"
    bad.write_bytes(b"\x80\x02not a pickle at all")
    with pytest.raises(ValueError, match="corrupt.pkl"):
        load_smpl(bad)
    other = tmp_path / "other.npz"
    data = dict(np.load(write_smpl(tmp_path / "b.npz")))
    data["v_template"] = data["v_template"] * 1.1
    np.savez(other, **data)
    with pytest.raises(ValueError, match="other.npz.*6890"):
        load_smpl(other)
    del data["weights"]
    np.savez(other, **data)
    with pytest.raises(ValueError, match="lacks SMPL arrays.*weights"):
        load_smpl(other)


def test_h36m_regressor_file(tmp_path, body):
    path = write_h36m_regressor(tmp_path / "J_regressor_h36m_correct.npy", body)
    reg = load_joint_regressor(path, body.template.shape[0])
    assert reg.shape == (17, 1052)
    with pytest.raises(ValueError, match="shape.*6890"):
        load_joint_regressor(path, 6890)
    with pytest.raises(ValueError, match="no file"):
        load_joint_regressor(tmp_path / "missing.npy", 1052)
    (tmp_path / "junk.npy").write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.npy"):
        load_joint_regressor(tmp_path / "junk.npy", 1052)
