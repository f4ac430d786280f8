"""``torch.func`` support: vmap rules for every op, and the autograd of the public functions
under function transforms.

The ops' autograd is registered in C++ (``csrc/*/..._autograd.cpp``), which PyTorch's function
transforms (``vmap`` of a gradient, ``grad``, ``vjp``, ``jacrev``) cannot enter. While such a
transform is active, the public functions therefore call the ops through the
``torch.autograd.Function`` classes below instead: the same forward and backward ops, with
``generate_vmap_rule`` so that ``vmap`` runs them through the vmap rules registered here. A
vmapped dimension is folded into the ops' batch dimension, so a vmapped call is one launch.

Forward-mode AD (``jvp``, ``jacfwd``) is not supported: the ops have no forward-mode formula.
"""

from __future__ import annotations

import torch

__all__ = ["SolveTranslation", "WarpPerspective", "WarpPerspectiveDistorted", "transforms_active"]

_dlt = torch.ops.dgp_ops.weighted_dlt_translation
_dlt_bwd = torch.ops.dgp_ops.weighted_dlt_translation_backward
_warp = torch.ops.dgp_ops.warp_perspective
_warp_bwd = torch.ops.dgp_ops.warp_perspective_backward


def transforms_active() -> bool:
    """Whether a ``torch.func`` transform (vmap, grad, vjp, jacrev, ...) is running (never
    while ``torch.compile`` traces: it handles the transforms itself)."""
    if torch.compiler.is_compiling():
        return False
    return torch._C._functorch.peek_interpreter_stack() is not None


def _fold(x: torch.Tensor, dim: int | None, size: int) -> torch.Tensor:
    """``x`` with its vmapped dimension (or a broadcast one) merged into the batch dimension."""
    x = x.movedim(dim, 0) if dim is not None else x.expand(size, *x.shape)
    return x.reshape(size * x.shape[1], *x.shape[2:])


def _unfold(outputs, size: int, rows: int):
    """The ops' outputs of ``rows = size * B`` items split back into (vmapped, batch, ...); an
    output of another length (the empty placeholder of a gradient not asked for) stays as is."""
    out, dims = [], []
    for o in outputs:
        if o.dim() == 0 or o.shape[0] != rows:
            out.append(o)
            dims.append(None)
        else:
            out.append(o.reshape(size, rows // size, *o.shape[1:]))
            dims.append(0)
    return tuple(out), tuple(dims)


@torch.library.register_vmap("dgp_ops::weighted_dlt_translation")
def _dlt_vmap(info, in_dims, points3d, points2d, K, weights, damping=0.0):
    s = info.batch_size
    args = [_fold(x, d, s) for x, d in zip((points3d, points2d, K, weights), in_dims[:4],
                                             strict=True)]
    return _unfold(_dlt(*args, damping), s, args[0].shape[0])


@torch.library.register_vmap("dgp_ops::weighted_dlt_translation_backward")
def _dlt_bwd_vmap(info, in_dims, grad_t, points3d, points2d, K, weights, saved, damping=0.0):
    s = info.batch_size
    args = [_fold(x, d, s) for x, d in zip((grad_t, points3d, points2d, K, weights, saved),
                                             in_dims[:6], strict=True)]
    return _unfold(_dlt_bwd(*args, damping), s, args[0].shape[0])


@torch.library.register_vmap("dgp_ops::warp_perspective")
def _warp_vmap(info, in_dims, image, H, out_h, out_w, mode="bilinear", padding_mode="zeros"):
    s = info.batch_size
    image, H = (_fold(x, d, s) for x, d in zip((image, H), in_dims[:2], strict=True))
    out = _warp(image, H, out_h, out_w, mode, padding_mode)
    return out.reshape(s, out.shape[0] // s, *out.shape[1:]), 0


@torch.library.register_vmap("dgp_ops::warp_perspective_backward")
def _warp_bwd_vmap(info, in_dims, grad_output, image, H, mode, padding_mode, image_requires_grad,
                   H_requires_grad):
    s = info.batch_size
    args = [_fold(x, d, s) for x, d in zip((grad_output, image, H), in_dims[:3], strict=True)]
    grads = _warp_bwd(*args, mode, padding_mode, image_requires_grad, H_requires_grad)
    return _unfold(grads, s, args[0].shape[0])


def _below_autograd():
    """The backward ops run below autograd: their gradient is not differentiable (as with the
    ops' own autograd, a second derivative is not supported)."""
    return torch._C._AutoDispatchBelowAutograd()


class SolveTranslation(torch.autograd.Function):
    """``weighted_dlt_translation`` with its backward op, usable under ``torch.func``."""

    generate_vmap_rule = True

    @staticmethod
    def forward(points3d, points2d, K, weights, damping):
        return _dlt(points3d, points2d, K, weights, damping)

    @staticmethod
    def setup_context(ctx, inputs, output):
        points3d, points2d, K, weights, damping = inputs
        ctx.save_for_backward(points3d, points2d, K, weights, output[2])
        ctx.damping = damping
        ctx.mark_non_differentiable(output[1], output[2])

    @staticmethod
    def backward(ctx, grad_t, _grad_valid, _grad_saved):
        points3d, points2d, K, weights, saved = ctx.saved_tensors
        with _below_autograd():
            grads = _dlt_bwd(grad_t.contiguous(), points3d, points2d, K, weights, saved,
                             ctx.damping)
        return (*grads, None)


class WarpPerspective(torch.autograd.Function):
    """``warp_perspective`` with its backward op, usable under ``torch.func``."""

    generate_vmap_rule = True

    @staticmethod
    def forward(image, H, out_h, out_w, mode, padding_mode):
        return _warp(image, H, out_h, out_w, mode, padding_mode)

    @staticmethod
    def setup_context(ctx, inputs, output):
        image, H, _, _, mode, padding_mode = inputs
        ctx.save_for_backward(image, H)
        ctx.mode, ctx.padding_mode = mode, padding_mode

    @staticmethod
    def backward(ctx, grad_output):
        image, H = ctx.saved_tensors
        need_image, need_h = ctx.needs_input_grad[:2]
        with _below_autograd():
            g_image, g_h = _warp_bwd(grad_output.contiguous(), image, H, ctx.mode,
                                     ctx.padding_mode, need_image, need_h)
        return (g_image if need_image else None, g_h if need_h else None, None, None, None,
                None)


class WarpPerspectiveDistorted(torch.autograd.Function):
    """``warp_perspective_distorted`` with its backward op, usable under ``torch.func``."""

    generate_vmap_rule = True

    @staticmethod
    def forward(image, H, K, dist, out_h, out_w, model, mode, padding_mode):
        return torch.ops.dgp_ops.warp_perspective_distorted(image, H, K, dist, out_h, out_w,
                                                            model, mode, padding_mode)

    @staticmethod
    def setup_context(ctx, inputs, output):
        image, H, K, dist, _, _, model, mode, padding_mode = inputs
        ctx.save_for_backward(image, H, K, dist)
        ctx.args = (model, mode, padding_mode)

    @staticmethod
    def backward(ctx, grad_output):
        image, H, K, dist = ctx.saved_tensors
        need_image, need_h = ctx.needs_input_grad[:2]
        with _below_autograd():
            g_image, g_h = torch.ops.dgp_ops.warp_perspective_distorted_backward(
                grad_output.contiguous(), image, H, K, dist, *ctx.args, need_image, need_h)
        return (g_image if need_image else None, g_h if need_h else None, *([None] * 7))
