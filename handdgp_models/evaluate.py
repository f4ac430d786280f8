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

    Returns numpy arrays in the original camera: ``joints`` (B, K, 3) / ``verts`` (B, V, 3)
    predictions in metres (K keypoints of the model's template), ``joints_rel``
    (root-relative), ``gt_joints``/``gt_verts`` (when the split has ground truth),
    ``gt_eval_joints`` (a benchmark's own joints, e.g. Human3.6M's 17, when the split has
    them), ``valid``, ``weights`` (B, K), ``kp2d`` (rectified pixels); and ``images_per_s``
    (a float) over the whole loop.
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


def render_overlay(sample: dict, verts: np.ndarray, joints: np.ndarray,
                   faces: np.ndarray, bones: tuple[tuple[int, int], ...] | None = None
                   ) -> np.ndarray:
    """The sample's image with the projected predicted mesh and skeleton (uint8 HWC);
    ``bones`` of the template's keypoints (None: the hand's)."""
    from .viz import draw_mesh_overlay, draw_skeleton

    K = np.asarray(sample["K"], dtype=np.float64)

    def proj(x: np.ndarray) -> np.ndarray:
        p = x @ K.T
        return np.clip(p[:, :2] / np.maximum(p[:, 2:], 1e-6), -1e4, 1e4)

    img = draw_mesh_overlay(np.asarray(sample["image"]), proj(verts), faces)
    return draw_skeleton(img, proj(joints), bones=bones)


def evaluate(model: HandDGP, cfg, test_ds: Dataset, out_dir: str | os.PathLike,
             train_ds: Dataset | None = None, progress: bool = False,
             device: torch.device | str = "cpu") -> dict:
    """Predict ``test_ds`` and write ``pred.json`` (the benchmark's format) into ``out_dir``;
    with ground truth also ``metrics.json``, ``pck.png`` and ``overlays/``.

    Args:
        model: the network; cfg: its :class:`~handdgp_models.config.RunConfig`.
        test_ds: the evaluation set; its ``name`` (``"freihand"``, ``"ho3d"``, ``"h36m"``,
            synthetic) picks the ``pred.json`` format.
        train_ds: with it, also the trivial baseline that places the model's root-relative
            prediction at the mean training translation (``baseline_mean_t``).

    Returns:
        ``{"samples", "invalid", "images_per_s", "model": metrics (with ground truth),
        "baseline_mean_t": metrics (optional)}``. For bodies with ``body.h36m_regressor`` the
        model's metrics also hold ``h36m_cs_mje``, ``h36m_pa_mje``, ``h36m_rr_mje``,
        ``h36m_auc_cs_joints`` and ``h36m_auc_pa_joints``: Human3.6M's 17 joints regressed from
        the predicted mesh against the motion-capture joints.
    """
    import cv2

    from .body import H36M_ROOT_INDEX
    from .build import build_eval_regressor, build_pipeline, build_template, template_bones
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
    root = model.root_index
    if "gt_joints" in pred:
        result["model"] = compute_metrics(pred["joints"], pred["gt_joints"], pred["verts"],
                                          pred["gt_verts"], root=root)
        regressor = (build_eval_regressor(cfg, build_template(cfg, ("test",)))
                     if "gt_eval_joints" in pred else None)
        if regressor is not None:
            joints17 = np.einsum("jv,bvc->bjc", regressor, pred["verts"])
            m17 = compute_metrics(joints17, pred["gt_eval_joints"], root=H36M_ROOT_INDEX)
            result["model"].update({f"h36m_{k}": v for k, v in m17.items()})
        err = np.linalg.norm(pred["joints"] - pred["gt_joints"], axis=-1) * 1000
        curves = {"HandDGP": pck_curve(err)}
        if train_ds is not None:
            t = mean_translation(train_ds, root)
            joints_b = pred["joints_rel"] + t
            verts_b = pred["verts"] - pred["joints"][:, root:root + 1] + t
            result["baseline_mean_t"] = compute_metrics(joints_b, pred["gt_joints"], verts_b,
                                                        pred["gt_verts"], root=root)
            err_b = np.linalg.norm(joints_b - pred["gt_joints"], axis=-1) * 1000
            curves["mean translation"] = pck_curve(err_b)
        plot_pck(dict(curves.items()), out_dir / "pck.png")
    over = out_dir / "overlays"
    over.mkdir(exist_ok=True)
    faces = model.faces.cpu().numpy()
    bones = template_bones(cfg)
    for i in range(min(cfg.eval.overlays, len(test_ds))):
        img = render_overlay(test_ds[i], pred["verts"][i], pred["joints"][i], faces, bones)
        cv2.imwrite(str(over / f"test_{i:03d}.png"), img[..., ::-1])
    write_json(out_dir / "metrics.json", result, indent=2, nan_as_null=True)
    return result
