"""ThreadGovernor: threads from the cores other processes leave free (fake /proc/stat)."""

import os

import pytest
import torch

from handdgp_models import threads as threads_mod
from handdgp_models.threads import ThreadGovernor, read_cpu_busy

HZ = os.sysconf("SC_CLK_TCK")


class _Machine:
    """A fake /proc/stat and clocks: other processes busy on ``others`` cores."""

    def __init__(self, path, monkeypatch):
        self.path, self.wall, self.busy, self.own, self.others = path, 0.0, 0.0, 0.0, 0.0
        self.write()
        monkeypatch.setattr(threads_mod.time, "monotonic", lambda: self.wall)
        monkeypatch.setattr(threads_mod.time, "process_time", lambda: self.own)

    def write(self):
        user = int(round(self.busy * HZ))
        self.path.write_text(f"cpu  {user} 0 0 999999 0 0 0 0 0 0\ncpu0 1 2 3 4\n")

    def run(self, seconds, own_cores):
        self.wall += seconds
        self.own += seconds * own_cores
        self.busy += seconds * (own_cores + self.others)
        self.write()


def test_read_cpu_busy(tmp_path):
    p = tmp_path / "stat"
    p.write_text(f"cpu  {3 * HZ} {HZ} {2 * HZ} {50 * HZ} {4 * HZ} 0 {HZ} 0 0 0\n")
    assert read_cpu_busy(p) == pytest.approx(7.0)  # idle and iowait are not busy
    p.write_text("garbage\n")
    assert read_cpu_busy(p) is None
    assert read_cpu_busy(tmp_path / "missing") is None


def test_threads_follow_the_free_cores(tmp_path, monkeypatch):
    before = torch.get_num_threads()
    try:
        m = _Machine(tmp_path / "stat", monkeypatch)
        torch.set_num_threads(2)
        gov = ThreadGovernor(max_threads=2, every=3, stat_path=m.path)
        for _ in range(3):
            m.run(1.0, own_cores=2)
            gov.step()
        assert gov.threads == 2 and torch.get_num_threads() == 2
        m.others = 1.0  # a busy loop starts on the second core
        for _ in range(3):
            m.run(1.0, own_cores=1)
            gov.step()
        assert gov.threads == 1 and torch.get_num_threads() == 1
        assert gov.history[-1][0] == pytest.approx(1.0, abs=0.05)
        m.others = 0.0  # and stops
        for _ in range(3):
            m.run(1.0, own_cores=1)
            gov.step()
        assert gov.threads == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_without_proc_stat_nothing_changes(tmp_path):
    gov = ThreadGovernor(max_threads=2, every=1, stat_path=tmp_path / "none")
    n = torch.get_num_threads()
    assert gov.step() == gov.threads and torch.get_num_threads() == n
    with pytest.raises(ValueError, match="every"):
        ThreadGovernor(every=0)
