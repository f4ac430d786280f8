"""Intra-op thread count chosen from the cores that other processes leave free.

PyTorch's CPU kernels run on as many OpenMP threads as there are cores. When another process
(a second job, a DataLoader worker, a test run) keeps one of them busy, the threads of every
parallel region wait at its barrier for a partner that the kernel has descheduled, and a
training step gets several times slower. :class:`ThreadGovernor` watches the machine's CPU
time between training steps (``/proc/stat``), subtracts this process's own, and sets
``torch.set_num_threads`` to the cores that are left.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

__all__ = ["ThreadGovernor", "read_cpu_busy"]

_STAT = Path("/proc/stat")


def read_cpu_busy(stat_path: str | os.PathLike = _STAT) -> float | None:
    """Seconds of CPU time spent busy by the whole machine since boot, or None if unknown.

    Busy is every ``/proc/stat`` ``cpu`` column except idle and iowait (and the guest
    columns, which are already counted in user and nice).
    """
    try:
        with open(stat_path, encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 5:
        return None
    ticks = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    busy = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)
    return busy / os.sysconf("SC_CLK_TCK")


class ThreadGovernor:
    """Re-choose the intra-op thread count every ``every`` calls of :meth:`step`.

    Between two samples, the cores other processes kept busy are
    ``(machine busy time - this process's CPU time) / wall time``; the thread count becomes
    the cores left, rounded, between 1 and ``max_threads``.

    Args:
        max_threads: the most threads to use (the available cores by default).
        every: calls of :meth:`step` between two decisions.
        stat_path: the ``/proc/stat`` file (tests substitute their own).
    """

    def __init__(self, max_threads: int | None = None, every: int = 10,
                 stat_path: str | os.PathLike = _STAT) -> None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        self.max_threads = max(1, int(max_threads or cores or os.cpu_count() or 1))
        if every < 1:
            raise ValueError(f"every: must be >= 1, got {every}")
        self.every = int(every)
        self.stat_path = stat_path
        self.calls = 0
        self.threads = min(self.max_threads, torch.get_num_threads()) or 1
        self._last = self._sample()
        self.history: list[tuple[float, int]] = []  # (others' cores, chosen threads)

    def _sample(self) -> tuple[float, float, float] | None:
        busy = read_cpu_busy(self.stat_path)
        if busy is None:
            return None
        return time.monotonic(), busy, time.process_time()

    def decide(self, others: float) -> int:
        """Threads for ``others`` cores kept busy by other processes."""
        return int(min(self.max_threads, max(1, round(self.max_threads - others))))

    def step(self) -> int:
        """Count a training step; every ``every`` steps, re-choose and apply the threads."""
        self.calls += 1
        if self.calls % self.every or self._last is None:
            return self.threads
        now = self._sample()
        if now is None:
            return self.threads
        (t0, busy0, own0), (t1, busy1, own1) = self._last, now
        self._last = now
        if t1 - t0 <= 0:
            return self.threads
        others = max(0.0, ((busy1 - busy0) - (own1 - own0)) / (t1 - t0))
        threads = self.decide(others)
        self.history.append((others, threads))
        if threads != self.threads:
            torch.set_num_threads(threads)
            self.threads = threads
        return self.threads
