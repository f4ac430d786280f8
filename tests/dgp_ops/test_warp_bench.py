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
    for case in ("fwd float32", "fwd uint8", "fwd+bwd H only", "fwd+bwd image+H"):
        assert any(line.startswith(case) for line in lines), res.stdout
    for other in ("cv2 loop (float32)", "cv2 loop (uint8)", "kornia (H only)",
                  "grid_sample (image grad)"):
        assert any(other in line for line in lines), res.stdout
    h_only = next(line for line in lines if line.startswith("fwd+bwd H only"))
    assert h_only.rstrip().endswith("x") and len(h_only.split()) >= 10, h_only
    agreement = next(line for line in lines if line.startswith("uint8 vs cv2"))
    assert "grey level" in agreement
