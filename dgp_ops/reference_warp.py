"""Slow, obviously-correct PyTorch version of ``warp_perspective``: the test oracle.

Materialises the sampling grid and calls ``torch.nn.functional.grid_sample`` with
``align_corners=True`` (pixel centres at integers), so autograd gives both gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .lens import Distortion, distort_points

__all__ = [
    "warp_perspective_reference",
    "warp_grid_reference",
    "warp_perspective_distorted_reference",
]

# Same threshold as the fused kernel (kMinW in csrc/warp/warp_kernel.h).
_MIN_W = 1e-6


def _source_pixels(H: torch.Tensor, out_size: tuple[int, int]):
    """``H⁻¹ p`` of every output pixel ``p``: ``u, v`` ``(B, P)`` and ``valid`` (``w`` above
    the threshold, see :func:`warp_grid_reference`); invalid pixels have ``u = v = 0``."""
    out_h, out_w = out_size
    scale = H.abs().flatten(1).amax(dim=1)[:, None, None]
    Hn = H / scale
    adj = torch.linalg.det(Hn)[:, None, None] * torch.linalg.inv(Hn)
    N = adj / adj.abs().flatten(1).amax(dim=1)[:, None, None]
    centre = torch.tensor([(out_w - 1) / 2, (out_h - 1) / 2, 1.0], dtype=H.dtype,
                          device=H.device)
    N = torch.where((N[:, 2] @ centre < 0)[:, None, None], -N, N)
    ys, xs = torch.meshgrid(
        torch.arange(out_h, dtype=H.dtype, device=H.device),
        torch.arange(out_w, dtype=H.dtype, device=H.device),
        indexing="ij",
    )
    pix = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).reshape(-1, 3)
    src = pix @ N.transpose(1, 2)  # (B, P, 3)
    w = src[..., 2]
    valid = w > _MIN_W
    safe_w = torch.where(valid, w, torch.ones_like(w))
    return src[..., 0] / safe_w, src[..., 1] / safe_w, valid


def warp_grid_reference(
    H: torch.Tensor, in_size: tuple[int, int], out_size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampling grid of the warp by ``H`` (source → output pixels).

    Args:
        H: ``(B, 3, 3)``.
        in_size: source ``(H_in, W_in)``.
        out_size: ``(out_h, out_w)``.

    Returns:
        ``grid`` ``(B, out_h, out_w, 2)`` in ``grid_sample``'s ``align_corners=True``
        normalised coordinates and ``valid`` ``(B, 1, out_h, out_w)`` (source in front of the
        camera, ``w`` > threshold after scaling ``H⁻¹`` to ``±adj(H) / max|adj(H)|``, the
        sign under which the output's centre has ``w > 0``: ``H`` and ``-H`` are one
        homography, and a mirroring ``H`` is as valid as any other).
    """
    B = H.shape[0]
    out_h, out_w = out_size
    in_h, in_w = in_size
    u, v, valid = _source_pixels(H, out_size)
    gx = 2.0 * u / max(in_w - 1, 1) - 1.0 if in_w > 1 else torch.zeros_like(u)
    gy = 2.0 * v / max(in_h - 1, 1) - 1.0 if in_h > 1 else torch.zeros_like(v)
    grid = torch.stack([gx, gy], dim=-1)
    grid = torch.where(valid[..., None], grid, torch.zeros_like(grid))
    return grid.reshape(B, out_h, out_w, 2), valid.reshape(B, 1, out_h, out_w)


def warp_perspective_reference(
    image: torch.Tensor,
    H: torch.Tensor,
    out_size: tuple[int, int],
    mode: str = "bilinear",
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """Reference ``warp_perspective``: same arguments and semantics, via ``grid_sample``."""
    if H.dim() == 2:
        H = H.expand(image.shape[0], 3, 3)
    grid, valid = warp_grid_reference(H, tuple(image.shape[2:]), tuple(out_size))
    out = F.grid_sample(image, grid, mode=mode, padding_mode=padding_mode, align_corners=True)
    return out * valid.to(out.dtype)


def warp_perspective_distorted_reference(
    image: torch.Tensor,
    H: torch.Tensor,
    K: torch.Tensor,
    dist: Distortion,
    out_size: tuple[int, int],
    mode: str = "bilinear",
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """Reference ``warp_perspective_distorted``: the ideal source pixels of
    :func:`warp_grid_reference`, through :func:`dgp_ops.lens.distort_points`, sampled by
    ``grid_sample``. ``H`` and ``K`` are ``(B, 3, 3)``."""
    B = image.shape[0]
    in_h, in_w = image.shape[2:]
    u, v, valid = _source_pixels(H, tuple(out_size))
    src = distort_points(torch.stack([u, v], -1), K, dist)
    valid = valid & torch.isfinite(src).all(-1)
    src = torch.where(valid[..., None], src, torch.zeros_like(src))
    gx = 2.0 * src[..., 0] / max(in_w - 1, 1) - 1.0 if in_w > 1 else torch.zeros_like(u)
    gy = 2.0 * src[..., 1] / max(in_h - 1, 1) - 1.0 if in_h > 1 else torch.zeros_like(v)
    grid = torch.stack([gx, gy], dim=-1).reshape(B, *out_size, 2)
    out = F.grid_sample(image, grid, mode=mode, padding_mode=padding_mode, align_corners=True)
    return out * valid.reshape(B, 1, *out_size).to(out.dtype)
