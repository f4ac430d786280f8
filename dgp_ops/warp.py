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
from ._validation import check_device, check_floating, check_like, check_shape, has_values

MODES: tuple[str, ...] = _C.WARP_MODES
PADDING_MODES: tuple[str, ...] = _C.WARP_PADDING_MODES

# |det(H / max|H|)| at or below this counts as singular (kMinRelDet of the kernels).
_MIN_REL_DET: float = _C.WARP_MIN_REL_DET

_op = torch.ops.dgp_ops.warp_perspective
_FWD = "warp_perspective"
_BWD = "warp_perspective_backward"


def _check_modes(op: str, mode: str, padding_mode: str) -> None:
    torch._check_value(
        mode in MODES, lambda: f"{op}: mode must be 'bilinear' or 'nearest', got '{mode}'"
    )
    torch._check_value(
        padding_mode in PADDING_MODES,
        lambda: f"{op}: padding_mode must be 'zeros', 'border' or 'reflection', got "
        f"'{padding_mode}'",
    )


def _check_image_and_h(op: str, image, H, allow_uint8: bool) -> None:
    """The C++ launchers' checks (csrc/warp/warp_checks.h) for the fake kernels."""
    check_shape(op, "image", image, (None, None, None, None), "(B, C, H, W)")
    is_u8 = image.dtype == torch.uint8
    if allow_uint8:
        torch._check_type(
            is_u8 or image.dtype in (torch.float32, torch.float64),
            lambda: f"{op}: image must be uint8, float32 or float64, got {image.dtype}",
        )
    else:
        check_floating(op, "image", image)
    check_shape(op, "H", H, (image.shape[0], 3, 3), "(B, 3, 3)")
    check_floating(op, "H", H)
    if is_u8:
        check_device(op, "H", H, "image", image)
    else:
        check_like(op, "H", H, "image", image)
    torch._check_value(
        image.shape[2] > 0 and image.shape[3] > 0,
        lambda: f"{op}: image height and width must be positive, got {list(image.shape)}",
    )


def _check_out_size(op: str, out_h: int, out_w: int) -> None:
    torch._check_value(
        out_h > 0 and out_w > 0,
        lambda: f"{op}: out_h and out_w must be positive, got ({out_h}, {out_w})",
    )


@torch.library.register_fake("dgp_ops::warp_perspective")
def _warp_fake(image, H, out_h, out_w, mode="bilinear", padding_mode="zeros"):
    _check_image_and_h(_FWD, image, H, allow_uint8=True)
    _check_out_size(_FWD, out_h, out_w)
    _check_modes(_FWD, mode, padding_mode)
    shape = (image.shape[0], image.shape[1], out_h, out_w)
    return image.new_empty(shape)


@torch.library.register_fake("dgp_ops::warp_perspective_backward")
def _warp_backward_fake(
    grad_output, image, H, mode, padding_mode, image_requires_grad, H_requires_grad
):
    _check_image_and_h(_BWD, image, H, allow_uint8=False)
    check_shape(
        _BWD, "grad_output", grad_output, (image.shape[0], image.shape[1], None, None),
        "(B, C, out_h, out_w)",
    )
    check_like(_BWD, "grad_output", grad_output, "image", image)
    _check_out_size(_BWD, grad_output.shape[2], grad_output.shape[3])
    _check_modes(_BWD, mode, padding_mode)
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


def _check_h_values(H: torch.Tensor) -> None:
    """Raise ValueError for non-finite or singular homographies (needs the values)."""
    if H.numel() == 0:
        return
    with torch.no_grad():
        finite = torch.isfinite(H).flatten(1).all(dim=1)
        if not bool(finite.all()):
            bad = torch.nonzero(~finite).flatten().tolist()
            raise ValueError(f"H has non-finite entries (NaN or Inf) in batch items {bad}")
        scale = H.abs().flatten(1).amax(dim=1).clamp_min(torch.finfo(H.dtype).tiny)
        det = torch.linalg.det((H / scale[:, None, None]).double())
        singular = ~(det.abs() > _MIN_REL_DET)
        if bool(singular.any()):
            bad = torch.nonzero(singular).flatten().tolist()
            raise ValueError(f"H is singular (not invertible) in batch items {bad}")


def warp_perspective(
    image: torch.Tensor,
    H: torch.Tensor,
    out_size: Sequence[int],
    mode: str = "bilinear",
    padding_mode: str = "zeros",
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

    Returns:
        ``(B, C, out_h, out_w)`` contiguous, with the dtype of ``image``. uint8 images are
        warped as ``cv2.warpPerspective`` (OpenCV 5) does: double-precision coordinates,
        bilinear weights from the exact fraction, the result rounded to nearest and
        saturated; they get no gradient. Output pixels whose source is at infinity or
        behind the camera (homogeneous ``w ≤ 0`` once ``H`` is scaled so that
        ``H⁻¹ ∝ adj(H)``) are 0 in every padding mode and get zero gradient.

    Raises:
        TypeError: non-tensor inputs or unsupported dtypes.
        NotImplementedError: differentiating the gradient again (double backward).
        ValueError: wrong shapes, mismatched dtype/device, non-positive ``out_size``, unknown
            modes, and (outside ``torch.compile``) NaN/Inf or singular ``H``. Inside a
            compiled graph such items are not checked; their output is all zeros.

    Example:
        >>> img = torch.rand(2, 3, 64, 80)
        >>> H = torch.tensor([[0.5, 0.0, 4.0], [0.0, 0.5, 2.0], [0.0, 0.0, 1.0]])
        >>> warp_perspective(img, H, (32, 48)).shape
        torch.Size([2, 3, 32, 48])
    """
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if not isinstance(H, torch.Tensor):
        raise TypeError(f"H must be a torch.Tensor, got {type(H).__name__}")
    if image.dtype not in (torch.uint8, torch.float32, torch.float64):
        raise TypeError(f"image must be uint8, float32 or float64, got {image.dtype}")
    if image.dim() != 4:
        raise ValueError(f"image must be (B, C, H, W), got shape {tuple(image.shape)}")
    if image.shape[2] < 1 or image.shape[3] < 1:
        raise ValueError(f"image height and width must be positive, got {tuple(image.shape)}")
    if image.dtype == torch.uint8:
        if H.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"H must be float32 or float64 for a uint8 image, got {H.dtype}")
    elif H.dtype != image.dtype:
        raise TypeError(f"H must have the dtype of image ({image.dtype}), got {H.dtype}")
    if H.device != image.device:
        raise ValueError(f"H is on {H.device} but image is on {image.device}")
    batch = image.shape[0]
    if H.dim() == 2 and H.shape == (3, 3):
        H = H.expand(batch, 3, 3)
    elif not (H.dim() == 3 and H.shape[1:] == (3, 3) and H.shape[0] == batch):
        raise ValueError(
            f"H must be (3, 3) or (B, 3, 3) with B = {batch}, got shape {tuple(H.shape)}"
        )
    if not (isinstance(out_size, torch.Size | tuple | list) and len(out_size) == 2):
        raise ValueError(f"out_size must be (out_h, out_w), got {out_size!r}")
    try:
        if any(isinstance(s, bool) for s in out_size):
            raise TypeError
        out_h, out_w = (operator.index(s) for s in out_size)
    except TypeError:
        raise ValueError(f"out_size must be two ints (out_h, out_w), got {out_size!r}") from None
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"out_size must be positive, got {(out_h, out_w)}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    if has_values(H):
        _check_h_values(H)
    return _op(image, H.contiguous(), out_h, out_w, mode, padding_mode)
