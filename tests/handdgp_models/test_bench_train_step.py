"""Smoke test of benchmarks/bench_train_step.py: one tiny config, idle and with a busy core."""

import pytest

from benchmarks import bench_train_step


@pytest.mark.slow
def test_bench_train_step_tiny(tmp_path, capsys):
    assert bench_train_step.main(["--configs", "tiny", "--steps", "1", "--threads", "1",
                                  "--cache", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "tiny/1/idle" in out and "tiny/1/busy" in out and "slower" in out
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in out.splitlines()
            if line.split() and line.split()[0] in ("data", "optimiser", "step")}
    # the timed parts are positive durations within the whole step, in both runs
    for part in ("data", "optimiser"):
        assert len(rows[part]) == 2
        assert all(0 < v < step for v, step in zip(rows[part], rows["step"], strict=True))
