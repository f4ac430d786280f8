"""Hand models: MANO loaded without chumpy, and an embedded procedural MANO-layout hand."""

from ..safe_pickle import PickleLoadError, safe_load_pickle
from .default_hand import FREIHAND_TIP_IDS, NUM_VERTS, default_hand_data
from .model import (
    HAND_BONES,
    MANO_TO_OPENPOSE,
    NUM_KEYPOINTS,
    ROOT_INDEX,
    TIP_IDS,
    HandModel,
    load_mano,
    load_mano_arrays,
    validate_mano_arrays,
)
from .pose_prior import JOINT_LIMITS, sample_default_pose

__all__ = [
    "FREIHAND_TIP_IDS",
    "HAND_BONES",
    "JOINT_LIMITS",
    "MANO_TO_OPENPOSE",
    "NUM_KEYPOINTS",
    "NUM_VERTS",
    "ROOT_INDEX",
    "TIP_IDS",
    "HandModel",
    "PickleLoadError",
    "default_hand_data",
    "load_mano",
    "load_mano_arrays",
    "safe_load_pickle",
    "validate_mano_arrays",
    "sample_default_pose",
]
