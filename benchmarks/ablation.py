"""Ablation on synthetic hands: the paper's Table 1/2 comparisons at equal budgets.

Two-stage DLT vs end-to-end DGP vs root regression, with and without rectification, with
and without learned weights. Every variant trains the same network for the same number of
steps on one shared rendered dataset and is evaluated on the test cameras.

    python -m benchmarks.ablation --out runs/ablation    # default budget (about 45 min, 2 cores)
    python -m benchmarks.ablation --out /tmp/abl --quick # smoke test (about a minute)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

# (name, method, rectification mode, paper FreiHAND CS-MJE in mm or None)
VARIANTS = [
    ("root regression, no rect", "root_regression", "crop", 81.3),
    ("root regression + rect", "root_regression", "perspective", 52.6),
    ("two-stage DLT, no rect", "two_stage", "crop", 50.0),
    ("two-stage DLT + rect", "two_stage", "perspective", 48.4),
    ("DGP e2e, no rect", "dgp", "crop", 49.4),
    ("DGP e2e + affine rect", "dgp", "affine", None),
    ("DGP e2e + rect, no weights", "dgp_uniform", "perspective", 46.6),
    ("DGP e2e + rect (full)", "dgp", "perspective", 46.3),
]


def run(out: Path, steps: int, seeds: int, quick: bool, train_samples: int,
        test_samples: int, only: list[str] | None = None) -> list[dict]:
    from handdgp_models.build import (
        build_hand,
        build_test_data,
        build_train_data,
        model_from_checkpoint,
    )
    from handdgp_models.config import load_config
    from handdgp_models.evaluate import evaluate
    from handdgp_models.train import train

    base = "tiny" if quick else "small"
    data_dir = out / "data"
    rows = []
    for name, method, mode, paper in VARIANTS:
        if only and method not in only:
            continue
        results = []
        for seed in range(seeds):
            run_dir = out / f"{method}_{mode}_s{seed}"
            cfg = load_config(base, [
                f"model.method={json.dumps(method)}", f"input.mode={json.dumps(mode)}",
                f"train.steps={steps}", f"train.seed={seed}",
                f"data.train.0.samples={train_samples}", f"data.test.samples={test_samples}",
                f"data.cache_dir={json.dumps(str(data_dir))}",
                f"train.checkpoint_every={max(steps, 1)}", "eval.overlays=0"])
            t0 = time.time()
            train(cfg, run_dir, progress=False)
            model, _ = model_from_checkpoint(run_dir / "checkpoint.pt")
            hand = build_hand(cfg)
            train_ds = build_train_data(cfg, run_dir, hand)
            test_ds = build_test_data(cfg, run_dir, hand)
            res = evaluate(model, cfg, test_ds, run_dir, train_ds=train_ds)
            res["seconds"] = time.time() - t0
            results.append(res)
        row = {"name": name, "paper": paper,
               "seconds": float(np.sum([r["seconds"] for r in results]))}
        for key in ("cs_mje", "cs_mve", "pa_mje"):
            vals = [r["model"][key] for r in results]
            row[key] = (float(np.mean(vals)), float(np.std(vals)))
        row["baseline"] = float(np.mean([r["baseline_mean_t"]["cs_mje"] for r in results]))
        rows.append(row)
        print(f"  done: {name} ({row['seconds']:.0f} s)", flush=True)
    return rows


def format_table(rows: list[dict], seeds: int) -> str:
    def cell(v: tuple[float, float]) -> str:
        return f"{v[0]:.1f}" if seeds == 1 else f"{v[0]:.1f} ± {v[1]:.1f}"

    head = (f"{'variant':<28} {'CS-MJE':>14} {'CS-MVE':>14} {'PA-MJE':>14} "
            f"{'mean-t CS-MJE':>14} {'paper CS-MJE':>13}")
    lines = [head, "-" * len(head)]
    for r in rows:
        paper = "-" if r["paper"] is None else f"{r['paper']:.1f}"
        lines.append(f"{r['name']:<28} {cell(r['cs_mje']):>14} {cell(r['cs_mve']):>14} "
                     f"{cell(r['pa_mje']):>14} {r['baseline']:>14.1f} {paper:>13}")
    lines.append("Errors in mm on synthetic test cameras; 'paper' = FreiHAND numbers "
                 "(Tables 1-2) for reference only.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--steps", type=int, default=None, help="training steps per run (500)")
    p.add_argument("--seeds", type=int, default=1, help="seeds per variant")
    p.add_argument("--train-samples", type=int, default=None)
    p.add_argument("--test-samples", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="tiny network, 2 steps: smoke test")
    p.add_argument("--only", nargs="*", help="restrict to these methods")
    args = p.parse_args(argv)
    steps = args.steps if args.steps is not None else (2 if args.quick else 500)
    n_train = args.train_samples or (8 if args.quick else 1000)
    n_test = args.test_samples or (4 if args.quick else 200)
    if steps <= 0 or args.seeds <= 0:
        p.error("--steps and --seeds must be positive")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    rows = run(out, steps, args.seeds, args.quick, n_train, n_test, args.only)
    table = format_table(rows, args.seeds)
    print(f"\nsteps={steps} seeds={args.seeds} train={n_train} test={n_test} "
          f"total {time.time() - t0:.0f} s")
    print(table)
    (out / "ablation.md").write_text(table + "\n")
    (out / "ablation.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
