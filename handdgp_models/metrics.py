"""FreiHAND-protocol evaluation metrics for 3D keypoints and mesh vertices (hands or bodies).

All public inputs are in metres; reported errors are in millimetres. Every number is computed as
FreiHAND's own evaluation code computes it: per-sample similarity alignment with reflections
allowed (:func:`procrustes_align`), mean error, PCK (errors ``<=`` a threshold) and AUC (the
trapezoidal integral of the PCK curve divided by the threshold range) per keypoint or vertex,
then averaged over keypoints or vertices, and the F-score from nearest-neighbour distances
strictly ``<`` the threshold, averaged over samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.spatial import cKDTree

PCK_THRESHOLDS_M = np.linspace(0.0, 0.05, 100)  # FreiHAND's 3D PCK: 0 to 50 mm in 100 steps
DEFAULT_THRESHOLDS_MM = PCK_THRESHOLDS_M * 1000.0  # the same thresholds for curves in mm
ALIGN_NORM_EPS_M = 1e-8  # added to each set's Frobenius norm before alignment, as FreiHAND does
FSCORE_THRESHOLDS_MM = (5, 15)  # the benchmark's F-scores: keys f5, f15, pa_f5, pa_f15
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
    """Similarity-align each predicted point set to its ground truth, as FreiHAND's evaluation
    does (its ``align_w_scale``), so PA- numbers compare with published ones.

    Per sample: both sets are centred and divided by their Frobenius norm plus
    :data:`ALIGN_NORM_EPS_M` (``n_pred``, ``n_gt``), giving ``pred_n`` and ``gt_n``; the
    orthogonal ``Q`` minimising ``||pred_n Q - gt_n||`` (a proper rotation or a reflection,
    whichever fits better) and the scale ``s`` = sum of the singular values of ``gt_n^T pred_n``
    give ``s * n_gt * pred_n Q + mean(gt)``. Up to the epsilon this is the least-squares
    similarity transform with reflections allowed; a mirrored prediction aligns perfectly.

    Args:
        pred: ``(B, N, 3)`` predicted points, metres.
        gt: ``(B, N, 3)`` ground-truth points, metres.

    Returns:
        ``(B, N, 3)`` float64 aligned prediction, metres.
    """
    x = _as_points("pred", pred)
    y = _as_points("gt", gt)
    _check_pair("pred", x, "gt", y)
    mu_y = y.mean(axis=1, keepdims=True)
    x0 = x - x.mean(axis=1, keepdims=True)
    y0 = y - mu_y
    norm_x = np.linalg.norm(x0, axis=(1, 2)) + ALIGN_NORM_EPS_M
    norm_y = np.linalg.norm(y0, axis=(1, 2)) + ALIGN_NORM_EPS_M
    xn = x0 / norm_x[:, None, None]
    yn = y0 / norm_y[:, None, None]
    # svd(gt_n^T pred_n) = U diag(sig) V^T; U V^T is the orthogonal matrix best taking gt_n to
    # pred_n (gt_n @ U V^T ~ pred_n), so pred_n @ V U^T maps the prediction onto the ground truth.
    u, sig, vt = np.linalg.svd(np.einsum("bni,bnj->bij", yn, xn))
    q = np.einsum("bji,bkj->bik", vt, u)  # V U^T
    scale = sig.sum(axis=1) * norm_y
    return scale[:, None, None] * np.einsum("bni,bij->bnj", xn, q) + mu_y


def pck_curve(
    errors: Any, thresholds: Any = DEFAULT_THRESHOLDS_MM
) -> tuple[np.ndarray, np.ndarray]:
    """3D PCK: per keypoint, the fraction of samples with error at or below each threshold,
    averaged over keypoints (FreiHAND's evaluation; with every keypoint scored in every sample
    this equals the fraction over all errors pooled).

    Args:
        errors: ``(B, K)`` per-sample, per-keypoint errors, in the unit of ``thresholds``
            (the default thresholds are in mm).
        thresholds: ``(T,)`` increasing thresholds.

    Returns:
        ``(thresholds, pck)``, both ``(T,)`` float64, ``pck`` in [0, 1].
    """
    if isinstance(errors, torch.Tensor):
        errors = errors.detach().cpu().double().numpy()
    err = np.asarray(errors, dtype=np.float64)
    thr = np.asarray(thresholds, dtype=np.float64)
    if err.ndim != 2 or err.size == 0:
        raise ValueError(f"errors must have shape (B, K) with B, K >= 1, got {err.shape}")
    if not np.all(np.isfinite(err)):
        raise ValueError("errors contains NaN or infinite values")
    if thr.ndim != 1 or thr.size < 2 or not np.all(np.diff(thr) > 0):
        raise ValueError("thresholds must be a 1D strictly increasing array of >= 2 values")
    per_keypoint = np.stack([(err <= t).mean(axis=0) for t in thr])  # (T, K)
    return thr, per_keypoint.mean(axis=1)


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
    """Mean over samples of the F-score between two ``(B, N, 3)`` point sets (metres), as
    FreiHAND's evaluation computes it.

    Precision: share of predicted points with a GT point closer than ``threshold_m`` (strictly);
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


def _errors_m(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(B, N)`` Euclidean distances in metres."""
    return np.linalg.norm(a - b, axis=-1)


def _mean_mm(errors_m: np.ndarray) -> float:
    """Mean error in mm: per keypoint over samples, then over keypoints (FreiHAND's order)."""
    return float(errors_m.mean(axis=0).mean() * 1000.0)


def _auc(errors_m: np.ndarray) -> float:
    return auc(*pck_curve(errors_m, PCK_THRESHOLDS_M))


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
        ``cs_mje, pa_mje, rr_mje`` (mm), ``auc_cs_joints, auc_pa_joints`` and, with vertices,
        ``cs_mve, pa_mve, rr_mve`` (mm), ``auc_cs_verts, auc_pa_verts``, ``f5, f15, pa_f5,
        pa_f15``. ``cs`` = camera space, ``pa`` = after :func:`procrustes_align` (joints and
        vertices each aligned on their own), ``rr`` = after subtracting each set's root joint.
    """
    pj = _as_points("pred_joints", pred_joints)
    gj = _as_points("gt_joints", gt_joints)
    _check_pair("pred_joints", pj, "gt_joints", gj)
    if not 0 <= root < pj.shape[1]:
        raise ValueError(f"root: expected a keypoint in [0, {pj.shape[1]}), got {root}")
    if (pred_verts is None) != (gt_verts is None):
        raise ValueError("pred_verts and gt_verts must both be given or both be None")

    err_cs = _errors_m(pj, gj)
    err_pa = _errors_m(procrustes_align(pj, gj), gj)
    out = {
        "cs_mje": _mean_mm(err_cs),
        "pa_mje": _mean_mm(err_pa),
        "rr_mje": _mean_mm(_errors_m(pj - pj[:, root : root + 1], gj - gj[:, root : root + 1])),
        "auc_cs_joints": _auc(err_cs),
        "auc_pa_joints": _auc(err_pa),
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
    err_v = _errors_m(pv, gv)
    err_v_pa = _errors_m(pv_pa, gv)
    out.update(
        cs_mve=_mean_mm(err_v),
        pa_mve=_mean_mm(err_v_pa),
        rr_mve=_mean_mm(_errors_m(pv - pj[:, root : root + 1], gv - gj[:, root : root + 1])),
        auc_cs_verts=_auc(err_v),
        auc_pa_verts=_auc(err_v_pa),
    )
    for mm in FSCORE_THRESHOLDS_MM:
        out[f"f{mm}"] = fscore(pv, gv, mm / 1000.0)
        out[f"pa_f{mm}"] = fscore(pv_pa, gv, mm / 1000.0)
    return out
