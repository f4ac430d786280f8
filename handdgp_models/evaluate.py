"""Evaluation of a trained model on the held-out synthetic test set (other cameras)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .files import write_json
from .model import HandDGP

__all__ = ["evaluate", "mean_translation", "predict_dataset", "render_overlay"]


@torch.no_grad()
def predict_dataset(model: HandDGP, dataset: Dataset, pipeline, batch_size: int = 32,
                    progress: bool = False) -> dict[str, np.ndarray]:
    """Run ``model`` over ``pipeline(dataset[i])`` (deterministic pipeline).

    Returns numpy arrays in the original camera: ``joints``/``verts`` predictions,
    ``joints_rel`` (root-relative), ``gt_joints``/``gt_verts`` (when present), ``valid``,
    ``weights`` (B, 21) and ``kp2d`` (rectified pixels).
    """
    from tqdm import tqdm

    from .data import collate_samples

    class _Mapped(Dataset):
        def __len__(self) -> int:
            return len(dataset)

        def __getitem__(self, i: int) -> dict:
            return pipeline(dataset[i])

    loader = DataLoader(_Mapped(), batch_size=batch_size, shuffle=False,
                        collate_fn=collate_samples)
    model.eval()
    acc: dict[str, list] = {}
    for batch in tqdm(loader, desc="eval", disable=not progress, leave=False):
        out = model(batch["image"], batch["K"], batch["R"])
        items = {"joints": out["joints_orig"], "verts": out["verts_orig"],
                 "joints_rel": out["joints_rel"] @ batch["R"], "valid": out["valid"],
                 "weights": out["weights"], "kp2d": out["kp2d"]}
        if "joints3d_orig" in batch:
            items["gt_joints"] = batch["joints3d_orig"]
            items["gt_verts"] = batch["verts3d"] @ batch["R"]
        for k, v in items.items():
            acc.setdefault(k, []).append(v.cpu().numpy())
    return {k: np.concatenate(v) for k, v in acc.items()}


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


def evaluate(model: HandDGP, cfg: dict, test_ds: Dataset, out_dir: str | os.PathLike,
             train_ds: Dataset | None = None, progress: bool = False) -> dict:
    """Metrics (``metrics.json``), PCK plot (``pck.png``) and overlays (``overlays/``).

    With ``train_ds``, also the trivial baseline that places the model's root-relative
    prediction at the mean training translation (``baseline_mean_t``).

    Returns:
        ``{"model": metrics, "baseline_mean_t": metrics (optional), "invalid": count}``.
    """
    import cv2

    from .metrics import compute_metrics, pck_curve
    from .submission import plot_pck
    from .train import make_pipeline

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pred = predict_dataset(model, test_ds, make_pipeline(cfg, train=False),
                           int(cfg["eval"]["batch_size"]), progress)
    result = {"model": compute_metrics(pred["joints"], pred["gt_joints"], pred["verts"],
                                       pred["gt_verts"]),
              "invalid": int((~pred["valid"]).sum()), "samples": int(len(pred["joints"]))}
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
    plot_pck({k: (thr, p) for k, (thr, p) in curves.items()}, out_dir / "pck.png")
    over = out_dir / "overlays"
    over.mkdir(exist_ok=True)
    faces = model.faces.cpu().numpy()
    for i in range(min(int(cfg["eval"]["overlays"]), len(test_ds))):
        img = render_overlay(test_ds[i], pred["verts"][i], pred["joints"][i], faces)
        cv2.imwrite(str(over / f"test_{i:03d}.png"), img[..., ::-1])
    write_json(out_dir / "metrics.json", result, indent=2, nan_as_null=True)
    return result
