"""Perspective warp of a distorted image: ``dgp_ops.warp_perspective_distorted``.

One fused pass samples a lens-distorted image directly into an ideal pinhole view: each output
pixel ``p`` takes the ideal source pixel ``q = H⁻¹ p``, its ray ``K⁻¹ q``, the lens map of
:mod:`dgp_ops.lens` and ``K`` again, and samples the distorted image there. No undistorted
intermediate image and no sampling grid are materialised; gradients flow to the image and to
``H`` (not to ``K`` or the coefficients).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._transforms import WarpPerspectiveDistorted, transforms_active
from ._transforms import _fold as fold
from ._transforms import _unfold as unfold
from ._validation import (
    MIN_REL_DET,
    check_like,
    check_shape,
    check_tensor,
    check_value,
    has_values,
    invertible,
    items,
    require_items,
    spec_applies,
)
from .lens import COEFF_COUNTS, LENS_MODELS, Distortion, check_distortion
from .warp import _check_image_and_h, _check_modes, _check_out_size, _out_size

__all__ = ["warp_perspective_distorted"]

_op = torch.ops.dgp_ops.warp_perspective_distorted
_bwd = torch.ops.dgp_ops.warp_perspective_distorted_backward
_FWD = "warp_perspective_distorted"
_BWD = "warp_perspective_distorted_backward"


def _check_camera(op: str, H, K, dist, model: str, mode: str, padding_mode: str) -> None:
    check_shape(op, "K", K, (H.shape[0], 3, 3), "(B, 3, 3)")
    check_like(op, "K", K, "H", H)
    check_shape(op, "dist", dist, (H.shape[0], None), "(B, D)")
    check_like(op, "dist", dist, "H", H)
    check_value(model in LENS_MODELS,
                lambda: f"{op}: model must be 'pinhole' or 'fisheye', got '{model}'")
    D = dist.shape[1]
    if model == "pinhole":
        check_value(D in COEFF_COUNTS["pinhole"],
                    lambda: f"{op}: dist must have 4, 5 or 8 coefficients (k1, k2, p1, p2[, k3[, "
                    f"k4, k5, k6]]) for model 'pinhole', got {D}")
    else:
        check_value(D == 4, lambda: f"{op}: dist must have 4 coefficients (k1, k2, k3, k4) for "
                    f"model 'fisheye', got {D}")
    _check_modes(op, mode, padding_mode)


def _check_args(op: str, image, H, K, dist, out_h, out_w, model, mode, padding_mode) -> None:
    """The argument spec of ``warp_perspective_distorted`` (``csrc/distort/distort_checks.h``,
    same messages in the same order)."""
    _check_image_and_h(op, image, H, allow_uint8=True)
    _check_out_size(op, out_h, out_w)
    _check_camera(op, H, K, dist, model, mode, padding_mode)


def _check_backward_args(op: str, grad_output, image, H, K, dist, model, mode,
                         padding_mode) -> None:
    _check_image_and_h(op, image, H, allow_uint8=False)
    check_shape(op, "grad_output", grad_output, (image.shape[0], image.shape[1], None, None),
                "(B, C, out_h, out_w)")
    check_like(op, "grad_output", grad_output, "image", image)
    _check_out_size(op, grad_output.shape[2], grad_output.shape[3])
    _check_camera(op, H, K, dist, model, mode, padding_mode)


@torch.library.register_fake("dgp_ops::warp_perspective_distorted")
def _fake(image, H, K, dist, out_h, out_w, model="pinhole", mode="bilinear",
          padding_mode="zeros"):
    _check_args(_FWD, image, H, K, dist, out_h, out_w, model, mode, padding_mode)
    return image.new_empty((image.shape[0], image.shape[1], out_h, out_w))


@torch.library.register_fake("dgp_ops::warp_perspective_distorted_backward")
def _backward_fake(grad_output, image, H, K, dist, model, mode, padding_mode,
                   image_requires_grad, H_requires_grad):
    _check_backward_args(_BWD, grad_output, image, H, K, dist, model, mode, padding_mode)
    grad_image = (torch.empty_like(image, memory_format=torch.contiguous_format)
                  if image_requires_grad else image.new_empty((0,)))
    grad_h = (torch.empty_like(H, memory_format=torch.contiguous_format)
              if H_requires_grad else H.new_empty((0,)))
    return grad_image, grad_h


def _setup_context(ctx, inputs, output):
    image, H, K, dist, _, _, model, mode, padding_mode = inputs
    ctx.save_for_backward(image, H, K, dist)
    ctx.args = (model, mode, padding_mode)
    if not output.is_floating_point():  # uint8 warps have no gradient
        ctx.mark_non_differentiable(output)


def _backward(ctx, grad_output):
    if torch.is_grad_enabled():  # create_graph: the gradient would have to be differentiable
        raise NotImplementedError(f"{_FWD}: differentiating the gradient again (double "
                                  "backward) is not supported")
    image, H, K, dist = ctx.saved_tensors
    need_image, need_h = ctx.needs_input_grad[:2]
    g_image, g_h = _bwd(grad_output.contiguous(), image, H, K, dist, *ctx.args, need_image,
                        need_h)
    return (g_image if need_image else None, g_h if need_h else None, None, None, None, None,
            None, None, None)


torch.library.register_autograd("dgp_ops::warp_perspective_distorted", _backward,
                                setup_context=_setup_context)



@torch.library.register_vmap("dgp_ops::warp_perspective_distorted")
def _vmap(info, in_dims, image, H, K, dist, out_h, out_w, model="pinhole", mode="bilinear",
          padding_mode="zeros"):
    s = info.batch_size
    image, H, K, dist = (fold(x, d, s) for x, d in zip((image, H, K, dist), in_dims[:4],
                                                         strict=True))
    out = _op(image, H, K, dist, out_h, out_w, model, mode, padding_mode)
    return out.reshape(s, out.shape[0] // s, *out.shape[1:]), 0


@torch.library.register_vmap("dgp_ops::warp_perspective_distorted_backward")
def _backward_vmap(info, in_dims, grad_output, image, H, K, dist, model, mode, padding_mode,
                   image_requires_grad, H_requires_grad):
    s = info.batch_size
    args = [fold(x, d, s) for x, d in zip((grad_output, image, H, K, dist), in_dims[:5],
                                            strict=True)]
    grads = _bwd(*args, model, mode, padding_mode, image_requires_grad, H_requires_grad)
    return unfold(grads, s, args[0].shape[0])


def camera_is_usable(K: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """``(B,)`` bool: ``K`` is ``[[fx, s, cx], [0, fy, cy], [0, 0, 1]]`` with finite entries and
    ``fx, fy != 0``, and every coefficient is finite (what the kernels take; no sync)."""
    with torch.no_grad():
        k = K.detach().reshape(K.shape[0], 9)
        form = (k[:, 3] == 0) & (k[:, 6] == 0) & (k[:, 7] == 0) & (k[:, 8] == 1)
        return (torch.isfinite(k).all(1) & form & (k[:, 0] != 0) & (k[:, 4] != 0)
                & torch.isfinite(coeffs.detach()).all(1))


def warp_perspective_distorted(
    image: torch.Tensor,
    H: torch.Tensor,
    K: torch.Tensor,
    dist: Distortion,
    out_size: Sequence[int],
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    *,
    check_values: bool = True,
) -> torch.Tensor:
    """Warp lens-distorted images by homographies of their undistorted views, in one pass.

    Output pixel ``p`` samples the source image at ``K · distort(K⁻¹ H⁻¹ p)``: ``H`` maps the
    source camera's *ideal* (undistorted pinhole) pixels to output pixels, exactly as it would
    for :func:`dgp_ops.warp_perspective` of an undistorted image, and the lens map
    (:mod:`dgp_ops.lens`) finds where the distorted image holds that ray. With
    ``H = K' R K⁻¹`` this is ``cv2.initUndistortRectifyMap(K, dist, R, K', ...)`` followed by
    ``cv2.remap`` (``cv2.fisheye`` likewise), without the map; ``H = I`` undistorts in place.
    A pinhole lens whose coefficients are all zero gives exactly
    :func:`dgp_ops.warp_perspective`'s values and gradients (per item on a GPU; on the CPU for a
    batch without distortion, and to rounding for such an item in a batch with distorted ones).
    A fisheye lens with zero coefficients is the equidistant projection, not an ideal pinhole.

    Args:
        image: ``(B, C, H_in, W_in)`` float32, float64 or uint8 (as in
            :func:`dgp_ops.warp_perspective`, channels-last uint8 read in place).
        H: ``(B, 3, 3)`` or ``(3, 3)``: ideal source pixels → output pixels; the dtype of
            ``image`` (float32 or float64 for a uint8 image).
        K: ``(B, 3, 3)`` or ``(3, 3)``: the source camera's intrinsics ``[[fx, s, cx], [0, fy,
            cy], [0, 0, 1]]`` (pixels), the dtype and device of ``H``.
        dist: :class:`dgp_ops.lens.Distortion` ``(coeffs, model)``; coefficients ``(B, D)`` or
            ``(D,)`` in OpenCV's order, cast to ``H``'s dtype.
        out_size: ``(out_h, out_w)`` pixels.
        mode, padding_mode: as in :func:`dgp_ops.warp_perspective`.
        check_values: reject an ``H`` that is not invertible, a ``K`` not of the form above
            (or not finite, or ``fx``/``fy`` zero), non-finite coefficients (ValueError on the
            CPU, an asynchronous device-side assertion elsewhere; never a synchronisation). Off,
            such an item's output is all zeros.

    Returns:
        ``(B, C, out_h, out_w)`` contiguous, in the dtype of ``image``. uint8 images: source
        coordinates in float32 (1e-4 pixels at 1000 pixels), sampled and rounded as
        :func:`dgp_ops.warp_perspective` samples them (on a GPU, fused multiply-adds may move
        a byte by one). Where the lens
        model has no image (a pole of the rational model, a non-finite coordinate) or the ray is
        behind the camera, the output is 0 with zero gradient. Like OpenCV, the lens map is not
        checked for being one-to-one: past the radius where a polynomial turns over, pixels
        sample the image again.

    Raises:
        TypeError, ValueError: as :func:`dgp_ops.warp_perspective`, for ``K`` and ``dist`` too,
            each naming the argument.

    Example:
        >>> img = torch.rand(1, 3, 48, 64)
        >>> K = torch.tensor([[60.0, 0, 32], [0, 60, 24], [0, 0, 1]])
        >>> lens = Distortion(torch.tensor([-0.3, 0.1, 0.0, 0.0]))
        >>> warp_perspective_distorted(img, torch.eye(3), K, lens, (48, 64)).shape  # undistort
        torch.Size([1, 3, 48, 64])
    """
    check_tensor(_FWD, "image", image)
    check_tensor(_FWD, "H", H)
    check_tensor(_FWD, "K", K)
    B = image.shape[0] if image.dim() >= 1 else 0
    if H.dim() == 2 and H.shape == (3, 3):
        H = H.expand(B, 3, 3)
    if K.dim() == 2 and K.shape == (3, 3):
        K = K.expand(B, 3, 3)
    coeffs = check_distortion(_FWD, dist, B, H)
    out_h, out_w = _out_size(out_size)
    if spec_applies():
        _check_args(_FWD, image, H, K, coeffs, out_h, out_w, dist.model, mode, padding_mode)
    if check_values and has_values(H, K, coeffs):
        require_items(
            invertible(H),
            lambda bad: f"{_FWD}: H is not invertible (NaN/Inf, or |det(H / max|H|)| <= "
            f"{MIN_REL_DET}) in {items(bad)}",
        )
        require_items(
            camera_is_usable(K, coeffs),
            lambda bad: f"{_FWD}: K must be [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with finite "
            f"entries and fx, fy != 0, and dist finite; they are not in {items(bad)}",
        )
    op = WarpPerspectiveDistorted.apply if transforms_active() else _op
    return op(image, H, K, coeffs, out_h, out_w, dist.model, mode, padding_mode)
