"""Markdown report of an evaluation (metrics table against the trivial baseline)."""

from __future__ import annotations

from pathlib import Path

from .layout import RunFolder

__all__ = ["ROWS", "metric_columns", "metrics_table", "write_report"]

ROWS = [("cs_mje", "CS-MJE (mm)"), ("cs_mve", "CS-MVE (mm)"), ("pa_mje", "PA-MJE (mm)"),
        ("pa_mve", "PA-MVE (mm)"), ("rr_mje", "RR-MJE (mm)"), ("auc_cs_joints", "AUC CS joints"),
        ("auc_cs_verts", "AUC CS verts"), ("auc_pa_joints", "AUC PA joints"),
        ("auc_pa_verts", "AUC PA verts"), ("f5", "F@5 mm"), ("f15", "F@15 mm"),
        ("h36m_cs_mje", "CS-MJE H36M 17 joints (mm)"),
        ("h36m_pa_mje", "PA-MJE H36M 17 joints (mm)"),
        ("h36m_rr_mje", "RR-MJE H36M 17 joints (mm)")]


def metrics_table(columns: dict[str, dict]) -> str:
    """A markdown table, one row per metric that some column has, one column per
    ``{name: metrics}``."""
    names = list(columns)
    lines = ["| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for key, label in ROWS:
        if all(columns[n].get(key) is None for n in names):
            continue
        cells = []
        for n in names:
            v = columns[n].get(key)
            cells.append("-" if v is None else (f"{v:.1f}" if "(mm)" in label else f"{v:.3f}"))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def metric_columns(result: dict) -> dict[str, dict]:
    """The table columns of an evaluation result: the model, and the mean-translation
    baseline when it was scored."""
    cols = {"HandDGP": result["model"]}
    if "baseline_mean_t" in result:
        cols["mean training translation"] = result["baseline_mean_t"]
    return cols


def write_report(folder: RunFolder, evaluation, cfg, train_summary: dict) -> Path:
    """Write the main job's ``report.md`` into the run ``folder`` and return its path.

    Args:
        evaluation: the :class:`~handdgp_models.evaluate.Evaluation` of the run (its metrics,
            PCK plot and overlays are shown).
        cfg: the run config; train_summary: the trainer's summary.
    """
    result = evaluation.result
    m, t = cfg.model, cfg.train
    n_train = sum(s.samples or 0 for s in cfg.data.train)
    text = [
        "# HandDGP on synthetic hands",
        "",
        f"Model: {m.backbone} ({m.decoder} decoder), input "
        f"{m.input_size} px, method `{m.method}`, rectification `{cfg.input.mode}`. "
        f"Trained {train_summary.get('step')} steps of batch {t.batch_size} on {n_train} "
        f"synthetic images (train cameras) in "
        f"{train_summary.get('seconds', 0):.0f} s; evaluated on {result['samples']} images "
        f"rendered with different cameras (test cameras).",
        "",
        metrics_table(metric_columns(result)),
        "",
        "The baseline places the model's own root-relative prediction at the mean training "
        "root translation: the gap in CS-MJE is what the in-network DGP solve contributes.",
        f"Degenerate DGP systems at test time: {result['invalid']}; skipped training steps: "
        f"{train_summary.get('skipped', 0)}.",
        "",
        f"![PCK]({folder.relative(folder.pck)})",
        "",
    ]
    if evaluation.overlays or evaluation.contact_sheet:
        text += [
            "Each panel shows a test image with the predicted mesh shaded in orange, the same "
            "image with the ground-truth mesh in green, and both meshes seen from above (the "
            "camera at the bottom, depth growing upwards, a 5 cm bar), their roots joined by a "
            "white line: a depth error shows as a vertical gap. The title gives the sample's "
            "CS-MJE and root error.", ""]
    if evaluation.contact_sheet is not None:
        text += ["The worst and the median test samples by CS-MJE:", "",
                 f"![contact sheet]({folder.relative(evaluation.contact_sheet)})", "",
                 "The first test samples:", ""]
    text += [f"![overlay]({folder.relative(p)})" for p in evaluation.overlays]
    folder.report.write_text("\n".join(text) + "\n")
    return folder.report
