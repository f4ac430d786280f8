"""Body models: SMPL loaded without chumpy, and an embedded procedural SMPL-layout body."""

from .default_body import DEFAULT_FACE_VERTEX_IDS, default_body_data
from .joints import (
    BODY_BONES,
    H36M_JOINT_NAMES,
    H36M_ROOT_INDEX,
    NUM_KEYPOINTS,
    NUM_SMPL_JOINTS,
    ROOT_INDEX,
    SMPL_FACE_VERTEX_IDS,
    SMPL_JOINT_NAMES,
    SMPL_NUM_VERTS,
    SMPL_PARENTS,
)
from .model import SMPL_HINT, BodyModel, load_joint_regressor, load_smpl, load_smpl_arrays

__all__ = ["BODY_BONES", "DEFAULT_FACE_VERTEX_IDS", "H36M_JOINT_NAMES", "H36M_ROOT_INDEX",
           "NUM_KEYPOINTS", "NUM_SMPL_JOINTS", "ROOT_INDEX", "SMPL_FACE_VERTEX_IDS",
           "SMPL_HINT", "SMPL_JOINT_NAMES", "SMPL_NUM_VERTS", "SMPL_PARENTS", "BodyModel",
           "default_body_data", "load_joint_regressor", "load_smpl", "load_smpl_arrays"]
