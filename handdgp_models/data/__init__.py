"""Data: synthetic hands, renderer, dataset loaders and the input pipeline."""

from ..config import PhotometricConfig, PipelineConfig
from .freihand import FREIHAND_VERSIONS, FreiHAND
from .h36m import H36M_SPLITS, Human36M
from .ho3d import HO3D, HO3D_TO_OPENPOSE, OPENPOSE_TO_HO3D
from .loader import collate_samples, make_loader
from .pipeline import InputPipeline
from .synthetic import CAMERA_DOMAINS, CameraDomain, SyntheticHands

__all__ = ["CAMERA_DOMAINS", "CameraDomain", "SyntheticHands"]
__all__ += ["FREIHAND_VERSIONS", "H36M_SPLITS", "HO3D", "HO3D_TO_OPENPOSE", "Human36M",
            "OPENPOSE_TO_HO3D", "FreiHAND",
            "InputPipeline", "PhotometricConfig", "PipelineConfig", "collate_samples",
            "make_loader"]
