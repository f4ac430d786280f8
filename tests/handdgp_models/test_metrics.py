"""Tests for the FreiHAND-protocol metrics, Procrustes alignment and submission writers."""

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import procrustes as scipy_procrustes
from scipy.spatial.transform import Rotation

from handdgp_models.metrics import auc, compute_metrics, fscore, pck_curve, procrustes_align
from handdgp_models.submission import (
    OPENPOSE_TO_HO3D,
    write_freihand_pred,
    write_ho3d_pred,
)
from handdgp_models.viz import plot_pck
from tests.handdgp_models.freihand_reference import freihand_evaluation

ALL_KEYS = {"cs_mje", "pa_mje", "rr_mje", "auc_cs_joints", "auc_pa_joints", "cs_mve", "pa_mve",
            "rr_mve", "auc_cs_verts", "auc_pa_verts", "f5", "f15", "pa_f5", "pa_f15"}


def _hand(rng, b=3, v=50):
    joints = rng.normal(scale=0.04, size=(b, 21, 3)) + np.array([0.0, 0.0, 0.6])
    verts = rng.normal(scale=0.04, size=(b, v, 3)) + np.array([0.0, 0.0, 0.6])
    return joints, verts


def _similarity(x, rng):
    rot = Rotation.random(len(x), random_state=rng).as_matrix()
    scale = rng.uniform(0.5, 2.0, size=(len(x), 1, 1))
    shift = rng.normal(size=(len(x), 1, 3))
    return scale * np.einsum("bij,bnj->bni", rot, x) + shift


def _mirror(points: np.ndarray) -> np.ndarray:
    """``(N, 3)`` points mirrored in the plane x = mean(x)."""
    centre = points.mean(axis=0)
    return (points - centre) * np.array([-1.0, 1.0, 1.0]) + centre


def _benchmark_fixture():
    """Four samples of 21 joints and 778 vertices (metres) with a known best alignment each:
    noise only; a mirror image (best fit: a reflection); a rotated, scaled, shifted copy; noise
    plus an offset. Returns ``pred_joints, gt_joints, pred_verts, gt_verts``."""
    rng = np.random.default_rng(22)
    n = 21 + 778
    gt = rng.normal(scale=0.04, size=(4, n, 3)) + np.array([0.0, 0.0, 0.6])
    centre = gt.mean(axis=1, keepdims=True)
    pred = np.empty_like(gt)
    pred[0] = gt[0] + rng.normal(scale=0.008, size=(n, 3))
    pred[1] = _mirror(gt[1]) + rng.normal(scale=0.004, size=(n, 3))
    rot = Rotation.random(random_state=rng).as_matrix()
    pred[2] = (0.9 * (gt[2] - centre[2]) @ rot.T + centre[2] + 0.02
               + rng.normal(scale=0.01, size=(n, 3)))
    pred[3] = gt[3] + rng.normal(scale=0.02, size=(n, 3)) + np.array([0.01, -0.02, 0.03])
    return pred[:, :21], gt[:, :21], pred[:, 21:], gt[:, 21:]


def _proper_rotation_pa_mm(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean error (mm) after the least-squares similarity restricted to proper rotations."""
    errors = []
    for x, y in zip(pred, gt, strict=True):
        x0, y0 = x - x.mean(0), y - y.mean(0)
        rot, _ = Rotation.align_vectors(y0, x0)
        rx = rot.apply(x0)
        aligned = np.sum(rx * y0) / np.sum(x0 * x0) * rx + y.mean(0)
        errors.append(np.linalg.norm(aligned - y, axis=-1))
    return float(np.mean(errors) * 1000)


def test_every_metric_matches_the_benchmark_evaluation():
    pj, gj, pv, gv = _benchmark_fixture()
    ours = compute_metrics(pj, gj, pv, gv)
    reference = freihand_evaluation(pj, gj, pv, gv)
    assert set(ours) == set(reference) == ALL_KEYS
    for key in ALL_KEYS:
        assert ours[key] == pytest.approx(reference[key], abs=1e-6), key
    # the fixture spans the PCK range and the F-score thresholds: nothing is trivially 0 or 1
    for key in ("auc_cs_joints", "auc_pa_joints", "auc_pa_verts", "f5", "pa_f5", "pa_f15"):
        assert 0.05 < ours[key] < 0.95, key


def test_fixture_separates_reflection_from_proper_rotation():
    """The mirrored sample aligns to its noise level only when reflections are allowed."""
    pj, gj, pv, gv = _benchmark_fixture()
    m = compute_metrics(pj[1:2], gj[1:2], pv[1:2], gv[1:2])
    assert m["pa_mje"] < 8.0 and m["pa_mve"] < 8.0
    assert _proper_rotation_pa_mm(pj[1:2], gj[1:2]) > m["pa_mje"] + 10.0
    assert _proper_rotation_pa_mm(pv[1:2], gv[1:2]) > m["pa_mve"] + 10.0
    # over the whole fixture too, by more than any rounding
    whole = compute_metrics(pj, gj, pv, gv)
    assert _proper_rotation_pa_mm(pj, gj) - whole["pa_mje"] > 2.0
    assert _proper_rotation_pa_mm(pv, gv) - whole["pa_mve"] > 2.0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), samples=st.integers(1, 3),
       noise=st.floats(0.001, 0.05), mirrored=st.booleans())
def test_random_predictions_match_the_benchmark_evaluation(seed, samples, noise, mirrored):
    rng = np.random.default_rng(seed)
    gt = rng.normal(scale=0.04, size=(samples, 21 + 40, 3)) + np.array([0.0, 0.0, 0.6])
    pred = gt + rng.normal(scale=noise, size=gt.shape)
    if mirrored:
        pred = np.stack([_mirror(p) for p in pred])
    ours = compute_metrics(pred[:, :21], gt[:, :21], pred[:, 21:], gt[:, 21:])
    reference = freihand_evaluation(pred[:, :21], gt[:, :21], pred[:, 21:], gt[:, 21:])
    for key in ALL_KEYS:
        assert ours[key] == pytest.approx(reference[key], abs=1e-6), key


def test_similarity_copy_has_zero_pa_error():
    rng = np.random.default_rng(0)
    gj, gv = _hand(rng)
    both = _similarity(np.concatenate([gj, gv], axis=1), rng)
    m = compute_metrics(both[:, :21], gj, both[:, 21:], gv)
    # not exactly 0: the benchmark adds 1e-8 m to each norm, a relative scale error ~1e-7
    assert m["pa_mje"] < 1e-4 and m["pa_mve"] < 1e-4
    assert m["pa_f5"] == pytest.approx(1.0)
    assert m["cs_mje"] > 10.0 and m["cs_mve"] > 10.0


def test_perfect_prediction_torch_input():
    rng = np.random.default_rng(1)
    gj, gv = _hand(rng)
    m = compute_metrics(torch.tensor(gj), torch.tensor(gj), torch.tensor(gv), gv)
    for key in ("cs_mje", "cs_mve", "rr_mje", "rr_mve"):
        assert m[key] == pytest.approx(0.0, abs=1e-9), key
    for key in ("pa_mje", "pa_mve"):  # the benchmark's 1e-8 m on the norms: ~1e-6 mm
        assert m[key] == pytest.approx(0.0, abs=1e-4), key
    for key in ("auc_cs_joints", "auc_cs_verts", "f5", "f15", "pa_f5", "pa_f15"):
        assert m[key] == pytest.approx(1.0), key
    for key in ("auc_pa_joints", "auc_pa_verts"):
        # those tiny aligned errors miss only the 0 mm threshold: half of the first of 99 cells
        assert m[key] == pytest.approx(1.0 - 0.5 / 99), key


def test_joints_only_has_no_vertex_keys():
    gj, _ = _hand(np.random.default_rng(2))
    assert set(compute_metrics(gj, gj)) == {"cs_mje", "pa_mje", "rr_mje", "auc_cs_joints",
                                            "auc_pa_joints"}


def test_constant_offset():
    rng = np.random.default_rng(3)
    gj, gv = _hand(rng)
    d = np.array([0.003, -0.004, 0.012])  # |d| = 13 mm
    m = compute_metrics(gj + d, gj, gv + d, gv)
    assert m["cs_mje"] == pytest.approx(13.0) and m["cs_mve"] == pytest.approx(13.0)
    assert m["rr_mje"] == pytest.approx(0.0, abs=1e-9)
    assert m["rr_mve"] == pytest.approx(0.0, abs=1e-9)
    assert m["pa_mje"] == pytest.approx(0.0, abs=1e-4)
    # All errors are exactly 13 mm: PCK steps from 0 to 1 at the first threshold >= 13 mm.
    thr, pck = pck_curve(np.full((4, 21), 13.0))
    first = np.searchsorted(thr, 13.0)
    assert np.all(pck[:first] == 0) and np.all(pck[first:] == 1)
    assert m["auc_cs_joints"] == pytest.approx(auc(thr, pck))


def test_auc_step_distribution():
    thr = np.linspace(0.0, 50.0, 101)  # 0.5 mm spacing, 20 mm is a grid point
    errors = np.array([[20.0] * 10 + [100.0] * 10])  # half at 20 mm, half never counted
    t, pck = pck_curve(errors, thr)
    # PCK = 0 on [0, 20), 0.5 on [20, 50]; trapezoid adds half a cell of ramp at 19.5..20.
    expected = 0.5 * (30.0 + 0.25) / 50.0
    assert auc(t, pck) == pytest.approx(expected)
    assert auc([0.0, 50.0], [1.0, 1.0]) == pytest.approx(1.0)


def test_fscore_hand_computed():
    gt = np.array([[[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]]], dtype=float) * 0.01
    pred = np.array([[[0.002, 0, 0], [0.010, 0.004, 0], [0.5, 0, 0]]])
    # Predicted: 2 mm and 4 mm from GT, the third far -> precision 2/3 at 5 mm.
    # GT: 0 (2 mm), 1 (4 mm), 2 (~10.8 mm), 3 (far) -> recall 2/4 at 5 mm, 3/4 at 15 mm.
    p, r = 2 / 3, 2 / 4
    assert fscore(pred, gt, 0.005) == pytest.approx(2 * p * r / (p + r))
    p, r = 2 / 3, 3 / 4
    assert fscore(pred, gt, 0.015) == pytest.approx(2 * p * r / (p + r))
    assert fscore(pred, gt, 0.001) == 0.0


def test_procrustes_matches_independent_solutions():
    rng = np.random.default_rng(4)
    gt = rng.normal(size=(5, 30, 3))
    pred = _similarity(gt, rng) + rng.normal(scale=0.05, size=gt.shape)
    aligned = procrustes_align(pred, gt)
    for b in range(len(gt)):
        # Here the best fit is a rotation: Kabsch via scipy's Rotation.align_vectors, then the
        # least-squares scale, gives the same alignment.
        x0 = pred[b] - pred[b].mean(0)
        y0 = gt[b] - gt[b].mean(0)
        rot, _ = Rotation.align_vectors(y0, x0)
        rx = rot.apply(x0)
        s = np.sum(rx * y0) / np.sum(x0 * x0)
        np.testing.assert_allclose(aligned[b], s * rx + gt[b].mean(0), atol=1e-9)
        # scipy.spatial.procrustes: same residual after its unit-norm standardisation.
        _, _, disparity = scipy_procrustes(gt[b], pred[b])
        norm = np.linalg.norm(gt[b] - gt[b].mean(0))
        assert np.sum(((aligned[b] - gt[b]) / norm) ** 2) == pytest.approx(disparity, rel=1e-9)


def test_procrustes_undoes_a_reflection():
    rng = np.random.default_rng(5)
    gt = rng.normal(size=(2, 40, 3))
    mirrored = _similarity(gt * np.array([-1.0, 1.0, 1.0]), rng)
    aligned = procrustes_align(mirrored, gt)
    np.testing.assert_allclose(aligned, gt, atol=1e-7)
    for b in range(2):
        x0 = mirrored[b] - mirrored[b].mean(0)
        a0 = aligned[b] - aligned[b].mean(0)
        sq, *_ = np.linalg.lstsq(x0, a0, rcond=None)  # a0 = x0 @ (s Q)
        assert np.linalg.det(sq) < 0


def test_pck_is_averaged_per_keypoint():
    errors = np.array([[1.0, 30.0], [2.0, 40.0], [60.0, 45.0]])  # (B=3, K=2), mm
    thr = np.array([0.0, 10.0, 35.0, 50.0])
    _, pck = pck_curve(errors, thr)
    # keypoint 0: 0, 2/3, 2/3, 2/3; keypoint 1: 0, 0, 1/3, 1
    np.testing.assert_allclose(pck, [0.0, 1 / 3, 0.5, 5 / 6])
    with pytest.raises(ValueError, match="errors"):
        pck_curve(errors.ravel(), thr)


def test_validation_errors():
    gj = np.zeros((2, 21, 3))
    with pytest.raises(ValueError, match="pred_joints"):
        compute_metrics(np.zeros((2, 20, 3)), gj)
    with pytest.raises(ValueError, match="gt_joints"):
        compute_metrics(gj, np.zeros((3, 21, 3)))
    bad = gj.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="pred_joints"):
        compute_metrics(bad, gj)
    with pytest.raises(ValueError, match="gt_verts"):
        compute_metrics(gj, gj, np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match="pred_verts"):
        compute_metrics(gj, gj, np.zeros((2, 5, 3)), np.zeros((2, 6, 3)))
    with pytest.raises(ValueError, match="errors"):
        pck_curve(np.array([[np.nan]]))
    with pytest.raises(ValueError, match="thresholds"):
        auc([0.0, 1.0], [1.0])


def test_freihand_writer_round_trip(tmp_path):
    rng = np.random.default_rng(6)
    joints = rng.normal(size=(2, 21, 3))
    verts = rng.normal(size=(2, 778, 3))
    path = tmp_path / "pred.json"
    write_freihand_pred(path, torch.tensor(joints), verts)
    xyz, vv = json.loads(path.read_text())
    np.testing.assert_allclose(np.array(xyz), joints)
    np.testing.assert_allclose(np.array(vv), verts)
    with pytest.raises(ValueError, match="verts_list"):
        write_freihand_pred(path, joints, verts[:, :700])


def test_ho3d_writer_order_and_axes(tmp_path):
    rng = np.random.default_rng(7)
    joints = rng.normal(size=(2, 21, 3))
    verts = rng.normal(size=(2, 778, 3))
    path = tmp_path / "pred.json"
    write_ho3d_pred(path, joints, verts)
    xyz, vv = (np.array(a) for a in json.loads(path.read_text()))
    flip = np.array([1.0, -1.0, -1.0])
    # HO3D joint 1 is OpenPose joint 5 (index MCP); joint 13 is OpenPose 1 (thumb MCP).
    np.testing.assert_allclose(xyz[:, 1], joints[:, 5] * flip)
    np.testing.assert_allclose(xyz[:, 13], joints[:, 1] * flip)
    np.testing.assert_allclose(xyz, joints[:, list(OPENPOSE_TO_HO3D)] * flip)
    np.testing.assert_allclose(vv, verts * flip)
    assert sorted(OPENPOSE_TO_HO3D) == list(range(21))


def test_plot_pck_writes_png(tmp_path):
    thr, pck = pck_curve(np.random.default_rng(8).uniform(0, 60, size=(10, 21)))
    path = tmp_path / "pck.png"
    plot_pck({"model": (thr, pck)}, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
