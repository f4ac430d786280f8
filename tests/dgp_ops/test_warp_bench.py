"""The warp benchmark runs end to end on tiny sizes and prints its table."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_bench_warp_quick():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_warp", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    for method in ("dgp_ops", "kornia", "grid_sample", "cv2"):
        assert any(line.startswith(method) for line in lines), res.stdout
    row = next(line for line in lines if line.startswith("dgp_ops "))
    # fwd ms, ratio, fwd+bwd ms, ratio, peak MiB, ratio
    assert len(row.split()) == 7, row
