"""Evaluation: predictions over a test set, the benchmark's ``pred.json``, metrics, plots.

Inputs to the network come from the dataset's own protocol (box, intrinsics) through the
deterministic input pipeline; ground truth, where the split has it, is used only to score.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .data.loader import make_loader
from .files import write_json
from .layout import RunFolder
from .model import HandDGP
from .run import Run

__all__ = ["Evaluation", "evaluate", "mean_translation", "predict_dataset", "write_pred"]


@torch.no_grad()
def predict_dataset(model: HandDGP, dataset: Dataset, pipeline, batch_size: int = 32,
                    progress: bool = False, device: torch.device | str = "cpu",
                    num_workers: int = 0) -> dict[str, np.ndarray]:
    """Run ``model`` over ``pipeline(dataset[i])`` (a deterministic pipeline), in order.

    Returns numpy arrays in the original camera: ``joints`` (B, K, 3) / ``verts`` (B, V, 3)
    predictions in metres (K keypoints of the model's template), ``joints_rel``
    (root-relative), ``gt_joints``/``gt_verts`` (when the split has ground truth),
    ``gt_eval_joints`` (a benchmark's own joints, e.g. Human3.6M's 17, when the split has
    them), ``valid``, ``weights`` (B, K), ``kp2d`` (rectified pixels); and ``images_per_s``
    (a float) over the whole loop.
    """
    from tqdm import tqdm

    loader = make_loader(dataset, pipeline, batch_size, shuffle=False, num_workers=num_workers)
    model.eval()
    acc: dict[str, list] = {}
    t0, n = time.perf_counter(), 0
    for batch in tqdm(loader, desc="eval", disable=not progress, leave=False, unit="batch"):
        image, K, R = (batch[k].to(device) for k in ("image", "K", "R"))
        out = model(image, K, R)
        items = {"joints": out["joints_orig"], "verts": out["verts_orig"],
                 "joints_rel": out["joints_rel"] @ R, "valid": out["valid"],
                 "weights": out["weights"], "kp2d": out["kp2d"]}
        if "joints3d_orig" in batch and "verts3d" in batch:
            items["gt_joints"] = batch["joints3d_orig"]
            items["gt_verts"] = batch["verts3d"] @ batch["R"]
        if "eval_joints3d" in batch:
            items["gt_eval_joints"] = batch["eval_joints3d"]
        for k, v in items.items():
            acc.setdefault(k, []).append(v.cpu().numpy())
        n += image.shape[0]
    result: dict = {k: np.concatenate(v) for k, v in acc.items()}
    result["images_per_s"] = n / max(time.perf_counter() - t0, 1e-9)
    return result


def write_pred(path: str | os.PathLike, dataset_name: str, joints: np.ndarray,
               verts: np.ndarray) -> None:
    """The benchmark's submission file: HO3D-v2's format for ``"ho3d"``, the template's own
    ``[joints, verts]`` for Human3.6M (no submission server), else FreiHAND's."""
    from .submission import write_freihand_pred, write_ho3d_pred, write_mesh_pred

    if dataset_name == "ho3d":
        write_ho3d_pred(path, joints, verts)
    elif dataset_name == "h36m":
        write_mesh_pred(path, joints, verts)
    else:
        write_freihand_pred(path, joints, verts)


def mean_translation(dataset: Dataset, root: int = 0) -> np.ndarray:
    """Mean root keypoint position over a dataset's ground truth, (3,) metres."""
    return np.mean([np.asarray(dataset[i]["joints3d"])[root] for i in range(len(dataset))],
                   axis=0)


@dataclass
class Evaluation:
    """What :func:`evaluate` computed and wrote.

    Attributes:
        result: the content of ``metrics.json``: ``samples``, ``invalid``, ``images_per_s``,
            and with ground truth ``model`` (metrics) and optionally ``baseline_mean_t``.
        folder: where it was written.
        written: every file written, in order (``pred.json``, then with ground truth
            ``pck.png``, ``metrics.md``; the overlays; the contact sheet; ``metrics.json``).
        overlays: the overlay panels among them (prediction, ground truth, top view).
        contact_sheet: the panels of the worst and the median test samples by CS-MJE (with
            ground truth), or None.
    """

    result: dict
    folder: RunFolder
    written: list[Path] = field(default_factory=list)
    overlays: list[Path] = field(default_factory=list)
    contact_sheet: Path | None = None


def _score(pred: dict, run: Run, root: int, baseline: bool) -> tuple[dict, dict]:
    """Metrics of the model (and of the mean-translation baseline) and their PCK curves."""
    from .body import H36M_ROOT_INDEX
    from .metrics import compute_metrics, pck_curve

    scores = {"model": compute_metrics(pred["joints"], pred["gt_joints"], pred["verts"],
                                       pred["gt_verts"], root=root)}
    regressor = run.eval_regressor if "gt_eval_joints" in pred else None
    if regressor is not None:
        joints17 = np.einsum("jv,bvc->bjc", regressor, pred["verts"])
        m17 = compute_metrics(joints17, pred["gt_eval_joints"], root=H36M_ROOT_INDEX)
        scores["model"].update({f"h36m_{k}": v for k, v in m17.items()})
    err = np.linalg.norm(pred["joints"] - pred["gt_joints"], axis=-1) * 1000
    curves = {"HandDGP": pck_curve(err)}
    if baseline:
        t = mean_translation(run.train_data, root)
        joints_b = pred["joints_rel"] + t
        verts_b = pred["verts"] - pred["joints"][:, root:root + 1] + t
        scores["baseline_mean_t"] = compute_metrics(joints_b, pred["gt_joints"], verts_b,
                                                    pred["gt_verts"], root=root)
        err_b = np.linalg.norm(joints_b - pred["gt_joints"], axis=-1) * 1000
        curves["mean translation"] = pck_curve(err_b)
    return scores, curves


def _panel(run: Run, pred: dict, i: int, faces: np.ndarray, root: int) -> np.ndarray:
    """Test sample ``i``'s prediction beside its ground truth, titled with its errors."""
    from .viz import comparison_panel

    sample = run.test_data[i]
    gt = None
    title = f"test {i}"
    if "gt_joints" in pred:
        gt = (pred["gt_verts"][i], pred["gt_joints"][i])
        err = np.linalg.norm(pred["joints"][i] - gt[1], axis=-1).mean() * 1000
        d = (pred["joints"][i][root] - gt[1][root]) * 1000
        title += (f"   CS-MJE {err:.0f} mm   root {np.linalg.norm(d):.0f} mm "
                  f"(depth {d[2]:+.0f} mm)")
    return comparison_panel(sample["image"], sample["K"], (pred["verts"][i], pred["joints"][i]),
                            gt, faces, run.template.bones, title, root=root)


def _write_overlays(ev: Evaluation, run: Run, pred: dict, faces: np.ndarray,
                    root: int) -> None:
    """The first ``eval.overlays`` test samples' panels, and with ground truth the contact
    sheet of the ``eval.contact_sheet`` worst and median samples by CS-MJE."""
    import cv2

    from .viz import contact_sheet

    count = min(run.config.eval.overlays, len(pred["joints"]))
    if count:
        ev.folder.overlays.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        path = ev.folder.overlay(i)
        cv2.imwrite(str(path), _panel(run, pred, i, faces, root)[..., ::-1])
        ev.overlays.append(path)
        ev.written.append(path)
    n = min(run.config.eval.contact_sheet, len(pred["joints"]))
    if "gt_joints" not in pred or n == 0:
        return
    err = np.linalg.norm(pred["joints"] - pred["gt_joints"], axis=-1).mean(1)
    order = np.argsort(-err, kind="stable")
    mid = max(0, min(len(order) // 2 - n // 2, len(order) - n))
    groups = {f"worst {n} by CS-MJE": order[:n], f"median {n} by CS-MJE": order[mid:mid + n]}
    sheet = contact_sheet({k: [_panel(run, pred, int(i), faces, root) for i in v]
                           for k, v in groups.items()})
    cv2.imwrite(str(ev.folder.contact_sheet), sheet[..., ::-1])
    ev.contact_sheet = ev.folder.contact_sheet
    ev.written.append(ev.folder.contact_sheet)


def evaluate(model: HandDGP, run: Run, out_dir: str | os.PathLike, *, baseline: bool = False,
             progress: bool = False, device: torch.device | str = "cpu") -> Evaluation:
    """Predict the run's test set and write ``pred.json`` (the benchmark's format) into
    ``out_dir``; with ground truth also ``metrics.json``, ``metrics.md``, ``pck.png`` and
    ``overlays/``.

    Args:
        model: the network; run: its :class:`~handdgp_models.run.Run` (test set, pipeline,
            template, evaluation settings); the test set's ``name`` (``"freihand"``,
            ``"ho3d"``, ``"h36m"``, synthetic) picks the ``pred.json`` format.
        baseline: also score the trivial baseline that places the model's root-relative
            prediction at the mean translation of the run's training set
            (``baseline_mean_t``).

    Returns:
        The :class:`Evaluation`: ``result`` holds ``samples``, ``invalid``, ``images_per_s``,
        and with ground truth ``model`` (metrics) and ``baseline_mean_t``. For bodies with
        ``body.h36m_regressor`` the model's metrics also hold ``h36m_cs_mje``,
        ``h36m_pa_mje``, ``h36m_rr_mje``, ``h36m_auc_cs_joints`` and ``h36m_auc_pa_joints``:
        Human3.6M's 17 joints regressed from the predicted mesh against the motion-capture
        joints.
    """
    from .report import metric_columns, metrics_table
    from .viz import plot_pck

    ev = Evaluation({}, RunFolder(out_dir))
    ev.folder.root.mkdir(parents=True, exist_ok=True)
    cfg, test_ds = run.config, run.test_data
    pred = predict_dataset(model, test_ds, run.pipeline(train=False), cfg.eval.batch_size,
                           progress, device, cfg.data.num_workers)
    write_pred(ev.folder.pred, getattr(test_ds, "name", "synthetic"), pred["joints"],
               pred["verts"])
    ev.written.append(ev.folder.pred)
    ev.result = {"samples": int(len(pred["joints"])), "invalid": int((~pred["valid"]).sum()),
                 "images_per_s": round(float(pred["images_per_s"]), 2)}
    if "gt_joints" in pred:
        scores, curves = _score(pred, run, model.root_index, baseline)
        ev.result.update(scores)
        plot_pck(curves, ev.folder.pck)
        ev.folder.metrics_table.write_text(metrics_table(metric_columns(scores)) + "\n")
        ev.written += [ev.folder.pck, ev.folder.metrics_table]
    _write_overlays(ev, run, pred, model.faces.cpu().numpy(), model.root_index)
    write_json(ev.folder.metrics, ev.result, indent=2, nan_as_null=True)
    ev.written.append(ev.folder.metrics)
    return ev
