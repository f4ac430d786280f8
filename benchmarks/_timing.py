"""Side-by-side timing: interleaved repetitions, median per candidate."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def _sync(device: torch.device | str | None) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(
    fns: dict[str, Callable[[], object]],
    *,
    reps: int = 20,
    warmup: int = 2,
    budget_s: float = 5.0,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Median wall time in seconds of each callable.

    Every repetition runs each candidate once, in turn, so that load changes on the machine hit
    all candidates alike. Stops early (after at least 3 repetitions) once ``budget_s`` is spent.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    _sync(device)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    start = time.perf_counter()
    for rep in range(reps):
        for name, fn in fns.items():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            samples[name].append(time.perf_counter() - t0)
        if rep >= 2 and time.perf_counter() - start > budget_s:
            break
    return {name: statistics.median(s) for name, s in samples.items()}


def fmt_time(seconds: float | None) -> str:
    """Human-readable duration (``n/a`` for None)."""
    if seconds is None:
        return "n/a"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"
