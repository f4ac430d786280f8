"""Ablation on synthetic hands: the paper's Table 1/2 comparisons at one budget, over seeds.

Fourteen variants: two-stage DLT, root regression, DGP without weights and DGP, each with no
rectification (``crop``), the paper's affine rectification (``affine``) and this project's
perspective rectification (``perspective``), plus the full method (DGP, affine, two views
with the consistency losses) and the same two views without the consistency losses. Every
(variant, seed) trains the ``small`` config for the same budget on one shared rendered
training set, is evaluated on test cameras unlike the training ones, and appends one row to a
CSV. Rerunning the command skips the rows already there and resumes an interrupted run from
its checkpoint; every invocation ends by writing the report (``docs/ablation.md``) from the
CSV.

    python -m benchmarks.ablation                    # every run not yet in the CSV
    python -m benchmarks.ablation --max-runs 4       # at most 4 new runs, then stop
    python -m benchmarks.ablation --only dgp_affine dgp_full --seeds 5
    python -m benchmarks.ablation --report           # only rewrite the report
    python -m benchmarks.ablation --quick --out /tmp/abl   # smoke test (tiny config)
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import statistics
import subprocess
import sys
import textwrap
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Budget of every run: the base named config and the overrides set here.
DEFAULT_BASE = "small"
DEFAULT_STEPS = 800
DEFAULT_TRAIN_SAMPLES = 3200
DEFAULT_TEST_SAMPLES = 200
DEFAULT_SEEDS = 3
#: ``--quick``: the tiny config at toy sizes, a smoke test of the whole loop.
QUICK_BASE = "tiny"
QUICK_STEPS = 2
QUICK_TRAIN_SAMPLES = 8
QUICK_TEST_SAMPLES = 4

#: Training jitter of the ``affine`` rows: the paper's (crop moved and scaled before
#: rectification). The other rows keep the base config's.
PAPER_JITTER = "crop"

DEFAULT_OUT = Path("runs/ablation")
DEFAULT_CSV = REPO / "benchmarks" / "results" / "ablation.csv"
DEFAULT_DOC = REPO / "docs" / "ablation.md"
_WIDTH = 96  # line width of the report's paragraphs
BUDGET_FILE = "budget.json"  # in each run folder: the budget its checkpoint belongs to

CSV_FIELDS = ("variant", "seed", "base", "steps", "train_samples", "test_samples",
              "cs_mje", "cs_mve", "pa_mje", "pa_mve", "rr_mje", "baseline_cs_mje",
              "seconds", "commit", "timestamp")
_INT_FIELDS = ("seed", "steps", "train_samples", "test_samples")
_METRICS = ("cs_mje", "cs_mve", "pa_mje", "pa_mve", "rr_mje")
_FLOAT_FIELDS = (*_METRICS, "baseline_cs_mje", "seconds")
_OPTIONAL_FIELDS = ("rr_mje",)  # empty when the evaluation does not report it


# ----------------------------------------------------------------------------- variants

@dataclass(frozen=True)
class Variant:
    """One trained configuration of the ablation.

    Attributes:
        key: short stable identifier (run folder names, the CSV, ``--only``).
        name: readable name for the report.
        method: ``model.method``; mode: ``input.mode``; two_views: ``input.two_views``.
        consistency: with two views, keep the consistency losses (False: ``loss.consist2d``
            and ``loss.consist3d`` are 0).
        consistency_stage: ``train.consistency_stage``: 1 (from the start, the paper) or 2.
        paper: the paper's FreiHAND CS-MJE (mm) of the matching setting, or None.
        paper_setting: the paper's rectification and the table row that number comes from.
    """

    key: str
    name: str
    method: str
    mode: str
    two_views: bool = False
    consistency: bool = True
    consistency_stage: int = 1
    paper: float | None = None
    paper_setting: str = ""


METHODS = {"two_stage": "two-stage DLT", "root_regression": "root regression",
           "dgp_uniform": "DGP, uniform weights", "dgp": "DGP"}
MODES = {"crop": "no rect", "affine": "affine rect", "perspective": "perspective rect"}
_NO_RECT, _RECT = "none", "affine (Rect)"
# (method, mode) -> (FreiHAND CS-MJE in mm, the paper's rectification, its row in the paper's
# Table 1 (T1) or Table 2 (T2)). The paper's Rect is the affine map: no perspective numbers.
_PAPER = {
    ("two_stage", "crop"): (50.0, _NO_RECT, "T1 baseline+DLT at test only"),
    ("two_stage", "affine"): (48.4, _RECT, "T1 DLT+Rect"),
    ("root_regression", "crop"): (81.3, _NO_RECT, "T1 root regression (E2E)"),
    ("root_regression", "affine"): (52.6, _RECT, "T1 root regression+Rect"),
    ("dgp_uniform", "affine"): (46.6, _RECT, "T2 no weights"),
    ("dgp", "crop"): (49.4, _NO_RECT, "T1 ours without Rect"),
}


def _grid_variant(method: str, mode: str) -> Variant:
    value, rect, row = _PAPER.get((method, mode), (None, "", ""))
    return Variant(key=f"{method}_{mode}", name=f"{METHODS[method]}, {MODES[mode]}",
                   method=method, mode=mode, paper=value,
                   paper_setting=f"{rect}; {row}" if row else "")


VARIANTS: tuple[Variant, ...] = (
    *(_grid_variant(method, mode) for method in METHODS for mode in MODES),
    Variant(key="dgp_full", name="DGP, affine rect, two views (full)", method="dgp",
            mode="affine", two_views=True, paper=46.3,
            paper_setting=f"{_RECT} + E2E, two views; T1/T2 full"),
    Variant(key="dgp_two_views", name="DGP, affine rect, two views, no consistency losses",
            method="dgp", mode="affine", two_views=True, consistency=False),
    Variant(key="dgp_full_stage2", name="DGP, affine rect, two views, consistency in stage 2",
            method="dgp", mode="affine", two_views=True, consistency_stage=2),
)
VARIANT_KEYS = tuple(v.key for v in VARIANTS)
_BY_KEY = {v.key: v for v in VARIANTS}


# ----------------------------------------------------------------------------- budget

@dataclass(frozen=True)
class Budget:
    """What every run of one ablation shares: the base named config and its size."""

    base: str
    steps: int
    train_samples: int
    test_samples: int

    @classmethod
    def of(cls, row: dict) -> Budget:
        """The budget a CSV row was trained with."""
        return cls(row["base"], row["steps"], row["train_samples"], row["test_samples"])

    def describe(self) -> str:
        """One line for people: config, steps, images."""
        return (f"`{self.base}` config, {self.steps} steps, {self.train_samples} training "
                f"images, {self.test_samples} test images")


DEFAULT_BUDGET = Budget(DEFAULT_BASE, DEFAULT_STEPS, DEFAULT_TRAIN_SAMPLES, DEFAULT_TEST_SAMPLES)
QUICK_BUDGET = Budget(QUICK_BASE, QUICK_STEPS, QUICK_TRAIN_SAMPLES, QUICK_TEST_SAMPLES)


def select_budget(rows: Sequence[dict]) -> Budget | None:
    """The most common budget among ``rows`` (ties: the one of the latest row), or None."""
    if not rows:
        return None
    counts = Counter(Budget.of(r) for r in rows)
    latest = {Budget.of(r): i for i, r in enumerate(rows)}
    return max(counts, key=lambda b: (counts[b], latest[b]))


# ----------------------------------------------------------------------------- the CSV

def _format_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _parse_row(cells: list[str]) -> dict:
    """A typed row from the cells of one CSV line; ValueError when malformed."""
    if len(cells) != len(CSV_FIELDS):
        raise ValueError(f"{len(cells)} fields, expected {len(CSV_FIELDS)}")
    row: dict = dict(zip(CSV_FIELDS, cells, strict=True))
    for k in _INT_FIELDS:
        row[k] = int(row[k])
    for k in _FLOAT_FIELDS:
        row[k] = None if row[k] == "" and k in _OPTIONAL_FIELDS else float(row[k])
    if not row["variant"] or not row["base"]:
        raise ValueError("empty variant or base")
    return row


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def append_row(path: str | os.PathLike, row: dict) -> None:
    """Append one result row to the CSV at ``path`` (header first when the file is new).

    The line goes out in a single unbuffered ``write``, then ``fsync``, so a killed process
    leaves either the whole row or (rarely) an incomplete last line, which :func:`read_rows`
    skips; the next row then starts a line of its own.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if os.fstat(fd).st_size == 0:
            writer.writerow(CSV_FIELDS)
        elif not _ends_with_newline(path):  # an incomplete line stays on its own
            buf.write("\n")
        writer.writerow([_format_cell(row.get(k)) for k in CSV_FIELDS])
        data = buf.getvalue().encode("utf-8")
        if os.write(fd, data) != len(data):
            raise OSError(f"{path}: short write while appending a row")
        os.fsync(fd)
    finally:
        os.close(fd)


def read_rows(path: str | os.PathLike) -> list[dict]:
    """The rows of the ablation CSV at ``path`` ([] when it does not exist).

    A malformed line (an incomplete last line of a killed process, a wrong field count or a
    value that does not parse) is skipped with a warning naming its line number.

    Raises:
        ValueError: the file's header is not the ablation's.
    """
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if not lines:
        return []
    if next(csv.reader([lines[0]])) != list(CSV_FIELDS):
        raise ValueError(f"{path}: not an ablation CSV (header {lines[0].strip()!r})")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            if not line.endswith("\n"):
                raise ValueError("incomplete line")
            rows.append(_parse_row(next(csv.reader([line]))))
        except (ValueError, csv.Error) as exc:
            warnings.warn(f"{path}:{number}: ignoring a malformed row ({exc})", stacklevel=2)
    return rows


# ----------------------------------------------------------------------------- statistics

def _mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof=1; None for fewer than two values)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def _fmt_mean_std(values: Sequence[float], digits: int = 1) -> str:
    mean, std = _mean_std(values)
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


HOLDS, WITHIN_SPREAD, DOES_NOT_HOLD = "holds", "within seed spread", "does not hold"
VERDICTS = (HOLDS, WITHIN_SPREAD, DOES_NOT_HOLD)  # the summary's column order


def verdict(diffs: Sequence[float]) -> str:
    """Verdict on the claim ``better < other`` from paired differences ``better - other``.

    ``holds``: the mean difference is negative and larger in size than twice its standard
    error (sample std / sqrt(n)); ``does not hold``: the same with a positive mean;
    ``within seed spread``: otherwise. Needs at least two pairs.
    """
    if len(diffs) < 2:
        raise ValueError(f"diffs: a verdict needs at least 2 paired seeds, got {len(diffs)}")
    mean, std = _mean_std(diffs)
    if abs(mean) > 2.0 * std / math.sqrt(len(diffs)):
        return HOLDS if mean < 0 else DOES_NOT_HOLD
    return WITHIN_SPREAD


# ----------------------------------------------------------------------------- the report

@dataclass(frozen=True)
class Claim:
    """A paper claim as one paired comparison: CS-MJE of ``better`` below ``other``'s."""

    claim: str
    better: str
    other: str
    strict: bool = True  # False: "<=" (a tie counts as the ordering holding)


def _claims() -> list[Claim]:
    out = [Claim("(a) E2E DGP < two-stage DLT", f"dgp_{m}", f"two_stage_{m}") for m in MODES]
    out += [Claim("(b) rectified < not rectified", f"{method}_{m}", f"{method}_crop")
            for method in METHODS for m in MODES if m != "crop"]
    out += [Claim("(c) learned weights ≤ uniform", f"dgp_{m}", f"dgp_uniform_{m}", strict=False)
            for m in MODES]
    out += [Claim("(d) DGP < root regression", f"dgp_{m}", f"root_regression_{m}")
            for m in MODES]
    out.append(Claim("(e) consistency losses help (two views)", "dgp_full", "dgp_two_views"))
    out.append(Claim("(f) full method (two views) < one view", "dgp_full", "dgp_affine"))
    out.append(Claim("(g) consistency from stage 2 helps (two views)", "dgp_full_stage2",
                     "dgp_two_views"))
    out.append(Claim("(h) two views, consistency from stage 2 < one view", "dgp_full_stage2",
                     "dgp_affine"))
    return out


CLAIMS: tuple[Claim, ...] = tuple(_claims())

_INTRO = """\
# Ablation on synthetic hands

The paper's comparisons (Tables 1 and 2: two-stage DLT, root regression, DGP with and without
learned weights, with and without rectification) retrained at one budget on this project's
synthetic hands, over several seeds. Each variant trains the same network from the same
named config; only `model.method`, `input.mode` and, for the two-view rows,
`input.two_views` (and the consistency losses' weights) differ. All variants and seeds share
one rendered training set and one rendered test set, and the test set uses another camera
domain than training (other focal lengths and image sizes).
The seed is `train.seed`: network initialisation, data order and augmentation, so runs with
the same seed are paired. Errors are in mm; the paper's numbers are FreiHAND ones, shown for
orientation only: with synthetic data, a small network and a short budget they are not
expected to match.

Rectification modes: `crop` is no rectification, `affine` is the paper's Rect (the
canonical-camera scale and principal-point map) and `perspective` is this project's own
rectification (a virtual rotation onto the box centre), which the paper does not have.

This page is generated from `benchmarks/results/ablation.csv` by `benchmarks/ablation.py`:

```bash
python -m benchmarks.ablation                    # every (variant, seed) not yet in the CSV
python -m benchmarks.ablation --max-runs 4       # at most 4 new runs, then stop
python -m benchmarks.ablation --only dgp_affine dgp_full --seeds 5
python -m benchmarks.ablation --report           # only rewrite this page
python -m benchmarks.ablation --quick --out /tmp/abl  # smoke test: tiny config, rows in /tmp/abl
```
"""

_USAGE = """\
Default budget: {default}, seeds 0..{last_seed} (`--steps`, `--train-samples`, `--test-samples`; \
`--seeds N` for seeds 0..N-1). Each run trains in its own folder `runs/ablation/<key>_s<seed>` \
(`--out`) and appends one CSV row once evaluated. The command can be stopped at any time: rerun \
it and it skips the rows already in the CSV and resumes an interrupted run from its last \
checkpoint. `seconds` in the CSV counts only the invocation that finished the run.\
"""


def _table(rows: Sequence[dict], all_variants: bool = True) -> list[str]:
    """The per-variant table (one line per variant, in :data:`VARIANTS` order; only those
    with rows unless ``all_variants``)."""
    lines = ["| variant | key | CS-MJE | CS-MVE | PA-MJE | mean-t CS-MJE | seeds "
             "| paper CS-MJE (FreiHAND) | paper's rectification; row |",
             "|---|---|---|---|---|---|---|---|---|"]
    for v in VARIANTS:
        mine = [r for r in rows if r["variant"] == v.key]
        if not mine and not all_variants:
            continue
        paper = "-" if v.paper is None else f"{v.paper:.1f}"
        setting = v.paper_setting or "-"
        if not mine:
            cells = ["no runs yet", "-", "-", "-"]
        else:
            cells = [_fmt_mean_std([r[k] for r in mine])
                     for k in ("cs_mje", "cs_mve", "pa_mje", "baseline_cs_mje")]
        lines.append(f"| {v.name} | `{v.key}` | {' | '.join(cells)} | {len(mine)} | {paper} "
                     f"| {setting} |")
    return lines


def _paired_diffs(claim: Claim, by_seed: dict[str, dict[int, float]]) -> list[float]:
    """CS-MJE differences ``better - other`` over the seeds both variants have."""
    a, b = by_seed.get(claim.better, {}), by_seed.get(claim.other, {})
    return [a[s] - b[s] for s in sorted(set(a) & set(b))]


def _in_order(claim: Claim, diffs: Iterable[float]) -> int:
    """How many of the paired ``diffs`` follow the claim's ordering."""
    return sum(d < 0 if claim.strict else d <= 0 for d in diffs)


def _comparison(claim: Claim, diffs: Sequence[float]) -> str:
    """One table line: the claim's paired CS-MJE differences ``better - other``."""
    pair = f"`{claim.better}` vs `{claim.other}`"
    if len(diffs) < 2:
        return f"| {claim.claim} | {pair} | - | {len(diffs)} paired | needs ≥ 2 paired seeds |"
    return (f"| {claim.claim} | {pair} | {_fmt_mean_std(diffs, 2)} "
            f"| {_in_order(claim, diffs)}/{len(diffs)} | {verdict(diffs)} |")


def _claim_summary(paired: dict[Claim, list[float]],
                   by_seed: dict[str, dict[int, float]]) -> list[str]:
    """One line per claim over its pairs with at least two paired seeds: the pairs' verdicts,
    the seeds in order, the mean difference and that mean over the claim's seed spread (the
    median over its variants of their CS-MJE sample std across seeds)."""
    lines = ["| claim | pairs: holds / within seed spread / does not hold | seeds in order "
             "| mean Δ CS-MJE (mm) | seed spread (mm) | size of mean Δ / spread |",
             "|---|---|---|---|---|---|"]
    for name in dict.fromkeys(c.claim for c in CLAIMS):
        verdicts: Counter[str] = Counter()
        diffs, in_order, keys = [], 0, set()
        for claim in (c for c in CLAIMS if c.claim == name):
            d = paired[claim]
            if len(d) < 2:
                continue
            verdicts[verdict(d)] += 1
            diffs += d
            in_order += _in_order(claim, d)
            keys |= {claim.better, claim.other}
        if not diffs:
            lines.append(f"| {name} | no pair with ≥ 2 paired seeds | - | - | - | - |")
            continue
        mean = statistics.fmean(diffs)
        spread = statistics.median(statistics.stdev(by_seed[k].values()) for k in sorted(keys))
        ratio = f"{abs(mean) / spread:.2f}" if spread > 0 else "-"
        counts = " / ".join(str(verdicts[v]) for v in VERDICTS)
        lines.append(f"| {name} | {counts} | {in_order}/{len(diffs)} | {mean:+.1f} "
                     f"| {spread:.1f} | {ratio} |")
    return lines


def _latest_per_run(rows: Iterable[dict]) -> list[dict]:
    """One row per (variant, seed): the last one in the CSV."""
    return list({(r["variant"], r["seed"]): r for r in rows}.values())


_RULE = """\
The paper's four claims, each as CS-MJE differences `first - second` between runs of the same \
seed (negative: the claim's ordering); "in order" counts the seeds where the ordering holds. \
Verdict: **holds** when the mean difference is negative and larger in size than twice its \
standard error (sample std / √n), **does not hold** when it is positive and as large, \
**within seed spread** otherwise (for (c), a tie also agrees with the claim). With a few seeds \
this is a rough screen, not a significance test. A comparison needs at least two paired seeds.\
"""

_SUMMARY = """\
By claim, over the pairs above that have at least two paired seeds: how many pairs get each \
verdict, how many paired seeds follow the ordering, the mean of all their differences, and \
that mean against the seed spread (the median, over the claim's variants, of each variant's \
CS-MJE standard deviation across seeds; a ratio below 1 is a gap smaller than the spread).\
"""

_NOTES = (
    "The paper's \"Rect\" is the affine map, so its numbers sit on `affine` rows only; "
    "`perspective` rows have none.",
    "Doubtful mapping: the paper does not say whether its DGP rows without Rect (49.4) and "
    "without weights (46.6) were trained with two views like its full model; here only "
    "`dgp_full` and `dgp_two_views` use two views.",
    "Table 2's \"no DGP\" rows (48.9, 50.2) are not used: it is unclear which of the "
    "two-stage or root-regression settings they match.",
    "The `affine` rows train with the paper's jitter (`input.jitter=crop`: the crop is moved "
    "and scaled before rectification, so the network always sees the canonical intrinsics); "
    "the `perspective` rows keep the base config's zoom jitter (the project's pairing) and "
    "`crop` rows have no intrinsics to keep. Every row keeps the base config's "
    "`crop_first=false`.",
    "With the affine map (`K_c K⁻¹`, whatever the box) and `crop_first=false`, the crop jitter "
    "changes nothing the network sees: the `affine` rows train without shift and scale "
    "augmentation, and the two views of `dgp_full` and `dgp_two_views` share their geometry "
    "(T₁→₂ = R₁₂ = I) and differ only in colour and blur. The consistency losses of "
    "`dgp_full` then ask the network for invariance to those photometric changes; "
    "`dgp_two_views` trains the same two views without them (claim (e)).",
    "Why `dgp_full` trails: with views of the same geometry, an output that ignores the image "
    "satisfies both consistency losses, and their L1 terms keep a full-size gradient however "
    "small the disagreement, against supervised terms averaged over the two views. From "
    "scratch, the network stays near that input-independent output: in the seed-0 logs "
    "(1600 steps) its 2D keypoint loss stays at 0.18-0.19 of the input size from the first "
    "epoch to the last and its vertex loss at 0.15, while one view brings them from 0.19 to "
    "0.11 and from 0.17 to 0.13, and the views trained without the consistency losses "
    "(`dgp_two_views`) learn like one view. It is not the budget: at 1600 steps one view is "
    "still ahead on every seed. The losses are the supplement's (unit tests with known "
    "answers in `tests/handdgp_models/test_losses.py`), and the pairing maps each view's "
    "ground truth exactly onto the other's (`test_pipeline.py`).",
    "The remedy, `dgp_full_stage2` (`train.consistency_stage=2`): the consistency terms join "
    "only in the end-to-end stage, once the per-view terms have made the features depend on "
    "the image; the keypoint loss then falls as with one view in stage 1 and keeps falling "
    "with the consistency terms (claims (g) and (h)). The paper starts from ImageNet weights, "
    "whose features already depend on the image; the ablation trains from scratch, which is "
    "where the first-step setting fails. "
    "`train.consistency_stage` stays 1 (the paper's) by default.",
)


def _fill(text: str, prefix: str = "") -> str:
    return textwrap.fill(text, _WIDTH, initial_indent=prefix,
                         subsequent_indent=" " * len(prefix))


def _results_intro(budget: Budget, shown: Sequence[dict], others: int) -> str:
    """The paragraph above the table: budget, what the cells are, other budgets, commits."""
    text = (f"Budget of the rows below: {budget.describe()}. Mean ± sample standard deviation "
            "over seeds (no ± with one seed); mean-t is the trivial baseline that places each "
            "predicted root-relative hand at the mean training translation.")
    if others:
        text += (f" The CSV holds {others} more rows at other budgets ([below](#other-budgets)).")
    commits = Counter(r["commit"] for r in shown)
    if commits:
        text += " Code: " + ", ".join(f"`{c}` ({n} rows)" for c, n in commits.items()) + "."
    return _fill(text)


def _by_seed(rows: Iterable[dict]) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for r in rows:
        out.setdefault(r["variant"], {})[r["seed"]] = r["cs_mje"]
    return out


def _other_budgets(rows: Sequence[dict], shown: Budget) -> list[str]:
    """A section per other budget in the CSV: its table (variants with rows) and the paired
    comparisons that have at least two paired seeds there."""
    lines: list[str] = []
    for budget in sorted({Budget.of(r) for r in rows} - {shown},
                         key=lambda b: (b.steps, b.train_samples, b.base)):
        mine = _latest_per_run(r for r in rows
                               if Budget.of(r) == budget and r["variant"] in _BY_KEY)
        if not mine:
            continue
        by_seed = _by_seed(mine)
        paired = {c: d for c in CLAIMS if len(d := _paired_diffs(c, by_seed)) >= 2}
        lines += [f"### {budget.describe()}", "", *_table(mine, all_variants=False), ""]
        if paired:
            lines += ["| claim | pair | Δ CS-MJE (mm) | in order | verdict |",
                      "|---|---|---|---|---|", *(_comparison(c, d) for c, d in paired.items()),
                      ""]
    return ["## Other budgets", "", *lines] if lines else []


def format_report(rows: Sequence[dict], budget: Budget | None = None) -> str:
    """The markdown report of the ablation CSV ``rows`` (as :func:`read_rows` gives them).

    Args:
        rows: result rows, any budgets and variants.
        budget: the budget of the main tables; None picks the most common one among ``rows``.
            The rows of other budgets get a table each at the end.
    """
    budget = budget or select_budget(rows) or DEFAULT_BUDGET
    shown = _latest_per_run(r for r in rows if Budget.of(r) == budget and r["variant"] in _BY_KEY)
    others = sum(Budget.of(r) != budget for r in rows)
    by_seed = _by_seed(shown)
    paired = {c: _paired_diffs(c, by_seed) for c in CLAIMS}
    usage = _USAGE.format(default=DEFAULT_BUDGET.describe(), last_seed=DEFAULT_SEEDS - 1)
    lines = [_INTRO, _fill(usage), "", "## Results", "", _results_intro(budget, shown, others),
             "", *_table(shown), "",
             "## Paired comparisons", "", _fill(_RULE), "",
             "| claim | pair | Δ CS-MJE (mm) | in order | verdict |", "|---|---|---|---|---|",
             *(_comparison(c, d) for c, d in paired.items()), "",
             _fill(_SUMMARY), "", *_claim_summary(paired, by_seed), "",
             *_other_budgets(rows, budget),
             "## Notes", "", *(_fill(n, "- ") for n in _NOTES), ""]
    return "\n".join(lines)


def write_report(csv_path: str | os.PathLike, doc_path: str | os.PathLike,
                 budget: Budget | None = None) -> str:
    """Read the CSV, write the markdown report to ``doc_path`` (atomically) and return it."""
    from handdgp_models.files import atomic_write

    text = format_report(read_rows(csv_path), budget)
    with atomic_write(doc_path, "w") as f:
        f.write(text)
    return text


# ----------------------------------------------------------------------------- running

def git_commit() -> str:
    """The short commit hash of the checkout, or ``"unknown"``."""
    try:
        res = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                             capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return res.stdout.strip() or "unknown"


def run_config(variant: Variant, seed: int, budget: Budget, cache_dir: Path, threads: int = 0):
    """The run config of one (variant, seed): the budget's base config and overrides."""
    from handdgp_models.config import load_config

    overrides = []
    if variant.mode == "affine":  # the paper's Rect: the network always sees K_c
        overrides.append(f"input.jitter={json.dumps(PAPER_JITTER)}")
    if variant.two_views and not variant.consistency:
        overrides += ["loss.consist2d=0", "loss.consist3d=0"]
    if variant.consistency_stage != 1:
        overrides.append(f"train.consistency_stage={variant.consistency_stage}")
    return load_config(budget.base, [
        *overrides,
        f"model.method={json.dumps(variant.method)}", f"input.mode={json.dumps(variant.mode)}",
        f"input.two_views={json.dumps(variant.two_views)}", f"train.steps={budget.steps}",
        f"train.seed={seed}", f"train.threads={threads}",
        f"data.train.0.samples={budget.train_samples}",
        f"data.test.samples={budget.test_samples}",
        f"cache_dir={json.dumps(str(cache_dir))}", "eval.overlays=0"])


def _claim_run_dir(run_dir: Path, budget: Budget) -> None:
    """Tie ``run_dir`` to ``budget``: a checkpoint of another (or unknown) budget is removed,
    so training starts over instead of resuming it."""
    record = run_dir / BUDGET_FILE
    want = asdict(budget)
    try:
        if json.loads(record.read_text()) == want:
            return
    except (OSError, ValueError):  # no record (a new folder) or an unreadable one
        pass
    for name in ("checkpoint.pt", "log.jsonl"):
        if (run_dir / name).is_file():
            print(f"  {run_dir}: {name} is of another budget; starting over", flush=True)
            (run_dir / name).unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    from handdgp_models.files import write_json

    write_json(record, want)


def run_one(variant: Variant, seed: int, budget: Budget, out: Path, threads: int = 0) -> dict:
    """Train (resuming) and evaluate one (variant, seed); return its CSV row."""
    from handdgp_models.engine import train_and_evaluate

    t0 = time.time()
    run_dir = out / f"{variant.key}_s{seed}"
    cfg = run_config(variant, seed, budget, out / "cache", threads)
    _claim_run_dir(run_dir, budget)
    _, evaluation = train_and_evaluate(cfg, run_dir, progress=False)
    res = evaluation.result
    metrics = res["model"]
    return {"variant": variant.key, "seed": seed, **asdict(budget),
            **{k: metrics.get(k) for k in _METRICS},
            "baseline_cs_mje": res["baseline_mean_t"]["cs_mje"],
            "seconds": time.time() - t0, "commit": git_commit(),
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def pending_runs(keys: Sequence[str], seeds: int, budget: Budget,
                 rows: Sequence[dict]) -> list[tuple[Variant, int]]:
    """The (variant, seed) pairs of ``keys`` x ``range(seeds)`` without a row at ``budget``,
    seed by seed (every variant of seed 0 first, so a partial ablation has a full table)."""
    done = {(r["variant"], r["seed"]) for r in rows if Budget.of(r) == budget}
    return [(_BY_KEY[k], s) for s in range(seeds) for k in keys if (k, s) not in done]


def run_ablation(out: Path, csv_path: Path, budget: Budget, keys: Sequence[str], seeds: int,
                 max_runs: int | None = None, threads: int = 0) -> int:
    """Do the missing runs (at most ``max_runs``), appending a row after each; return how
    many were done."""
    todo = pending_runs(keys, seeds, budget, read_rows(csv_path))
    total = len(todo)
    if max_runs is not None:
        todo = todo[:max_runs]
    print(f"ablation: {total} runs missing at {budget.describe()}; doing {len(todo)} now "
          f"(rows -> {csv_path})", flush=True)
    t0 = time.time()
    for i, (variant, seed) in enumerate(todo, start=1):
        print(f"[{i}/{len(todo)}] {variant.key}_s{seed}: {variant.name}, seed {seed}",
              flush=True)
        row = run_one(variant, seed, budget, out, threads)
        append_row(csv_path, row)
        print(f"  cs_mje {row['cs_mje']:.1f} mm in {row['seconds']:.0f} s; "
              f"{total - i} left; elapsed {time.time() - t0:.0f} s", flush=True)
    return len(todo)


# ----------------------------------------------------------------------------- CLI

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"run folders and the shared rendered data ({DEFAULT_OUT})")
    p.add_argument("--csv", type=Path, default=None,
                   help=f"results CSV ({DEFAULT_CSV.relative_to(REPO)}; --quick: OUT/ablation.csv)")
    p.add_argument("--doc", type=Path, default=None,
                   help=f"report written at the end ({DEFAULT_DOC.relative_to(REPO)}; --quick: "
                        "OUT/ablation.md)")
    p.add_argument("--steps", type=int, default=None,
                   help=f"training steps per run ({DEFAULT_STEPS}; --quick {QUICK_STEPS})")
    p.add_argument("--train-samples", type=int, default=None,
                   help=f"rendered training images ({DEFAULT_TRAIN_SAMPLES}; --quick "
                        f"{QUICK_TRAIN_SAMPLES})")
    p.add_argument("--test-samples", type=int, default=None,
                   help=f"rendered test images ({DEFAULT_TEST_SAMPLES}; --quick "
                        f"{QUICK_TEST_SAMPLES})")
    p.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, metavar="N",
                   help=f"seeds 0..N-1 per variant ({DEFAULT_SEEDS})")
    p.add_argument("--only", nargs="+", metavar="KEY", choices=VARIANT_KEYS,
                   help=f"only these variants: {', '.join(VARIANT_KEYS)}")
    p.add_argument("--max-runs", type=int, default=None, metavar="N",
                   help="do at most N new runs, then stop (default: all missing ones)")
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="torch threads per run (0: the trainer chooses from the free cores)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke test: the {QUICK_BASE} config at toy sizes")
    p.add_argument("--report", action="store_true",
                   help="only write the report from the CSV (budget: the options given, else "
                        "the most common one in the CSV)")
    return p


def _budget(args: argparse.Namespace) -> Budget:
    base = QUICK_BUDGET if args.quick else DEFAULT_BUDGET
    return Budget(base.base,
                  base.steps if args.steps is None else args.steps,
                  base.train_samples if args.train_samples is None else args.train_samples,
                  base.test_samples if args.test_samples is None else args.test_samples)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    p = _parser()
    args = p.parse_args(argv)
    budget = _budget(args)
    if min(budget.steps, budget.train_samples, budget.test_samples, args.seeds) <= 0:
        p.error("--steps, --train-samples, --test-samples and --seeds must be positive")
    if args.max_runs is not None and args.max_runs < 0:
        p.error("--max-runs must be >= 0")
    csv_path = args.csv or (args.out / "ablation.csv" if args.quick else DEFAULT_CSV)
    doc_path = args.doc or (args.out / "ablation.md" if args.quick else DEFAULT_DOC)
    if args.report:
        given = args.quick or any(v is not None for v in (
            args.steps, args.train_samples, args.test_samples))
        write_report(csv_path, doc_path, budget if given else None)
        print(f"report -> {doc_path}")
        return 0
    status = 0
    try:
        run_ablation(args.out, csv_path, budget, args.only or VARIANT_KEYS, args.seeds,
                     args.max_runs, args.threads)
    except KeyboardInterrupt:
        print("\ninterrupted: rerun the same command to resume", file=sys.stderr)
        status = 130
    finally:
        write_report(csv_path, doc_path, budget)
        print(f"report -> {doc_path}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
