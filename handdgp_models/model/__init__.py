"""HandDGP network: backbone, heads, spiral mesh decoder and the in-network DGP solve."""

from __future__ import annotations

import os

from .mesh_hierarchy import MeshHierarchy, build_hierarchy, load_hierarchy
from .network import (
    DECODERS,
    METHODS,
    UNIT,
    DSConv,
    HandDGP,
    NetworkConfig,
    SpiralConv,
    sample_features,
    upsample,
)

__all__ = ["DECODERS", "METHODS", "UNIT", "DSConv", "HandDGP", "MeshHierarchy", "NetworkConfig",
           "SpiralConv", "build_hierarchy", "build_model", "load_hierarchy", "sample_features",
           "upsample"]


def build_model(config: NetworkConfig | dict, hand=None,
                cache_dir: str | os.PathLike | None = None) -> HandDGP:
    """A :class:`HandDGP` for ``config`` on the mesh of ``hand`` (default: the embedded hand).

    Args:
        config: a :class:`NetworkConfig` or a dict of its fields.
        hand: a template model (:class:`~handdgp_models.template.TemplateModel`: a
            :class:`~handdgp_models.hand.HandModel` or a :class:`~handdgp_models.body.BodyModel`),
            or None for ``load_mano()``.
        cache_dir: where the mesh hierarchy is cached (default ``~/.cache/handdgp``).
    """
    from ..hand import load_mano

    if isinstance(config, dict):
        config = NetworkConfig(**config)
    if not isinstance(config, NetworkConfig):
        raise TypeError(f"config: expected a NetworkConfig or dict, got {type(config).__name__}")
    hand = hand if hand is not None else load_mano()
    hier = load_hierarchy(hand.template, hand.faces, cache_dir=cache_dir)
    return HandDGP(config, hier, hand.keypoint_regressor, hand.faces, hand.root_index)
