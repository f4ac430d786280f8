"""Timing and memory helpers for benchmarks: interleaved repetitions, medians, and peak
resident memory of one call measured in a fresh subprocess."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

__all__ = ["interleaved_medians", "peak_rss_delta_mb", "max_rss_mb", "reset_peak_rss"]


def interleaved_medians(
    fns: dict[str, Callable[[], object]], reps: int, warmup: int = 1
) -> dict[str, float]:
    """Median wall time in milliseconds of each function.

    The functions run round-robin (``a b c a b c ...``) so that load changes on the machine
    hit every method alike.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: statistics.median(ts) for name, ts in times.items()}


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
