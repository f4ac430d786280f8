"""Fused, differentiable perspective warp: ``dgp_ops.warp_perspective``.

Each output pixel computes its source location from ``H⁻¹`` on the fly and samples the
image there; no sampling grid is materialised, forward or backward. Gradients flow to the
image and to ``H``.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import torch

__all__ = ["warp_perspective", "MODES", "PADDING_MODES"]

from . import _C
from ._transforms import WarpPerspective, transforms_active
from ._validation import (
    FLOAT_DTYPES,
    MAX_INT32_ELEMENTS,
    MIN_REL_DET,
    autocast_inputs,
    check_device,
    check_floating,
    check_like,
    check_shape,
    check_tensor,
    check_type,
    check_value,
    has_values,
    invertible,
    items,
    require_items,
    spec_applies,
)

MODES: tuple[str, ...] = _C.WARP_MODES
PADDING_MODES: tuple[str, ...] = _C.WARP_PADDING_MODES

_op = torch.ops.dgp_ops.warp_perspective
_FWD = "warp_perspective"
_BWD = "warp_perspective_backward"


def _check_image_and_h(op: str, image, H, allow_uint8: bool) -> None:
    check_shape(op, "image", image, (None, None, None, None), "(B, C, H, W)")
    is_u8 = image.dtype == torch.uint8
    if allow_uint8:
        check_type(
            is_u8 or image.dtype in FLOAT_DTYPES,
            lambda: f"{op}: image must be uint8, float16, bfloat16, float32 or float64, got "
            f"{image.dtype}",
        )
    else:
        check_floating(op, "image", image)
    check_shape(op, "H", H, (image.shape[0], 3, 3), "(B, 3, 3)")
    check_floating(op, "H", H)
    if is_u8:
        check_device(op, "H", H, "image", image)
    else:
        check_like(op, "H", H, "image", image)
    check_value(
        image.shape[2] > 0 and image.shape[3] > 0,
        lambda: f"{op}: image height and width must be positive, got {list(image.shape)}",
    )
    C, h, w = image.shape[1], image.shape[2], image.shape[3]
    # One item is addressed with int32 offsets (plus a one-pixel margin of the bilinear taps).
    check_value(
        C * h * w < MAX_INT32_ELEMENTS - 2 * (w + 1) * C,
        lambda: f"{op}: one image must have fewer than 2^31 elements, got {list(image.shape)}",
    )


def _check_out_size(op: str, out_h: int, out_w: int) -> None:
    check_value(
        out_h > 0 and out_w > 0,
        lambda: f"{op}: out_h and out_w must be positive, got ({out_h}, {out_w})",
    )
    check_value(
        out_h * out_w < MAX_INT32_ELEMENTS,
        lambda: f"{op}: out_h * out_w must be below 2^31, got ({out_h}, {out_w})",
    )


def _check_modes(op: str, mode: str, padding_mode: str) -> None:
    check_value(
        mode in MODES, lambda: f"{op}: mode must be 'bilinear' or 'nearest', got '{mode}'"
    )
    check_value(
        padding_mode in PADDING_MODES,
        lambda: f"{op}: padding_mode must be 'zeros', 'border' or 'reflection', got "
        f"'{padding_mode}'",
    )


def _check_args(op: str, image, H, out_h: int, out_w: int, mode: str, padding_mode: str) -> None:
    """The argument spec of ``warp_perspective`` (``csrc/warp/warp_checks.h``, same messages
    in the same order), for its fake kernel and the public function."""
    _check_image_and_h(op, image, H, allow_uint8=True)
    _check_out_size(op, out_h, out_w)
    _check_modes(op, mode, padding_mode)


def _check_backward_args(op: str, grad_output, image, H, mode: str, padding_mode: str) -> None:
    """The argument spec of ``warp_perspective_backward`` (``csrc/warp/warp_checks.h``)."""
    _check_image_and_h(op, image, H, allow_uint8=False)
    check_shape(
        op, "grad_output", grad_output, (image.shape[0], image.shape[1], None, None),
        "(B, C, out_h, out_w)",
    )
    check_like(op, "grad_output", grad_output, "image", image)
    _check_out_size(op, grad_output.shape[2], grad_output.shape[3])
    _check_modes(op, mode, padding_mode)


@torch.library.register_fake("dgp_ops::warp_perspective")
def _warp_fake(image, H, out_h, out_w, mode="bilinear", padding_mode="zeros"):
    _check_args(_FWD, image, H, out_h, out_w, mode, padding_mode)
    shape = (image.shape[0], image.shape[1], out_h, out_w)
    return image.new_empty(shape)


@torch.library.register_fake("dgp_ops::warp_perspective_backward")
def _warp_backward_fake(
    grad_output, image, H, mode, padding_mode, image_requires_grad, H_requires_grad
):
    _check_backward_args(_BWD, grad_output, image, H, mode, padding_mode)
    # A gradient that is not requested is returned as an empty tensor.
    grad_image = (
        torch.empty_like(image, memory_format=torch.contiguous_format)
        if image_requires_grad
        else image.new_empty((0,))
    )
    grad_h = (
        torch.empty_like(H, memory_format=torch.contiguous_format)
        if H_requires_grad
        else H.new_empty((0,))
    )
    return grad_image, grad_h


# Autograd is registered in C++ (csrc/warp/warp_autograd.cpp).


def _out_size(out_size: Sequence[int]) -> tuple[int, int]:
    """``(out_h, out_w)`` as two Python ints (the op's spec checks their values)."""
    if not (isinstance(out_size, torch.Size | tuple | list) and len(out_size) == 2):
        raise ValueError(f"{_FWD}: out_size must be (out_h, out_w), got {out_size!r}")
    try:
        if any(isinstance(s, bool) for s in out_size):
            raise TypeError
        out_h, out_w = (operator.index(s) for s in out_size)
    except TypeError:
        raise ValueError(
            f"{_FWD}: out_size must be two ints (out_h, out_w), got {out_size!r}"
        ) from None
    return out_h, out_w


def warp_perspective(
    image: torch.Tensor,
    H: torch.Tensor,
    out_size: Sequence[int],
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    *,
    check_values: bool = True,
) -> torch.Tensor:
    """Warp images by homographies, differentiably in both the image and ``H``.

    Same geometry as ``cv2.warpPerspective(src, H, (out_w, out_h))`` (without
    ``WARP_INVERSE_MAP``): output pixel ``p`` samples the source at ``H⁻¹ p``. Pixel centres
    are at integer coordinates; ``(u, v)`` = (column, row).

    Args:
        image: ``(B, C, H_in, W_in)`` float32, float64 or uint8. A uint8 image may be in
            channels-last memory (e.g. ``torch.from_numpy(hwc[None]).permute(0, 3, 1, 2)``
            of decoded ``(B, H, W, C)`` images) and is then read in place, without a copy;
            float images in other layouts are made contiguous first.
        H: ``(B, 3, 3)`` or ``(3, 3)`` (shared by the batch), same dtype and device as
            ``image`` (float32 or float64 for a uint8 image); maps source pixel coordinates to
            output pixel coordinates. Only the ratio of its entries matters (``H`` and ``-H``
            warp alike).
        out_size: ``(out_h, out_w)`` in pixels, both positive.
        mode: ``"bilinear"`` or ``"nearest"`` (round half to even, like ``grid_sample``).
            ``nearest`` gives no gradient to ``H`` (piecewise constant).
        padding_mode: value of samples outside the image: ``"zeros"``; ``"border"`` (replicate
            the edge pixel); ``"reflection"`` (mirror about the edge pixel centres, i.e.
            ``grid_sample(..., align_corners=True)``'s reflection and OpenCV's
            ``BORDER_REFLECT_101``).
        check_values: reject an ``H`` that is not invertible (see Raises). Off (the data
            pipeline's setting, which builds ``H`` from checked inputs), such an item's output
            is all zeros, as inside compiled graphs and CUDA graph captures.

    Returns:
        ``(B, C, out_h, out_w)`` contiguous, with the dtype of ``image``. uint8 images are
        warped as ``cv2.warpPerspective`` (OpenCV 5) does: bilinear weights from the fraction
        of the source coordinate (float32 where all four taps lie inside the image, double
        elsewhere), the blend in float, rounded to nearest and saturated; every device gives
        the same bytes; they get no gradient. Output pixels whose source is at infinity or
        behind the camera (homogeneous ``w ≤ 0`` once ``H`` is scaled so that
        ``H⁻¹ ∝ adj(H)``) are 0 in every padding mode and get zero gradient.

    Raises:
        TypeError: non-tensor inputs or unsupported dtypes.
        NotImplementedError: differentiating the gradient again (double backward).
        ValueError: wrong shapes, mismatched dtype/device, non-positive ``out_size``, unknown
            modes; with ``check_values``, an ``H`` that is not invertible (NaN/Inf, or
            ``|det(H / max|H|)| <= dgp_ops.MIN_REL_DET``): on the CPU at once, on a GPU as an
            asynchronous device-side assertion (the call never waits for the device). Values
            are not checked on meta or fake tensors, while ``torch.compile`` traces or while a
            CUDA graph is being captured; such an item's output is all zeros.

    Example:
        >>> img = torch.rand(2, 3, 64, 80)
        >>> H = torch.tensor([[0.5, 0.0, 4.0], [0.0, 0.5, 2.0], [0.0, 0.0, 1.0]])
        >>> warp_perspective(img, H, (32, 48)).shape
        torch.Size([2, 3, 32, 48])
    """
    check_tensor(_FWD, "image", image)
    check_tensor(_FWD, "H", H)
    # rank first: comparing a (B, 3, 3) shape with (3, 3) would specialise a traced batch
    if H.dim() == 2 and H.shape == (3, 3) and image.dim() >= 1:
        H = H.expand(image.shape[0], 3, 3)
    out_h, out_w = _out_size(out_size)
    image, H = autocast_inputs(image, H)
    if spec_applies():
        _check_args(_FWD, image, H, out_h, out_w, mode, padding_mode)
    if check_values and has_values(H):
        require_items(
            invertible(H),
            lambda bad: f"{_FWD}: H is not invertible (NaN/Inf, or |det(H / max|H|)| <= "
            f"{MIN_REL_DET}) in {items(bad)}",
        )
    op = WarpPerspective.apply if transforms_active() else _op
    return op(image, H, out_h, out_w, mode, padding_mode)
