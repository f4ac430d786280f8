"""FreiHAND-protocol evaluation metrics for 3D keypoints and mesh vertices (hands or bodies).

All public inputs are in metres; reported errors are in millimetres. Conventions follow the
FreiHAND evaluation: PCK counts errors ``<=`` a threshold, the AUC is the trapezoidal integral of
the PCK curve divided by the threshold range, and the F-score counts nearest-neighbour distances
strictly ``<`` the threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.spatial import cKDTree

DEFAULT_THRESHOLDS_MM = np.linspace(0.0, 50.0, 100)
ROOT_JOINT = 0  # the default root keypoint (the hand's wrist, the body's pelvis)


def _as_points(name: str, value: Any, count: int | None = None) -> np.ndarray:
    """Convert ``value`` to a float64 ``(B, N, 3)`` array, validating shape and finiteness."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numpy array or torch tensor of floats") from exc
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (B, N, 3), got {arr.shape}")
    if count is not None and arr.shape[1] != count:
        raise ValueError(f"{name} must have {count} points per sample, got {arr.shape[1]}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _check_pair(pred_name: str, pred: np.ndarray, gt_name: str, gt: np.ndarray) -> None:
    if pred.shape != gt.shape:
        raise ValueError(
            f"{pred_name} shape {pred.shape} does not match {gt_name} shape {gt.shape}"
        )
    if pred.shape[0] == 0:
        raise ValueError(f"{pred_name} must contain at least one sample")


def procrustes_align(pred: Any, gt: Any) -> np.ndarray:
    """Similarity-align each predicted point set to its ground truth.

    Solves ``min_{s,R,t} ||s R x + t - y||^2`` per sample with ``R`` a proper rotation
    (``det R = +1``; the reflection the plain SVD solution may produce is flipped away).

    Args:
        pred: ``(B, N, 3)`` predicted points (any unit).
        gt: ``(B, N, 3)`` ground-truth points, same unit.

    Returns:
        ``(B, N, 3)`` float64 aligned prediction.
    """
    x = _as_points("pred", pred)
    y = _as_points("gt", gt)
    _check_pair("pred", x, "gt", y)
    mu_x = x.mean(axis=1, keepdims=True)
    mu_y = y.mean(axis=1, keepdims=True)
    x0 = x - mu_x
    y0 = y - mu_y
    cov = np.einsum("bni,bnj->bij", x0, y0)  # (B, 3, 3) = X0^T Y0
    u, sig, vt = np.linalg.svd(cov)
    # Optimal rotation x -> y is V diag(1, 1, d) U^T with d fixing det to +1.
    d = np.sign(np.linalg.det(np.einsum("bij,bjk->bik", u, vt)))
    d[d == 0] = 1.0
    diag = np.ones_like(sig)
    diag[:, -1] = d
    rot = np.einsum("bji,bj,bkj->bik", vt, diag, u)
    var_x = np.einsum("bni,bni->b", x0, x0)
    scale = np.einsum("bi,bi->b", sig, diag) / np.where(var_x > 0, var_x, 1.0)
    return scale[:, None, None] * np.einsum("bij,bnj->bni", rot, x0) + mu_y


def pck_curve(
    errors_mm: Any, thresholds_mm: Any = DEFAULT_THRESHOLDS_MM
) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of errors at or below each threshold (3D PCK).

    Args:
        errors_mm: per-point errors in mm, any shape (e.g. ``(B, K)``); all points are pooled.
        thresholds_mm: ``(T,)`` increasing thresholds in mm.

    Returns:
        ``(thresholds, pck)``, both ``(T,)`` float64, ``pck`` in [0, 1].
    """
    if isinstance(errors_mm, torch.Tensor):
        errors_mm = errors_mm.detach().cpu().double().numpy()
    err = np.asarray(errors_mm, dtype=np.float64).ravel()
    thr = np.asarray(thresholds_mm, dtype=np.float64)
    if err.size == 0:
        raise ValueError("errors_mm must not be empty")
    if not np.all(np.isfinite(err)):
        raise ValueError("errors_mm contains NaN or infinite values")
    if thr.ndim != 1 or thr.size < 2 or not np.all(np.diff(thr) > 0):
        raise ValueError("thresholds_mm must be a 1D strictly increasing array of >= 2 values")
    pck = (err[None, :] <= thr[:, None]).mean(axis=1)
    return thr, pck


def auc(thresholds: Any, pck: Any) -> float:
    """Area under a PCK curve, normalised by the threshold range to lie in [0, 1].

    Args:
        thresholds: ``(T,)`` increasing thresholds.
        pck: ``(T,)`` PCK values in [0, 1].
    """
    x = np.asarray(thresholds, dtype=np.float64)
    y = np.asarray(pck, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size < 2:
        raise ValueError(f"thresholds {x.shape} and pck {y.shape} must be equal 1D shapes, T >= 2")
    if not np.all(np.isfinite(y)):
        raise ValueError("pck contains NaN or infinite values")
    return float(np.trapezoid(y, x) / (x[-1] - x[0]))


def fscore(pred: np.ndarray, gt: np.ndarray, threshold_m: float) -> float:
    """Mean over samples of the F-score between two ``(B, N, 3)`` point sets (metres).

    Precision: share of predicted points with a GT point closer than ``threshold_m``;
    recall: the reverse; ``F = 2PR / (P + R)`` (0 when both are 0).
    """
    p = _as_points("pred", pred)
    g = _as_points("gt", gt)
    if p.shape[0] != g.shape[0]:
        raise ValueError(f"pred batch {p.shape[0]} does not match gt batch {g.shape[0]}")
    scores = []
    for pb, gb in zip(p, g, strict=True):
        d_pred, _ = cKDTree(gb).query(pb)
        d_gt, _ = cKDTree(pb).query(gb)
        precision = float(np.mean(d_pred < threshold_m))
        recall = float(np.mean(d_gt < threshold_m))
        total = precision + recall
        scores.append(2.0 * precision * recall / total if total > 0 else 0.0)
    return float(np.mean(scores))


def _mean_dist_mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=-1) * 1000.0


def compute_metrics(
    pred_joints: Any, gt_joints: Any, pred_verts: Any = None, gt_verts: Any = None,
    root: int = ROOT_JOINT,
) -> dict[str, float]:
    """FreiHAND-protocol metrics for a batch, over any keypoint set.

    Args:
        pred_joints, gt_joints: ``(B, N, 3)`` keypoints in metres (a hand's 21, a body's 29).
        pred_verts, gt_verts: optional ``(B, V, 3)`` mesh vertices in metres; give both or neither.
        root: the root keypoint of the root-relative errors.

    Returns:
        ``cs_mje, pa_mje, rr_mje`` (mm), ``auc_cs_joints`` and, with vertices, ``cs_mve, pa_mve,
        rr_mve`` (mm), ``auc_cs_verts``, ``f5, f15, pa_f5, pa_f15``. ``cs`` = camera space, ``pa`` =
        after per-sample similarity Procrustes, ``rr`` = after subtracting each set's root.
    """
    pj = _as_points("pred_joints", pred_joints)
    gj = _as_points("gt_joints", gt_joints)
    _check_pair("pred_joints", pj, "gt_joints", gj)
    if not 0 <= root < pj.shape[1]:
        raise ValueError(f"root: expected a keypoint in [0, {pj.shape[1]}), got {root}")
    if (pred_verts is None) != (gt_verts is None):
        raise ValueError("pred_verts and gt_verts must both be given or both be None")

    err_cs = _mean_dist_mm(pj, gj)
    out = {
        "cs_mje": float(err_cs.mean()),
        "pa_mje": float(_mean_dist_mm(procrustes_align(pj, gj), gj).mean()),
        "rr_mje": float(
            _mean_dist_mm(pj - pj[:, root : root + 1], gj - gj[:, root : root + 1]).mean()
        ),
        "auc_cs_joints": auc(*pck_curve(err_cs)),
    }
    if pred_verts is None:
        return out

    pv = _as_points("pred_verts", pred_verts)
    gv = _as_points("gt_verts", gt_verts)
    _check_pair("pred_verts", pv, "gt_verts", gv)
    if pv.shape[0] != pj.shape[0]:
        raise ValueError(
            f"pred_verts batch {pv.shape[0]} does not match pred_joints batch {pj.shape[0]}"
        )
    pv_pa = procrustes_align(pv, gv)
    err_v = _mean_dist_mm(pv, gv)
    out.update(
        cs_mve=float(err_v.mean()),
        pa_mve=float(_mean_dist_mm(pv_pa, gv).mean()),
        rr_mve=float(
            _mean_dist_mm(pv - pj[:, root : root + 1], gv - gj[:, root : root + 1]).mean()
        ),
        auc_cs_verts=auc(*pck_curve(err_v)),
        f5=fscore(pv, gv, 0.005),
        f15=fscore(pv, gv, 0.015),
        pa_f5=fscore(pv_pa, gv, 0.005),
        pa_f15=fscore(pv_pa, gv, 0.015),
    )
    return out
