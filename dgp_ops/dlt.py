"""Weighted DLT root translation: fused op registration and the public ``solve_translation``."""

from __future__ import annotations

import math

import torch

__all__ = ["solve_translation"]

from . import _C
from ._transforms import SolveTranslation, transforms_active
from ._validation import (
    autocast_inputs,
    check_device,
    check_floating,
    check_like,
    check_shape,
    check_tensor,
    check_value,
    has_values,
    items,
    require_items,
    spec_applies,
)

_fwd = torch.ops.dgp_ops.weighted_dlt_translation
_FWD = "weighted_dlt_translation"
_BWD = "weighted_dlt_translation_backward"

# Doubles the forward op saves per item for its backward: the Cholesky factor of the normal
# matrix (6, diagonal stored inverted) and the solution (3), all zero for an invalid item.
SAVED_PER_ITEM: int = _C.DLT_SAVED_PER_ITEM


def _check_args(op, points3d, points2d, K, weights, damping) -> tuple[int, int]:
    """The argument spec of the DLT ops (``csrc/dlt/dlt_checks.h``, same messages), for the fake
    kernels and :func:`solve_translation`. Returns ``(B, N)``."""
    check_shape(op, "points3d", points3d, (None, None, 3), "(B, N, 3)")
    check_floating(op, "points3d", points3d)
    B, N = points3d.shape[0], points3d.shape[1]
    check_value(N >= 2, lambda: f"{op}: points3d must have N >= 2 points, got N = {N}")
    check_shape(op, "points2d", points2d, (B, N, 2), "(B, N, 2)")
    check_shape(op, "K", K, (B, 3, 3), "(B, 3, 3)")
    check_shape(op, "weights", weights, (B, N), "(B, N)")
    for name, t in (("points2d", points2d), ("K", K), ("weights", weights)):
        check_like(op, name, t, "points3d", points3d)
    check_value(
        math.isfinite(damping) and damping >= 0.0,
        lambda: f"{op}: damping must be finite and >= 0, got {damping:g}",
    )
    return B, N


@torch.library.register_fake("dgp_ops::weighted_dlt_translation")
def _fwd_fake(points3d, points2d, K, weights, damping=0.0):
    B, _ = _check_args(_FWD, points3d, points2d, K, weights, damping)
    t = points3d.new_empty((B, 3))
    valid = points3d.new_empty((B,), dtype=torch.bool)
    saved = points3d.new_empty((B, SAVED_PER_ITEM), dtype=torch.float64)
    return t, valid, saved


@torch.library.register_fake("dgp_ops::weighted_dlt_translation_backward")
def _bwd_fake(grad_t, points3d, points2d, K, weights, saved, damping=0.0):
    B, _ = _check_args(_BWD, points3d, points2d, K, weights, damping)
    check_shape(_BWD, "grad_t", grad_t, (B, 3), "(B, 3)")
    check_like(_BWD, "grad_t", grad_t, "points3d", points3d)
    check_value(
        saved.dtype == torch.float64 and saved.dim() == 2 and saved.shape[0] == B
        and saved.shape[1] == SAVED_PER_ITEM,
        lambda: f"{_BWD}: saved must be the (B, {SAVED_PER_ITEM}) float64 tensor returned by "
        f"weighted_dlt_translation for this batch, got {saved.dtype} {list(saved.shape)}",
    )
    check_device(_BWD, "saved", saved, "points3d", points3d)
    return (
        torch.empty_like(points3d, memory_format=torch.contiguous_format),
        torch.empty_like(points2d, memory_format=torch.contiguous_format),
        torch.empty_like(K, memory_format=torch.contiguous_format),
        torch.empty_like(weights, memory_format=torch.contiguous_format),
    )


# Autograd is registered in C++ (csrc/dlt/dlt_autograd.cpp).


def solve_translation(
    points3d: torch.Tensor,
    points2d: torch.Tensor,
    K: torch.Tensor,
    weights: torch.Tensor | None = None,
    *,
    damping: float = 0.0,
    return_valid: bool = False,
    check_values: bool = True,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Weighted DLT solve for the translation that places root-relative 3D points on 2D points.

    Finds ``t`` minimising ``sum_i w_i * (r1_i^2 + r2_i^2)`` where, with
    ``[u', v', 1]^T = K^-1 [u, v, 1]^T``, the residuals are the two DLT rows
    ``r1 = [-1, 0, u'] . t - (x - z u')`` and ``r2 = [0, -1, v'] . t - (y - z v')``, so that
    ``points3d + t`` projects onto ``points2d``. The 3x3 normal equations are accumulated in
    double precision in one fused pass per item and solved by Cholesky; the backward pass is
    analytic (adjoint of the normal equations).

    Args:
        points3d: ``(B, N, 3)`` root-relative 3D points in metres, ``N >= 2``.
        points2d: ``(B, N, 2)`` pixel coordinates (OpenCV convention).
        K: ``(B, 3, 3)`` or ``(3, 3)`` intrinsics in pixels (skew allowed). Rows 0 and 1 of
            ``K^-1`` define the normalised coordinates, as for ``K`` with last row ``[0, 0, 1]``.
        weights: ``(B, N)`` non-negative per-point weights (the squared DLT row weights; a
            network with sigmoid confidences ``c`` passes ``c**2``). ``None`` means all ones.
        damping: ``>= 0``; adds ``damping * trace(M) / 3 * I`` to the normal matrix ``M``
            (Tikhonov regularisation towards ``t = 0``).
        return_valid: also return the per-item validity flags.
        check_values: reject negative weights (see Raises). Off, a negative weight makes its
            item invalid, as it does inside compiled graphs and CUDA graph captures.

    Returns:
        ``t`` of shape ``(B, 3)`` in metres, same dtype as the inputs; with ``return_valid``
        also ``valid`` of shape ``(B,)`` (bool).

    Degenerate items: an item is valid iff ``K`` is invertible (finite, with
    ``|det(K / max|K|)| > dgp_ops.MIN_REL_DET``), every input of the item is finite, no weight
    is negative, and every Cholesky pivot of the (damped) normal matrix exceeds
    ``1e-10 * trace``. This fails e.g. when all weights are zero or all correspondences lie on
    one camera ray. Invalid items return ``t = 0`` and zero gradients for all their inputs
    (never NaN). The same holds on every device; nothing is read back to the host.

    Raises:
        TypeError: non-tensor inputs, non-floating or mixed dtypes.
        ValueError: wrong shapes, mismatched devices, ``N < 2``, ``damping < 0``; with
            ``check_values``, negative weights (on the CPU at once; on a GPU as an asynchronous
            device-side assertion, so that the call never waits for the device). Values are not
            checked on meta or fake tensors, while ``torch.compile`` traces or while a CUDA
            graph is being captured.
    """
    check_tensor(_FWD, "points3d", points3d)
    check_tensor(_FWD, "points2d", points2d)
    check_tensor(_FWD, "K", K)
    if weights is not None:
        check_tensor(_FWD, "weights", weights)
    if isinstance(damping, bool) or not isinstance(damping, int | float):
        raise TypeError(f"{_FWD}: damping must be a float, got {type(damping).__name__}")
    if points3d.dim() == 3:  # else the spec below names points3d
        B, N = points3d.shape[:2]
        # rank first: comparing a (B, 3, 3) shape with (3, 3) would specialise a traced batch
        if K.dim() == 2 and K.shape == (3, 3):
            K = K.expand(B, 3, 3)
        if weights is None:
            weights = points3d.new_ones((B, N))
        points3d, points2d, K, weights = autocast_inputs(points3d, points2d, K, weights)
    if spec_applies():
        _check_args(_FWD, points3d, points2d, K, weights, float(damping))
    if check_values and has_values(weights):
        require_items(
            ~(weights < 0).any(dim=1),
            lambda bad: f"{_FWD}: weights must be non-negative; they are not in {items(bad)}",
        )
    fwd = SolveTranslation.apply if transforms_active() else _fwd
    t, valid, _ = fwd(points3d, points2d, K, weights, float(damping))
    return (t, valid) if return_valid else t
