"""The interface every articulated template model offers: a hand (MANO) or a body (SMPL).

The network, the losses, the metrics, the DGP call and the input pipeline take the keypoint
count, the root keypoint, the mesh and its faces from such an object, so hands and bodies
share one code path. :class:`~handdgp_models.hand.HandModel` and
:class:`~handdgp_models.body.BodyModel` implement it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

__all__ = ["TemplateModel"]


@runtime_checkable
class TemplateModel(Protocol):
    """A posable template mesh with a fixed keypoint set.

    Attributes:
        template: (V, 3) rest vertices in metres.
        faces: (F, 3) long triangle indices.
        keypoint_regressor: (K, V) maps vertices to the K keypoints.
        root_index: the keypoint that root-relative quantities and DGP's translation refer to.
        num_keypoints: K.
        bones: keypoint index pairs drawn as the skeleton.
        is_default: True for an embedded procedural model (no licensed file).
    """

    template: torch.Tensor
    faces: torch.Tensor
    keypoint_regressor: torch.Tensor
    root_index: int
    bones: tuple[tuple[int, int], ...]
    is_default: bool

    @property
    def num_keypoints(self) -> int: ...

    def forward(self, pose: torch.Tensor, shape: torch.Tensor | None = None,
                transl: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(verts (B, V, 3), keypoints (B, K, 3))`` in metres."""
        ...
