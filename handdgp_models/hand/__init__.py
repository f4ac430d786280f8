"""Hand models: MANO loaded without chumpy, and an embedded procedural MANO-layout hand."""

from .default_hand import FREIHAND_TIP_IDS, NUM_VERTS, default_hand_data
from .model import (
    MANO_TO_OPENPOSE,
    TIP_IDS,
    HandModel,
    load_mano,
    load_mano_arrays,
    validate_mano_arrays,
)
from .pose_prior import JOINT_LIMITS, sample_default_pose
from .safe_pickle import PickleLoadError, safe_load_pickle

__all__ = [
    "FREIHAND_TIP_IDS",
    "JOINT_LIMITS",
    "MANO_TO_OPENPOSE",
    "NUM_VERTS",
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
