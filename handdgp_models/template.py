"""The interface every articulated template model offers: a hand (MANO) or a body (SMPL).

The network, the losses, the metrics, the DGP call and the input pipeline take the keypoint
count, the root keypoint, the mesh and its faces from such an object, so hands and bodies
share one code path. :class:`~handdgp_models.hand.HandModel` and
:class:`~handdgp_models.body.BodyModel` implement it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

__all__ = ["TemplateModel", "skin"]


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


def _describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"tensor of shape {tuple(x.shape)}"
    return type(x).__name__


def skin(model, pose: torch.Tensor, shape: torch.Tensor | None, transl: torch.Tensor | None,
         extra_vertices: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear blend skinning of an smplx body model (``smplx.MANO``/``smplx.SMPL``), checked.

    Args:
        model: the smplx module (its buffers: template, shape and pose blend shapes, joint
            regressor, parents, skinning weights).
        pose: (B, P) axis-angle, global orientation first (P = 3 × the number of joints).
        shape: (B, k) shape coefficients, k <= the model's count (missing ones are zero), or
            None.
        transl: (B, 3) translation in metres added to everything, or None.
        extra_vertices: vertex ids appended after the kinematic joints (fingertips, face
            points).

    Returns:
        verts (B, V, 3) and joints (B, J + len(extra_vertices), 3) in metres, dtype of ``pose``.
    """
    from smplx.lbs import lbs

    pose_dim = 3 * int(model.parents.shape[0])
    if not isinstance(pose, torch.Tensor) or pose.ndim != 2 or pose.shape[1] != pose_dim:
        raise ValueError(f"pose: expected a (B, {pose_dim}) tensor, got {_describe(pose)}")
    if not pose.is_floating_point():
        raise TypeError(f"pose: expected a floating tensor, got {pose.dtype}")
    b, dtype, device = pose.shape[0], pose.dtype, pose.device
    num_betas = int(model.num_betas)
    betas = torch.zeros(b, num_betas, dtype=dtype, device=device)
    if shape is not None:
        if (not isinstance(shape, torch.Tensor) or shape.ndim != 2 or shape.shape[0] != b
                or shape.shape[1] > num_betas):
            raise ValueError(f"shape: expected a (B, <={num_betas}) tensor with B={b}, "
                             f"got {_describe(shape)}")
        betas[:, : shape.shape[1]] = shape.to(dtype)
    if transl is not None and (not isinstance(transl, torch.Tensor)
                               or tuple(transl.shape) != (b, 3)):
        raise ValueError(f"transl: expected a ({b}, 3) tensor, got {_describe(transl)}")
    verts, joints = lbs(betas, pose, model.v_template.to(dtype), model.shapedirs.to(dtype),
                        model.posedirs.to(dtype), model.J_regressor.to(dtype), model.parents,
                        model.lbs_weights.to(dtype), pose2rot=True)
    joints = torch.cat([joints, verts[:, list(extra_vertices)]], dim=1)
    if transl is not None:
        verts = verts + transl.to(dtype)[:, None]
        joints = joints + transl.to(dtype)[:, None]
    return verts, joints
