"""Smoke test of benchmarks/ablation.py in --quick mode (one method)."""

import json

import pytest

from benchmarks.ablation import VARIANTS, format_table, main


@pytest.mark.slow
def test_ablation_quick(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HANDDGP_CACHE", str(tmp_path / "hier"))
    assert main(["--quick", "--only", "root_regression", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "CS-MJE" in out and "root regression + rect" in out
    rows = json.loads((tmp_path / "ablation.json").read_text())
    assert [r["name"] for r in rows] == [v[0] for v in VARIANTS if v[1] == "root_regression"]
    assert all(r["cs_mje"][0] > 0 for r in rows)


def test_format_table_seeds():
    row = {"name": "x", "paper": 46.3, "cs_mje": (50.0, 2.0), "cs_mve": (51.0, 1.0),
           "pa_mje": (9.0, 0.5), "baseline": 180.0}
    assert "50.0 ± 2.0" in format_table([row], 2)
    assert "± " not in format_table([row], 1).splitlines()[2]
