"""Evaluation: predictions over a test set, the benchmark's ``pred.json``, metrics, plots.

Inputs to the network come from the dataset's own protocol (box, intrinsics) through the
deterministic input pipeline; ground truth, where the split has it, is used only to score.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .files import write_json
from .model import HandDGP

__all__ = ["evaluate", "mean_translation", "predict_dataset", "render_overlay", "write_pred"]


@torch.no_grad()
def predict_dataset(model: HandDGP, dataset: Dataset, pipeline, batch_size: int = 32,
                    progress: bool = False, device: torch.device | str = "cpu",
                    num_workers: int = 0) -> dict[str, np.ndarray]:
    """Run ``model`` over ``pipeline(dataset[i])`` (a deterministic pipeline), in order.

    Returns numpy arrays in the original camera: ``joints`` (B, 21, 3) / ``verts`` (B, V, 3)
    predictions in metres, ``joints_rel`` (root-relative), ``gt_joints``/``gt_verts`` (when
    the split has ground truth), ``valid``, ``weights`` (B, 21), ``kp2d`` (rectified
    pixels); and ``images_per_s`` (a float) over the whole loop.
    """
    from tqdm import tqdm

    from .data import collate_samples
    from .data.loader import PipelineDataset

    loader = DataLoader(PipelineDataset(dataset, pipeline), batch_size=batch_size,
                        shuffle=False, collate_fn=collate_samples, num_workers=num_workers)
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
        for k, v in items.items():
            acc.setdefault(k, []).append(v.cpu().numpy())
        n += image.shape[0]
    result: dict = {k: np.concatenate(v) for k, v in acc.items()}
    result["images_per_s"] = n / max(time.perf_counter() - t0, 1e-9)
    return result


def write_pred(path: str | os.PathLike, dataset_name: str, joints: np.ndarray,
               verts: np.ndarray) -> None:
    """The benchmark's submission file: HO3D-v2's format for ``"ho3d"``, else FreiHAND's."""
    from .submission import write_freihand_pred, write_ho3d_pred

    if dataset_name == "ho3d":
        write_ho3d_pred(path, joints, verts)
    else:
        write_freihand_pred(path, joints, verts)


def mean_translation(dataset: Dataset) -> np.ndarray:
    """Mean root (wrist) position over a dataset's ground truth, (3,) metres."""
    return np.mean([np.asarray(dataset[i]["joints3d"])[0] for i in range(len(dataset))], axis=0)


def render_overlay(sample: dict, verts: np.ndarray, joints: np.ndarray,
                   faces: np.ndarray) -> np.ndarray:
    """The sample's image with the projected predicted mesh and skeleton (uint8 HWC)."""
    from .viz import draw_mesh_overlay, draw_skeleton

    K = np.asarray(sample["K"], dtype=np.float64)

    def proj(x: np.ndarray) -> np.ndarray:
        p = x @ K.T
        return np.clip(p[:, :2] / np.maximum(p[:, 2:], 1e-6), -1e4, 1e4)

    img = draw_mesh_overlay(np.asarray(sample["image"]), proj(verts), faces)
    return draw_skeleton(img, proj(joints))


def evaluate(model: HandDGP, cfg, test_ds: Dataset, out_dir: str | os.PathLike,
             train_ds: Dataset | None = None, progress: bool = False,
             device: torch.device | str = "cpu") -> dict:
    """Predict ``test_ds`` and write ``pred.json`` (the benchmark's format) into ``out_dir``;
    with ground truth also ``metrics.json``, ``pck.png`` and ``overlays/``.

    Args:
        model: the network; cfg: its :class:`~handdgp_models.config.RunConfig`.
        test_ds: the evaluation set; its ``name`` (``"freihand"``, ``"ho3d"``, synthetic)
            picks the ``pred.json`` format.
        train_ds: with it, also the trivial baseline that places the model's root-relative
            prediction at the mean training translation (``baseline_mean_t``).

    Returns:
        ``{"samples", "invalid", "images_per_s", "model": metrics (with ground truth),
        "baseline_mean_t": metrics (optional)}``.
    """
    import cv2

    from .build import build_pipeline
    from .metrics import compute_metrics, pck_curve
    from .submission import plot_pck

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pred = predict_dataset(model, test_ds, build_pipeline(cfg, train=False),
                           cfg.eval.batch_size, progress, device, cfg.data.num_workers)
    name = getattr(test_ds, "name", "synthetic")
    write_pred(out_dir / "pred.json", name, pred["joints"], pred["verts"])
    result: dict = {"samples": int(len(pred["joints"])), "invalid": int((~pred["valid"]).sum()),
                    "images_per_s": round(float(pred["images_per_s"]), 2)}
    if "gt_joints" in pred:
        result["model"] = compute_metrics(pred["joints"], pred["gt_joints"], pred["verts"],
                                          pred["gt_verts"])
        err = np.linalg.norm(pred["joints"] - pred["gt_joints"], axis=-1) * 1000
        curves = {"HandDGP": pck_curve(err)}
        if train_ds is not None:
            t = mean_translation(train_ds)
            joints_b = pred["joints_rel"] + t
            verts_b = pred["verts"] - pred["joints"][:, :1] + t
            result["baseline_mean_t"] = compute_metrics(joints_b, pred["gt_joints"], verts_b,
                                                        pred["gt_verts"])
            err_b = np.linalg.norm(joints_b - pred["gt_joints"], axis=-1) * 1000
            curves["mean translation"] = pck_curve(err_b)
        plot_pck(dict(curves.items()), out_dir / "pck.png")
    over = out_dir / "overlays"
    over.mkdir(exist_ok=True)
    faces = model.faces.cpu().numpy()
    for i in range(min(cfg.eval.overlays, len(test_ds))):
        img = render_overlay(test_ds[i], pred["verts"][i], pred["joints"][i], faces)
        cv2.imwrite(str(over / f"test_{i:03d}.png"), img[..., ::-1])
    write_json(out_dir / "metrics.json", result, indent=2, nan_as_null=True)
    return result
