"""Checks shared by the fake kernels and the public functions.

The fake (meta) kernels repeat the C++ launchers' checks of ranks, sizes, dtypes and devices
with the same messages, so a traced or meta call fails as an eager one does. Checks that need
tensor *values* run only where values exist (:func:`has_values`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch._subclasses.fake_tensor import is_fake

FLOAT_DTYPES = (torch.float32, torch.float64)


def has_values(*tensors: torch.Tensor) -> bool:
    """False for meta or fake tensors and while ``torch.compile`` traces: no data to read."""
    if torch.compiler.is_compiling():
        return False
    return not any(t.device.type == "meta" or is_fake(t) for t in tensors)


def check_shape(op: str, name: str, t: torch.Tensor, sizes: Sequence[int | None],
                spelled: str) -> None:
    """Rank ``len(sizes)`` and ``t.shape[i] == sizes[i]`` where ``sizes[i]`` is not None."""
    ok = t.dim() == len(sizes) and all(
        s is None or t.shape[i] == s for i, s in enumerate(sizes)
    )
    expected = ", ".join("?" if s is None else str(s) for s in sizes)
    torch._check_value(
        ok, lambda: f"{op}: {name} must have shape {spelled} = ({expected}), got {list(t.shape)}"
    )


def check_floating(op: str, name: str, t: torch.Tensor) -> None:
    torch._check_type(
        t.dtype in FLOAT_DTYPES, lambda: f"{op}: {name} must be float32 or float64, got {t.dtype}"
    )


def check_device(op: str, name: str, t: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    torch._check_value(
        t.device == ref.device,
        lambda: f"{op}: {name} is on {t.device} but {ref_name} is on {ref.device}",
    )


def check_like(op: str, name: str, t: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    """Same dtype and device as the reference argument."""
    torch._check_type(
        t.dtype == ref.dtype,
        lambda: f"{op}: {name} has dtype {t.dtype} but {ref_name} has {ref.dtype}",
    )
    check_device(op, name, t, ref_name, ref)
