"""Data: synthetic hands, renderer, dataset loaders and the input pipeline."""

from .synthetic import CAMERA_DOMAINS, CameraDomain, SyntheticHands

__all__ = ["CAMERA_DOMAINS", "CameraDomain", "SyntheticHands"]
