"""HandDGP training losses (supplement weights), relative space and camera space.

3D distances are measured in units of 0.2 m (the decoder's unit) and pixel distances are
divided by the input size ``S``, so every term is O(0.1) at the start of training.
"""

from __future__ import annotations

from dataclasses import asdict

import torch

from .config import LossWeights
from .model.network import UNIT

__all__ = ["LossWeights", "camera_losses", "consistency_losses", "edge_length_loss",
           "normal_loss", "project", "relative_losses", "total_loss"]


def project(points: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Pinhole projection of (B, N, 3) camera points with (B, 3, 3) intrinsics → (B, N, 2).

    Depth is clamped at 5 cm so a bad early prediction cannot blow up the loss.
    """
    p = points @ K.transpose(1, 2)
    return p[..., :2] / p[..., 2:].clamp(min=5e-2)


def _face_vectors(verts: torch.Tensor, faces: torch.Tensor):
    a, b, c = (verts[:, faces[:, i]] for i in range(3))
    return a, b, c


def normal_loss(pred: torch.Tensor, gt: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Mean ``|cos|`` between predicted edges and ground-truth face normals. (B,V,3) each."""
    a, b, c = _face_vectors(gt, faces)
    n = torch.nn.functional.normalize(torch.cross(b - a, c - a, dim=-1), dim=-1)
    pa, pb, pc = _face_vectors(pred, faces)
    loss = 0.0
    for e in (pb - pa, pc - pb, pa - pc):
        loss = loss + (torch.nn.functional.normalize(e, dim=-1) * n).sum(-1).abs().mean()
    return loss / 3


def edge_length_loss(pred: torch.Tensor, gt: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of triangle edge lengths (units of the inputs)."""
    pa, pb, pc = _face_vectors(pred, faces)
    ga, gb, gc = _face_vectors(gt, faces)
    loss = 0.0
    for p, g in (((pb - pa), (gb - ga)), ((pc - pb), (gc - gb)), ((pa - pc), (ga - gc))):
        loss = loss + (p.norm(dim=-1) - g.norm(dim=-1)).abs().mean()
    return loss / 3


def relative_losses(out: dict, batch: dict, faces: torch.Tensor, size: int) -> dict:
    """Root-relative vertex L1, 2D keypoint L1, normal and edge terms (unweighted).

    The ground truth is relative to ``batch["root"]`` (the template's root keypoint, from the
    input pipeline), the prediction to the network's root keypoint.
    """
    gt_rel = (batch["verts3d"] - batch["root"][:, None]) / UNIT
    pred_rel = out["verts_rel"] / UNIT
    return {
        "verts": (pred_rel - gt_rel).abs().mean(),
        "kp2d": (out["kp2d"] - batch["joints2d"]).abs().mean() / size,
        "normal": normal_loss(pred_rel, gt_rel, faces),
        "edge": edge_length_loss(pred_rel, gt_rel, faces),
    }


def consistency_losses(out1: dict, out2: dict, T12: torch.Tensor, R12: torch.Tensor,
                       size: int) -> dict:
    """Two-view terms: ``|T12 k1 - k2|`` in pixels / S and ``|R12 rel1 - rel2|`` in 0.2 m."""
    k1 = out1["kp2d"]
    h = k1 @ T12[:, :2, :2].transpose(1, 2) + T12[:, None, :2, 2]
    w = (k1 @ T12[:, 2:, :2].transpose(1, 2) + T12[:, None, 2:, 2]).clamp(min=1e-6)
    k12 = h / w
    rel12 = out1["verts_rel"] @ R12.transpose(1, 2)
    return {"consist2d": (k12 - out2["kp2d"]).abs().mean() / size,
            "consist3d": ((rel12 - out2["verts_rel"]) / UNIT).abs().mean()}


def camera_losses(out: dict, batch: dict, size: int) -> dict:
    """Translation, projected-vertex and projected-joint terms over valid items only."""
    valid = out["valid"]
    if not bool(valid.any()):
        zero = torch.nan_to_num(out["t"]).sum() * 0.0  # keeps the graph, never NaN
        return {"transl": zero, "proj_verts": zero, "proj_joints": zero}
    K = batch["K"][valid]
    t = out["t"][valid]
    verts = out["verts_cam"][valid]
    gt_verts = batch["verts3d"][valid]
    return {
        "transl": ((t - batch["root"][valid]) / UNIT).abs().mean(),
        "proj_verts": (project(verts, K) - project(gt_verts, K)).abs().mean() / size,
        "proj_joints": (project(out["joints_cam"][valid], K)
                        - out["kp2d"][valid]).abs().mean() / size,
    }


def total_loss(terms: dict, weights: LossWeights) -> torch.Tensor:
    """Weighted sum of the present terms."""
    w = asdict(weights)
    return sum(w[k] * v for k, v in terms.items())
