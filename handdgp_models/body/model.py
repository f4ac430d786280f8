"""SMPL through smplx without chumpy, and the body every module uses: :class:`BodyModel`."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import smplx
import torch
from smplx.utils import Struct
from torch import nn

from ..safe_pickle import safe_load_pickle
from ..template import skin
from .default_body import DEFAULT_FACE_VERTEX_IDS, default_body_data
from .joints import (
    BODY_BONES,
    H36M_JOINT_NAMES,
    NUM_KEYPOINTS,
    NUM_SMPL_JOINTS,
    ROOT_INDEX,
    SMPL_FACE_VERTEX_IDS,
    SMPL_NUM_VERTS,
)

__all__ = ["SMPL_HINT", "BodyModel", "load_joint_regressor", "load_smpl", "load_smpl_arrays"]

_REQUIRED = ("v_template", "f", "weights", "kintree_table", "J_regressor", "shapedirs",
             "posedirs")
POSE_DIM = 3 * NUM_SMPL_JOINTS
#: What to pass when an SMPL file is needed.
SMPL_HINT = ("pass --smpl SMPL_NEUTRAL.pkl (the gender-neutral SMPL model, smpl.is.tue.mpg.de "
             "or smplify.is.tue.mpg.de, after registering; the .pkl or an .npz of its arrays)")


def load_smpl_arrays(path: str | os.PathLike) -> dict[str, object]:
    """Read an SMPL model file (.pkl through the restricted unpickler, or .npz) into arrays.

    Args:
        path: ``SMPL_NEUTRAL.pkl`` / ``basicModel_neutral_lbs_10_207_0_v1.0.0.pkl`` in the
            official layout, or an ``.npz`` of the same keys (read with ``allow_pickle=False``).

    Raises:
        ValueError: a missing or unreadable file, or one without SMPL's arrays, naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path: SMPL model file {str(path)!r} does not exist; {SMPL_HINT}")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        else:
            data = safe_load_pickle(path)
    except Exception as exc:  # a corrupt file fails in many ways; name it
        raise ValueError(f"path: cannot read SMPL model file {str(path)!r}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"path: {str(path)!r} does not hold a dict of model arrays")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ValueError(f"path: {str(path)!r} lacks SMPL arrays {missing}")
    kintree = np.asarray(data["kintree_table"])
    if kintree.shape != (2, NUM_SMPL_JOINTS):
        raise ValueError(f"path: {str(path)!r} has a kinematic tree of shape {kintree.shape}, "
                         f"SMPL's is (2, {NUM_SMPL_JOINTS})")
    return data


class BodyModel(nn.Module):
    """SMPL-layout body: pose/shape -> vertices and the 29 body keypoints.

    Attributes:
        smpl: the underlying ``smplx.SMPL``.
        faces: (F, 3) long triangle indices.
        template: (V, 3) rest vertices in metres.
        keypoint_regressor: (29, V): SMPL's joint regressor rows for the 24 joints, one-hot
            rows for the face vertices (nose, eyes, ears).
        face_vertex_ids: those five vertex ids.
        root_index: the pelvis (keypoint 0); bones: the 29-keypoint skeleton.
        is_default: True for the embedded procedural body.
    """

    root_index = ROOT_INDEX
    bones = BODY_BONES

    def __init__(self, data: dict[str, object], *, face_vertex_ids: Sequence[int],
                 is_default: bool = False) -> None:
        super().__init__()
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a note on 10 betas
            self.smpl = smplx.SMPL(model_path="", data_struct=Struct(**dict(data)),
                                   create_betas=False, create_global_orient=False,
                                   create_body_pose=False, create_transl=False)
        num_verts = self.smpl.v_template.shape[0]
        ids = tuple(int(i) for i in face_vertex_ids)
        if len(ids) != 5 or any(not 0 <= i < num_verts for i in ids):
            raise ValueError(f"face_vertex_ids: need 5 vertex ids in [0, {num_verts}), got {ids}")
        self.face_vertex_ids = ids
        self.is_default = is_default
        self.register_buffer("faces", self.smpl.faces_tensor.clone())
        self.register_buffer("template", self.smpl.v_template.clone())
        face = torch.zeros(5, num_verts, dtype=self.template.dtype)
        face[torch.arange(5), torch.tensor(ids)] = 1.0
        self.register_buffer("keypoint_regressor", torch.cat([self.smpl.J_regressor, face]))

    @property
    def num_keypoints(self) -> int:
        return NUM_KEYPOINTS

    @property
    def num_betas(self) -> int:
        return int(self.smpl.num_betas)

    def forward(self, pose: torch.Tensor, shape: torch.Tensor | None = None,
                transl: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Pose the body.

        Args:
            pose: (B, 72) axis-angle, global orientation (about the pelvis joint) then SMPL's
                23 body joints.
            shape: (B, k) shape coefficients with k <= 10 (missing ones are zero), or None.
            transl: (B, 3) translation in metres added to everything, or None.

        Returns:
            verts (B, V, 3) and keypoints (B, 29, 3) in metres: SMPL's 24 kinematic joints,
            then the face vertices. Dtype of ``pose``.
        """
        verts, joints = skin(self.smpl, pose, shape, transl, tuple(self.face_vertex_ids))
        return verts, joints



def load_smpl(path: str | os.PathLike | None = None) -> BodyModel:
    """Build a :class:`BodyModel` from an SMPL file, without chumpy, or the embedded body.

    Args:
        path: an SMPL model file (``.pkl`` in the official layout or an ``.npz`` of its
            arrays), or None for the embedded procedural body.

    Returns:
        A float32 :class:`BodyModel`. A file with SMPL's 6,890 vertices takes SMPL's face
        vertex ids (:data:`~handdgp_models.body.joints.SMPL_FACE_VERTEX_IDS`); a file holding
        the embedded body's arrays takes the embedded body's.

    Raises:
        ValueError: a missing, unreadable or malformed file, or a mesh that is neither SMPL's
            nor the embedded body's, naming it.
    """
    if path is None:
        return BodyModel(default_body_data(), face_vertex_ids=DEFAULT_FACE_VERTEX_IDS,
                         is_default=True)
    data = load_smpl_arrays(path)
    verts = np.asarray(data["v_template"], dtype=np.float64)
    if verts.shape == (SMPL_NUM_VERTS, 3):
        ids = SMPL_FACE_VERTEX_IDS
    else:
        default = default_body_data()["v_template"]
        if verts.shape != default.shape or not np.allclose(verts, default, atol=1e-6):
            raise ValueError(f"path: {str(path)!r} has a mesh of {verts.shape[0]} vertices; "
                             f"SMPL's has {SMPL_NUM_VERTS}")
        ids = DEFAULT_FACE_VERTEX_IDS
    return BodyModel(data, face_vertex_ids=ids)


def load_joint_regressor(path: str | os.PathLike, num_verts: int,
                         num_joints: int = len(H36M_JOINT_NAMES)) -> np.ndarray:
    """A joint regressor file (``J_regressor_h36m_correct.npy`` as distributed with
    I2L-MeshNet / Pose2Mesh: Human3.6M's 17 joints from SMPL's vertices).

    Args:
        path: ``.npy`` holding a (num_joints, num_verts) array.
        num_verts: vertices of the body mesh it must apply to.

    Returns:
        (num_joints, num_verts) float64.

    Raises:
        ValueError: a missing or unreadable file, or the wrong shape, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"h36m_regressor: no file {path} (J_regressor_h36m_correct.npy, as "
                         "distributed with I2L-MeshNet / Pose2Mesh)")
    try:
        reg = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"h36m_regressor: cannot read {path}: {exc}") from exc
    if reg.shape != (num_joints, num_verts):
        raise ValueError(f"h36m_regressor: {path} has shape {reg.shape}, expected "
                         f"({num_joints}, {num_verts}) for this body mesh")
    if not np.all(np.isfinite(reg)):
        raise ValueError(f"h36m_regressor: {path} holds NaN or infinite values")
    return reg.astype(np.float64)
