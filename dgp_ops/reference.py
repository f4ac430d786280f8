"""Slow, plain-PyTorch reference implementations used by tests and benchmarks."""

from __future__ import annotations

import torch

__all__ = ["dlt_translation_reference", "dlt_translation_handdgp_style"]


def _dlt_rows(
    points3d: torch.Tensor, points2d: torch.Tensor, Kinv: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Explicit DLT system ``A (B, 2N, 3)``, ``b (B, 2N)``, rows interleaved per point."""
    B, N = points3d.shape[:2]
    if Kinv.dim() == 2:
        Kinv = Kinv.expand(B, 3, 3)
    uv1 = torch.cat([points2d, torch.ones_like(points2d[..., :1])], dim=-1)
    norm = uv1 @ Kinv.transpose(-1, -2)  # (B, N, 3): K^-1 [u, v, 1]
    up, vp = norm[..., 0], norm[..., 1]
    x, y, z = points3d.unbind(-1)
    zero, one = torch.zeros_like(up), torch.ones_like(up)
    a1 = torch.stack([-one, zero, up], dim=-1)
    a2 = torch.stack([zero, -one, vp], dim=-1)
    A = torch.stack([a1, a2], dim=2).reshape(B, 2 * N, 3)
    b = torch.stack([x - z * up, y - z * vp], dim=2).reshape(B, 2 * N)
    return A, b


def dlt_translation_reference(
    points3d: torch.Tensor,
    points2d: torch.Tensor,
    K: torch.Tensor,
    weights: torch.Tensor | None = None,
    *,
    damping: float = 0.0,
) -> torch.Tensor:
    """Weighted DLT translation by explicit normal equations, in the input dtype.

    Same problem and shapes as :func:`dgp_ops.solve_translation` (``t``: ``(B, 3)``, metres),
    but builds ``A (B, 2N, 3)`` and ``b (B, 2N)`` explicitly and solves
    ``(A^T W A + damping * trace / 3 * I) t = A^T W b`` with ``torch.linalg.solve``. Differentiable
    by autograd; no handling of degenerate items.
    """
    B, N = points3d.shape[:2]
    if weights is None:
        weights = points3d.new_ones((B, N))
    A, b = _dlt_rows(points3d, points2d, torch.linalg.inv(K))
    w2 = weights.repeat_interleave(2, dim=1)  # (B, 2N)
    Aw = A * w2.unsqueeze(-1)
    M = A.transpose(1, 2) @ Aw
    r = (Aw * b.unsqueeze(-1)).sum(1)
    trace = M.diagonal(dim1=-2, dim2=-1).sum(-1)
    eye = torch.eye(3, dtype=M.dtype, device=M.device)
    M = M + (damping * trace / 3.0)[:, None, None] * eye
    return torch.linalg.solve(M, r)


def dlt_translation_handdgp_style(
    points3d: torch.Tensor,
    points2d: torch.Tensor,
    K: torch.Tensor,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """The composite most users would write: ``pinv(K)``, a ``(B, 2N, 2N)`` diagonal weight
    matrix of ``sqrt(weights)`` built with ``diag_embed``, and ``torch.linalg.lstsq``.

    Shapes as :func:`dlt_translation_reference`; returns ``t (B, 3)``.
    """
    B, N = points3d.shape[:2]
    if weights is None:
        weights = points3d.new_ones((B, N))
    A, b = _dlt_rows(points3d, points2d, torch.linalg.pinv(K))
    W = torch.diag_embed(weights.sqrt().repeat_interleave(2, dim=1))  # (B, 2N, 2N)
    return torch.linalg.lstsq(W @ A, (W @ b.unsqueeze(-1))).solution.squeeze(-1)
