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


def build_model(config: NetworkConfig | dict, template=None,
                cache_dir: str | os.PathLike | None = None) -> HandDGP:
    """A :class:`HandDGP` for ``config`` on the mesh of ``template`` (default: the embedded
    hand).

    Args:
        config: a :class:`NetworkConfig` or a dict of its fields.
        template: a template model (:class:`~handdgp_models.template.TemplateModel`: a
            :class:`~handdgp_models.hand.HandModel` or a :class:`~handdgp_models.body.BodyModel`),
            or None for ``load_mano()``.
        cache_dir: where the mesh hierarchy is cached (default: the cache policy's
            ``hierarchy`` folder, :mod:`handdgp_models.cache`).
    """
    from ..hand import load_mano

    if isinstance(config, dict):
        config = NetworkConfig(**config)
    if not isinstance(config, NetworkConfig):
        raise TypeError(f"config: expected a NetworkConfig or dict, got {type(config).__name__}")
    template = template if template is not None else load_mano()
    hier = load_hierarchy(template.template, template.faces, cache_dir=cache_dir)
    return HandDGP(config, hier, template.keypoint_regressor, template.faces,
                   template.root_index)
