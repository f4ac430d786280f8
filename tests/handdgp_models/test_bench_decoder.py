"""Smoke test of benchmarks/bench_decoder.py in --quick mode."""

import sys

from benchmarks import bench_decoder


def test_bench_decoder_quick(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["bench_decoder", "--quick"])
    bench_decoder.main()
    out = capsys.readouterr().out
    # parameter counts of the small decoder's spiral layers: 9C + CC' (dsconv), 9CC' + C'
    pairs = [(64, 64), (64, 48), (48, 32), (32, 16), (16, 3)]
    assert f"| small | dsconv | {sum(9 * a + a * b for a, b in pairs):,} |" in out
    assert f"| small | dense | {sum(9 * a * b + b for a, b in pairs):,} |" in out
    assert "778/389/195/98/49" in out and "260/130/65/33/17" in out
    assert out.count("| dsconv | sparse gather |") == 1
