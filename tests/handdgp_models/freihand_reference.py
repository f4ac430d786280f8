"""A plain restatement of FreiHAND's evaluation loop, the oracle of the metric tests.

It follows the benchmark's own evaluation script sample by sample and shares no code with
``handdgp_models.metrics``: per sample, the errors of every keypoint (or vertex) are appended to
that keypoint's list; the similarity alignment centres both sets, divides each by its Frobenius
norm plus 1e-8, and maps the prediction onto the ground truth with SciPy's orthogonal Procrustes
(a reflection is allowed) and the sum of the singular values as scale; the F-score compares
nearest-neighbour distances in both directions strictly below the threshold. At the end, mean
error, PCK (``<=``) and AUC are computed per keypoint over ``linspace(0, 0.05 m, 100)`` and
averaged over keypoints.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import orthogonal_procrustes

THRESHOLDS_M = np.linspace(0.0, 0.05, 100)
NORM_EPS = 1e-8


class PerPointErrors:
    """Euclidean errors collected per point index (every point counts as visible)."""

    def __init__(self, count: int):
        self.errors = [[] for _ in range(count)]

    def feed(self, gt: np.ndarray, pred: np.ndarray) -> None:
        dist = np.sqrt(np.sum(np.square(gt - pred), axis=1))
        for i in range(len(self.errors)):
            self.errors[i].append(dist[i])

    def mean_and_auc(self) -> tuple[float, float]:
        """Mean error (metres) and PCK AUC, each per point index, then averaged over them."""
        span = np.trapezoid(np.ones_like(THRESHOLDS_M), THRESHOLDS_M)
        means, aucs = [], []
        for errs in self.errors:
            errs = np.array(errs)
            means.append(np.mean(errs))
            curve = np.array([np.mean((errs <= t).astype(float)) for t in THRESHOLDS_M])
            aucs.append(np.trapezoid(curve, THRESHOLDS_M) / span)
        return float(np.mean(means)), float(np.mean(aucs))


def align_with_scale(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``pred`` (N, 3) similarity-aligned onto ``gt`` (N, 3) as the benchmark does it."""
    gt_centre, pred_centre = gt.mean(0), pred.mean(0)
    gt_c, pred_c = gt - gt_centre, pred - pred_centre
    gt_norm = np.linalg.norm(gt_c) + NORM_EPS
    pred_norm = np.linalg.norm(pred_c) + NORM_EPS
    gt_c, pred_c = gt_c / gt_norm, pred_c / pred_norm
    rot, scale = orthogonal_procrustes(gt_c, pred_c)  # gt_c @ rot ~ pred_c
    return pred_c @ rot.T * scale * gt_norm + gt_centre


def fscore(gt: np.ndarray, pred: np.ndarray, threshold: float) -> float:
    """F-score of two point sets from brute-force nearest-neighbour distances."""
    dist = np.sqrt(((gt[:, None, :] - pred[None, :, :]) ** 2).sum(-1))  # (G, P)
    gt_matched = np.mean(dist.min(axis=1) < threshold)
    pred_matched = np.mean(dist.min(axis=0) < threshold)
    if gt_matched + pred_matched == 0:
        return 0.0
    return float(2 * gt_matched * pred_matched / (gt_matched + pred_matched))


def freihand_evaluation(pred_xyz, gt_xyz, pred_verts, gt_verts, root: int = 0) -> dict:
    """The benchmark's numbers for a prediction, under the project's metric names.

    Inputs are per-sample sequences of ``(21, 3)`` joints and ``(V, 3)`` vertices in metres.
    Mean errors are returned in millimetres. ``rr_*`` are not part of the benchmark's script; they
    are restated here from their definition (both sets minus their own root joint).
    """
    n_kp, n_v = len(gt_xyz[0]), len(gt_verts[0])
    xyz, xyz_al = PerPointErrors(n_kp), PerPointErrors(n_kp)
    mesh, mesh_al = PerPointErrors(n_v), PerPointErrors(n_v)
    xyz_rr, mesh_rr = PerPointErrors(n_kp), PerPointErrors(n_v)
    f_scores, f_scores_al = [], []
    for pj, gj, pv, gv in zip(pred_xyz, gt_xyz, pred_verts, gt_verts, strict=True):
        pj, gj, pv, gv = (np.array(a, dtype=float) for a in (pj, gj, pv, gv))
        xyz.feed(gj, pj)
        mesh.feed(gv, pv)
        xyz_al.feed(gj, align_with_scale(gj, pj))
        pv_al = align_with_scale(gv, pv)
        mesh_al.feed(gv, pv_al)
        f_scores.append([fscore(gv, pv, t) for t in (0.005, 0.015)])
        f_scores_al.append([fscore(gv, pv_al, t) for t in (0.005, 0.015)])
        xyz_rr.feed(gj - gj[root], pj - pj[root])
        mesh_rr.feed(gv - gj[root], pv - pj[root])
    cs_mje, auc_cs_joints = xyz.mean_and_auc()
    cs_mve, auc_cs_verts = mesh.mean_and_auc()
    pa_mje, auc_pa_joints = xyz_al.mean_and_auc()
    pa_mve, auc_pa_verts = mesh_al.mean_and_auc()
    rr_mje, rr_mve = xyz_rr.mean_and_auc()[0], mesh_rr.mean_and_auc()[0]
    out = {"cs_mje": cs_mje * 1000, "cs_mve": cs_mve * 1000, "pa_mje": pa_mje * 1000,
           "pa_mve": pa_mve * 1000, "rr_mje": rr_mje * 1000, "rr_mve": rr_mve * 1000,
           "auc_cs_joints": auc_cs_joints, "auc_cs_verts": auc_cs_verts,
           "auc_pa_joints": auc_pa_joints, "auc_pa_verts": auc_pa_verts}
    f, fa = np.array(f_scores).mean(0), np.array(f_scores_al).mean(0)
    out.update(f5=float(f[0]), f15=float(f[1]), pa_f5=float(fa[0]), pa_f15=float(fa[1]))
    return out
