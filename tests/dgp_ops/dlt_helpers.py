"""Random well-posed DLT problems shared by the DLT tests."""

from __future__ import annotations

import math

import torch


def random_intrinsics(B: int, gen: torch.Generator, dtype=torch.float64, skew: bool = True):
    f = 300.0 + 1700.0 * torch.rand(B, generator=gen, dtype=dtype)
    aspect = 0.9 + 0.2 * torch.rand(B, generator=gen, dtype=dtype)
    c = 100.0 + 400.0 * torch.rand(B, 2, generator=gen, dtype=dtype)
    s = (
        (torch.rand(B, generator=gen, dtype=dtype) - 0.5) * 20.0
        if skew
        else torch.zeros(B, dtype=dtype)
    )
    K = torch.zeros(B, 3, 3, dtype=dtype)
    K[:, 0, 0], K[:, 0, 1], K[:, 0, 2] = f, s, c[:, 0]
    K[:, 1, 1], K[:, 1, 2], K[:, 2, 2] = f * aspect, c[:, 1], 1.0
    return K


def random_problem(B: int, N: int = 21, seed: int = 0, dtype=torch.float64, skew: bool = True):
    """Hand-sized root-relative points (~10 cm), depth 0.3-1.5 m, focal 300-2000 px.

    Returns ``points3d, points2d, K, weights, t`` with noise-free projections of ``points3d + t``.
    """
    gen = torch.Generator().manual_seed(seed)
    p3 = (torch.rand(B, N, 3, generator=gen, dtype=dtype) - 0.5) * 0.2
    p3[:, 0] = 0.0  # the root
    depth = 0.3 + 1.2 * torch.rand(B, generator=gen, dtype=dtype)
    K = random_intrinsics(B, gen, dtype, skew)
    # Keep the root roughly in view: lateral offset within ~30% of the depth.
    lateral = (torch.rand(B, 2, generator=gen, dtype=dtype) - 0.5) * 0.6 * depth[:, None]
    t = torch.cat([lateral, depth[:, None]], dim=1)
    cam = p3 + t[:, None]
    proj = cam @ K.transpose(1, 2)
    p2 = proj[..., :2] / proj[..., 2:]
    w = 0.1 + torch.rand(B, N, generator=gen, dtype=dtype)
    return p3, p2, K, w, t


def rotation(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula for one axis-angle vector (3,)."""
    theta = float(axis_angle.norm())
    if theta < 1e-12:
        return torch.eye(3, dtype=axis_angle.dtype)
    k = axis_angle / theta
    Kx = torch.tensor(
        [[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]], dtype=axis_angle.dtype
    )
    return (
        torch.eye(3, dtype=axis_angle.dtype)
        + math.sin(theta) * Kx
        + (1 - math.cos(theta)) * Kx @ Kx
    )
