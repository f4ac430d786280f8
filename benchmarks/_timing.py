"""Benchmark helpers: side-by-side timing (interleaved repetitions, median per candidate) and
peak resident memory of one call measured in a fresh subprocess."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
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


def max_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB.

    Linux: the ``VmHWM`` of this process's own address space (``ru_maxrss`` would include
    the parent's peak, inherited across fork + exec). Elsewhere: ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak_rss() -> None:
    """Reset the peak RSS to the current RSS (Linux ``clear_refs``), where allowed, so that a
    later :func:`max_rss_mb` sees only new peaks."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_delta_mb(module: str, args: list[str], cwd: str) -> float:
    """Run ``python -m module *args`` in a fresh process; it must print a JSON object with
    ``peak_delta_mb`` as its last line. Returns that number."""
    env = dict(os.environ)
    env["PYTHONPATH"] = cwd + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(res.stdout.strip().splitlines()[-1])["peak_delta_mb"])
