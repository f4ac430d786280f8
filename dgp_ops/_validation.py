"""The pieces of every op's argument spec, and the checks of values.

Each op has one spec in Python (``_check_args`` in :mod:`dgp_ops.dlt` and :mod:`dgp_ops.warp`),
the mirror of its C++ launchers' checks (``csrc/<family>/<family>_checks.h``) with the same
messages: the fake kernels call it, and so do the public functions once they have normalised
their arguments, so a traced, meta or eager call fails the same way.

Checks of tensor *values* (a singular ``H``, negative weights) never synchronise with a device:
:func:`require_items` raises ``ValueError`` for CPU tensors, whose values the host reads for
free, and on other devices is an asynchronous device-side assertion. They run only where values
exist (:func:`has_values`) and only when a public function's ``check_values`` is on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch._subclasses.fake_tensor import is_fake

from . import _C

#: Floating dtypes the ops take; float16 and bfloat16 are computed in float32 inside.
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

# |det(A / max|A_ij|)| above which a finite 3x3 matrix counts as invertible, for every op.
MIN_REL_DET: float = _C.MIN_REL_DET
# Elements one item of an op may address with int32 offsets.
MAX_INT32_ELEMENTS: int = _C.MAX_INT32_ELEMENTS


# Devices whose tensors value checks read directly (no synchronisation there).
HOST_READABLE_DEVICES: tuple[str, ...] = ("cpu",)


def _stream_capturing() -> bool:
    return torch.cuda.is_initialized() and torch.cuda.is_current_stream_capturing()


def has_values(*tensors: torch.Tensor) -> bool:
    """Whether values may be read: False for meta or fake tensors, while ``torch.compile``
    traces, under a ``torch.func`` transform (vmap, grad, ...: batched or wrapped values), and
    while the current CUDA stream is being captured into a graph."""
    if torch.compiler.is_compiling() or torch._C._functorch.peek_interpreter_stack():
        return False
    if any(t.device.type == "meta" or is_fake(t) for t in tensors):
        return False
    return not _stream_capturing()


def require_items(ok: torch.Tensor, message: Callable[[list[int] | None], str]) -> None:
    """Raise ``ValueError(message(bad_items))`` unless every entry of ``ok`` ``(B,)`` is True.

    On the CPU ``ok`` is read directly. On another device the check is
    ``torch._assert_async`` (``message(None)``): a device-side assertion that fails the next
    synchronising call, so that the host never waits for the device here.
    """
    if ok.device.type in HOST_READABLE_DEVICES:
        if not bool(ok.all()):
            raise ValueError(message(torch.nonzero(~ok).flatten().tolist()))
    else:
        torch._assert_async(ok.all(), message(None))


def autocast_inputs(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The tensors as the ops' Autocast kernels hand them on (torch.autocast's fp32 policy:
    float16/bfloat16 become float32), so that a public function checks what the op will see."""
    dev = tensors[0].device.type
    if dev not in ("cpu", "cuda") or not torch.is_autocast_enabled(dev):
        return tensors
    low = (torch.float16, torch.bfloat16)
    return tuple(t.float() if t.dtype in low else t for t in tensors)


def items(bad: list[int] | None) -> str:
    """``bad`` items for a message: ``"batch items [0, 3]"``, or ``"some batch items"``."""
    return "some batch items" if bad is None else f"batch items {bad}"


def _det3(a: torch.Tensor) -> torch.Tensor:
    """Determinants of ``(B, 9)`` row-major 3x3 matrices by cofactors, as the kernels' adj3."""
    a0, a1, a2, a3, a4, a5, a6, a7, a8 = a.unbind(-1)
    return a0 * (a4 * a8 - a5 * a7) + a1 * (a5 * a6 - a3 * a8) + a2 * (a3 * a7 - a4 * a6)


def invertible(A: torch.Tensor) -> torch.Tensor:
    """Which of the ``(B, 3, 3)`` matrices the ops treat as invertible: every entry finite and
    ``|det(A / max|A_ij|)| > MIN_REL_DET`` (``csrc/common/small_matrix.h``).

    Returns:
        ``(B,)`` bool, on ``A``'s device; no synchronisation.
    """
    with torch.no_grad():
        a = A.detach().reshape(A.shape[0], 9).double()
        finite = torch.isfinite(a).all(dim=1)
        a = torch.where(finite[:, None], a, 0.0)
        scale = a.abs().amax(dim=1, keepdim=True)
        det = _det3(a / torch.where(scale > 0, scale, 1.0))
        return finite & (scale[:, 0] > 0) & (det.abs() > MIN_REL_DET)


def check_value(cond, message: Callable[[], str]) -> None:
    """``torch._check_value``, with a fast return for a plain ``True`` (the eager path; a
    symbolic condition of a fake kernel goes to torch)."""
    if cond is not True:
        torch._check_value(cond, message)


def check_type(cond, message: Callable[[], str]) -> None:
    """``torch._check_type``, with the same fast return."""
    if cond is not True:
        torch._check_type(cond, message)


def check_tensor(op: str, name: str, x: object) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a tensor, got {type(x).__name__}")


def spec_applies() -> bool:
    """Whether a public function runs its op's spec itself: not while ``torch.compile`` traces,
    where the op's fake kernel runs the same spec (and the spec's message closures cannot be
    traced)."""
    return not torch.compiler.is_compiling()


def check_float_tensor(op: str, name: str, x: object) -> None:
    """A floating tensor of :data:`FLOAT_DTYPES` (plain raises: traceable by torch.compile)."""
    check_tensor(op, name, x)
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{op}: {name} must be float16, bfloat16, float32 or float64, got "
                        f"{x.dtype}")


def check_shape(op: str, name: str, t: torch.Tensor, sizes: Sequence[int | None],
                spelled: str) -> None:
    """Rank ``len(sizes)`` and ``t.shape[i] == sizes[i]`` where ``sizes[i]`` is not None."""
    ok = t.dim() == len(sizes) and all(
        s is None or t.shape[i] == s for i, s in enumerate(sizes)
    )
    expected = ", ".join("?" if s is None else str(s) for s in sizes)
    check_value(
        ok, lambda: f"{op}: {name} must have shape {spelled} = ({expected}), got {list(t.shape)}"
    )


def check_floating(op: str, name: str, t: torch.Tensor) -> None:
    check_type(
        t.dtype in FLOAT_DTYPES,
        lambda: f"{op}: {name} must be float16, bfloat16, float32 or float64, got {t.dtype}",
    )


def check_device(op: str, name: str, t: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    check_value(
        t.device == ref.device,
        lambda: f"{op}: {name} is on {t.device} but {ref_name} is on {ref.device}",
    )


def check_like(op: str, name: str, t: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    """Same dtype and device as the reference argument."""
    check_type(
        t.dtype == ref.dtype,
        lambda: f"{op}: {name} has dtype {t.dtype} but {ref_name} has {ref.dtype}",
    )
    check_device(op, name, t, ref_name, ref)
