"""Keeps the DLT benchmark runnable: a --quick smoke run on tiny sizes."""

from benchmarks import bench_dlt


def test_bench_dlt_quick(capsys):
    bench_dlt.main(["--quick", "--device", "cpu", "--threads-check"])
    out = capsys.readouterr().out
    assert "handdgp-style" in out and "fwd+bwd" in out and "thread(s)" in out
    rows = [line for line in out.splitlines() if line.strip().startswith(("1 ", "16 "))]
    assert len(rows) == 4


def test_composite_size_cap():
    assert bench_dlt._composite_bytes(65536, 21, 4) < bench_dlt.COMPOSITE_MAX_BYTES
    assert bench_dlt._composite_bytes(1 << 20, 21, 4) > bench_dlt.COMPOSITE_MAX_BYTES
