"""benchmarks/ablation.py: the report from known CSV rows, the CSV's tolerance of a killed
writer, and a resumable --quick run."""

import json

import pytest

import benchmarks.ablation as ablation
from benchmarks.ablation import (
    BUDGET_FILE,
    CSV_FIELDS,
    VARIANTS,
    Budget,
    append_row,
    format_report,
    main,
    read_rows,
    run_ablation,
    verdict,
)

BUDGET = Budget("small", 500, 1000, 200)
OTHER = Budget("small", 2, 1000, 200)


def _row(variant: str, seed: int, cs_mje: float, budget: Budget = BUDGET) -> dict:
    return {"variant": variant, "seed": seed, "base": budget.base, "steps": budget.steps,
            "train_samples": budget.train_samples, "test_samples": budget.test_samples,
            "cs_mje": cs_mje, "cs_mve": cs_mje + 1.0, "pa_mje": 9.0, "pa_mve": 8.0,
            "rr_mje": 20.0, "baseline_cs_mje": 180.0, "seconds": 10.0, "commit": "abc1234",
            "timestamp": "2025-01-01T00:00:00+00:00"}


def _write_csv(path, rows) -> None:
    for r in rows:
        append_row(path, r)


def _line(report: str, start: str, section: str | None = None) -> str:
    """The one line starting with ``start`` in ``section`` (to the next ``## `` heading), or
    in the report of the main budget (before ``## Other budgets``)."""
    text = report.split("## Other budgets")[0] if section is None else \
        report.split(section, 1)[1].split("\n## ", 1)[0]
    (line,) = [ln for ln in text.splitlines() if ln.startswith(start)]
    return line


@pytest.fixture
def report(tmp_path) -> str:
    rows = [_row("dgp_crop", s, v) for s, v in enumerate([50.0, 52.0, 99.0])]
    rows += [_row("dgp_crop", 2, 54.0)]  # a later row of the same run replaces the first
    rows += [_row("two_stage_crop", s, v) for s, v in enumerate([55.0, 56.0, 60.0])]
    rows += [_row("dgp_uniform_crop", s, v) for s, v in enumerate([51.0, 53.0, 52.0])]
    rows += [_row("root_regression_crop", s, v) for s, v in enumerate([40.0, 41.0, 42.0])]
    rows += [_row("dgp_affine", 0, 45.0), _row("two_stage_affine", 0, 48.0),
             _row("dgp_crop", 0, 10.0, OTHER)]
    path = tmp_path / "ablation.csv"
    _write_csv(path, rows)
    return format_report(read_rows(path))


def _prose(report: str) -> str:
    return " ".join(report.split())  # paragraphs are wrapped


def test_report_means_and_seed_counts(report):
    assert "Budget of the rows below: `small` config, 500 steps" in _prose(report)
    assert "1 more rows at other budgets" in _prose(report)
    other = _line(report, "| DGP, no rect |", "## Other budgets")
    assert "| 10.0 | 11.0 | 9.0 | 180.0 | 1 |" in other
    assert "### `small` config, 2 steps" in report.split("## Other budgets")[1]
    dgp = _line(report, "| DGP, no rect |")
    assert "| 52.0 ± 2.0 | 53.0 ± 2.0 | 9.0 ± 0.0 | 180.0 ± 0.0 | 3 |" in dgp
    assert "| 45.0 | 46.0 | 9.0 | 180.0 | 1 |" in _line(report, "| DGP, affine rect |")
    assert "| no runs yet | - | - | - | 0 |" in _line(report, "| DGP, perspective rect |")


def test_report_paper_column(report):
    assert "| 48.4 | affine (Rect); T1 DLT+Rect |" in _line(report, "| two-stage DLT, affine")
    assert "| 50.0 | none; T1 baseline+DLT at test only |" in _line(report, "| two-stage DLT, no")
    assert "| 46.6 | affine (Rect); T2 no weights |" in _line(report, "| DGP, uniform weights, af")
    assert "| 46.3 | affine (Rect) + E2E" in _line(report, "| DGP, affine rect, two views (")
    for v in VARIANTS:
        line = _line(report, f"| {v.name} |")
        if v.mode == "perspective" or v.paper is None:
            assert line.endswith("| - | - |"), line


def test_report_paired_comparisons(report):
    a = _line(report, "| (a) E2E DGP < two-stage DLT | `dgp_crop` vs `two_stage_crop`")
    assert a.endswith("| -5.00 ± 1.00 | 3/3 | holds |")
    c = _line(report, "| (c) learned weights ≤ uniform | `dgp_crop` vs `dgp_uniform_crop`")
    assert c.endswith("| 0.00 ± 1.73 | 2/3 | within seed spread |")
    d = _line(report, "| (d) DGP < root regression | `dgp_crop` vs `root_regression_crop`")
    assert d.endswith("| 11.00 ± 1.00 | 0/3 | does not hold |")
    single = _line(report, "| (a) E2E DGP < two-stage DLT | `dgp_affine`")
    assert single.endswith("| - | 1 paired | needs ≥ 2 paired seeds |")
    assert "twice its standard error" in _prose(report)


def test_report_claim_summary(report):
    # (a): only dgp_crop vs two_stage_crop has two paired seeds: -5, -4, -6; seed stds 2.0 and
    # 2.65 (55, 56, 60), median 2.32
    a = _line(report, "| (a) E2E DGP < two-stage DLT | 1 / 0 / 0 |")
    assert a.endswith("| 3/3 | -5.0 | 2.3 | 2.15 |")
    # (d): +10, +11, +12 against root regression's 40, 41, 42 (std 1.0) and dgp_crop's 2.0
    d = _line(report, "| (d) DGP < root regression | 0 / 0 / 1 |")
    assert d.endswith("| 0/3 | +11.0 | 1.5 | 7.33 |")
    assert _line(report, "| (b) rectified < not rectified | no pair with ≥ 2 paired seeds |")


def test_verdict_rule():
    assert verdict([-1.0, -1.2, -0.8]) == "holds"
    assert verdict([1.0, 1.2, 0.8]) == "does not hold"
    assert verdict([-1.0, 1.0, -0.5]) == "within seed spread"
    assert verdict([0.0, 0.0]) == "within seed spread"
    with pytest.raises(ValueError, match="2 paired"):
        verdict([-1.0])


def test_empty_csv_says_no_runs_yet(tmp_path):
    report = format_report(read_rows(tmp_path / "missing.csv"))
    assert report.count("no runs yet") == len(VARIANTS)
    assert "needs ≥ 2 paired seeds" in report


def test_malformed_last_line_is_ignored(tmp_path):
    path = tmp_path / "ablation.csv"
    _write_csv(path, [_row("dgp_crop", 0, 50.0), _row("dgp_crop", 1, 51.0)])
    with open(path, "a") as f:
        f.write("dgp_crop,2,small,50")  # a writer killed mid-line
    with pytest.warns(UserWarning, match=r"ablation.csv:4: ignoring a malformed row"):
        assert [r["seed"] for r in read_rows(path)] == [0, 1]
    append_row(path, _row("dgp_crop", 3, 53.0))  # starts a line of its own
    with pytest.warns(UserWarning, match="ablation.csv:4"):
        rows = read_rows(path)
    assert [r["seed"] for r in rows] == [0, 1, 3]
    assert rows[-1]["cs_mje"] == 53.0 and rows[-1]["rr_mje"] == 20.0


def test_bad_header_is_an_error(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="not an ablation CSV"):
        read_rows(path)


def test_max_runs_continues_seed_by_seed(tmp_path, monkeypatch, capsys):
    def fake_run(variant, seed, budget, out, threads):
        return _row(variant.key, seed, 50.0, budget)

    monkeypatch.setattr(ablation, "run_one", fake_run)
    path, keys = tmp_path / "ablation.csv", ["dgp_crop", "dgp_affine"]
    assert run_ablation(tmp_path, path, BUDGET, keys, 2, max_runs=3) == 3
    assert "4 runs missing" in capsys.readouterr().out
    done = [(r["variant"], r["seed"]) for r in read_rows(path)]
    assert done == [("dgp_crop", 0), ("dgp_affine", 0), ("dgp_crop", 1)]
    assert run_ablation(tmp_path, path, BUDGET, keys, 2) == 1
    assert run_ablation(tmp_path, path, OTHER, keys, 1, max_runs=0) == 0  # another budget
    assert [(r["variant"], r["seed"]) for r in read_rows(path)][3:] == [("dgp_affine", 1)]


def test_run_folder_of_another_budget_starts_over(tmp_path):
    run = tmp_path / "dgp_crop_s0"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"old")
    ablation._claim_run_dir(run, BUDGET)  # no budget record: the checkpoint is not trusted
    assert not (run / "checkpoint.pt").exists()
    assert json.loads((run / BUDGET_FILE).read_text())["steps"] == BUDGET.steps
    (run / "checkpoint.pt").write_bytes(b"mine")
    ablation._claim_run_dir(run, BUDGET)  # same budget: resumes
    assert (run / "checkpoint.pt").read_bytes() == b"mine"
    ablation._claim_run_dir(run, OTHER)
    assert not (run / "checkpoint.pt").exists()


@pytest.mark.slow
def test_quick_run_resumes_and_skips_done_rows(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HANDDGP_CACHE", str(tmp_path / "hier"))
    args = ["--quick", "--only", "two_stage_crop", "dgp_crop", "--seeds", "1", "--threads", "1",
            "--out", str(tmp_path)]
    csv_path = tmp_path / "ablation.csv"
    assert main(args) == 0
    rows = read_rows(csv_path)
    assert [(r["variant"], r["seed"]) for r in rows] == [("two_stage_crop", 0), ("dgp_crop", 0)]
    assert all(r["base"] == "tiny" and r["steps"] == 2 and r["cs_mje"] > 0 for r in rows)
    assert set(rows[0]) == set(CSV_FIELDS)
    assert "| two-stage DLT, no rect | `two_stage_crop` |" in (tmp_path / "ablation.md").read_text()

    assert main(args) == 0  # everything done: nothing runs
    assert len(read_rows(csv_path)) == 2
    assert "0 runs missing" in capsys.readouterr().out

    header, kept, _ = csv_path.read_text().splitlines(keepends=True)
    csv_path.write_text(header + kept)  # drop the dgp_crop row: only it runs again
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "dgp_crop_s0" in out and "two_stage_crop_s0" not in out
    lines = csv_path.read_text().splitlines(keepends=True)
    assert lines[:2] == [header, kept] and len(lines) == 3
    assert read_rows(csv_path)[1]["variant"] == "dgp_crop"


def test_run_config_sets_the_variant_and_the_papers_jitter_on_affine_rows(tmp_path):
    by_key = {v.key: v for v in VARIANTS}
    base = ablation.run_config(by_key["dgp_perspective"], 1, BUDGET, tmp_path)
    affine = ablation.run_config(by_key["dgp_affine"], 1, BUDGET, tmp_path)
    full = ablation.run_config(by_key["dgp_full"], 2, BUDGET, tmp_path)
    assert (base.model.method, base.input.mode, base.train.seed) == ("dgp", "perspective", 1)
    assert base.input.jitter == "zoom"  # the small config's own
    assert affine.input.mode == "affine" and affine.input.jitter == ablation.PAPER_JITTER
    assert full.input.two_views and full.input.jitter == ablation.PAPER_JITTER
    assert (full.loss.consist2d, full.loss.consist3d) == (1.0, 1.0)
    plain = ablation.run_config(by_key["dgp_two_views"], 2, BUDGET, tmp_path)
    assert plain.input.two_views and (plain.loss.consist2d, plain.loss.consist3d) == (0.0, 0.0)
    assert affine.loss == base.loss == full.loss
    late = ablation.run_config(by_key["dgp_full_stage2"], 2, BUDGET, tmp_path)
    assert late.input.two_views and late.loss == full.loss
    assert (late.train.consistency_stage, full.train.consistency_stage) == (2, 1)
    assert base.train.steps == BUDGET.steps
    assert base.data.train[0].samples == BUDGET.train_samples
