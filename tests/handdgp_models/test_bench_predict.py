"""Smoke test of benchmarks/bench_predict.py in --quick mode."""

import sys

from benchmarks import bench_predict


def test_bench_predict_quick(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["bench_predict", "--quick"])
    bench_predict.main()
    out = capsys.readouterr().out
    assert out.count("| batch") == len(bench_predict.SETTINGS) and "images/s" in out
