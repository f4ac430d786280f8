"""Lens distortion through the model package: distorted synthetic cameras (checked against
OpenCV's projection and its undistortion map), the input pipeline's distortion-aware
rectification (exact geometry; unchanged without distortion), and the loader's batches."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from handdgp_models.camera import Camera
from handdgp_models.data import InputPipeline, PipelineConfig, make_loader
from handdgp_models.data.synthetic import CAMERA_DOMAINS, SyntheticHands

DOMAINS = ["wide-radtan", "wide-fisheye"]


@pytest.fixture(scope="module")
def samples():
    torch.set_num_threads(1)
    return {d: SyntheticHands(2, seed=3, camera=d, occlusion_prob=0.0)[0] for d in
            ["wide", *DOMAINS]}


def _pipe(**settings):
    return InputPipeline(PipelineConfig(**{"mode": "perspective", **settings}), out_size=96,
                         focal=160.0, train=False)


@pytest.mark.parametrize("domain", DOMAINS)
def test_distorted_samples_match_opencv(samples, domain):
    s, dom = samples[domain], CAMERA_DOMAINS[domain]
    K, D = s["K"].astype(np.float64), s["dist"].astype(np.float64)
    assert str(s["dist_model"]) == dom.lens_model
    if dom.lens_model == "pinhole":
        uv, _ = cv2.projectPoints(s["joints3d"].astype(np.float64), np.zeros(3), np.zeros(3), K, D)
    else:
        uv, _ = cv2.fisheye.projectPoints(s["joints3d"].astype(np.float64)[None], np.zeros(3),
                                          np.zeros(3), K, D)
    np.testing.assert_allclose(s["joints2d"], uv.reshape(-1, 2), atol=1e-3)
    np.testing.assert_allclose(Camera(K, D, dom.lens_model).project(s["joints3d"]),
                               uv.reshape(-1, 2), atol=1e-3)
    # Undistorting the image with OpenCV gives the ideal pinhole rendering: the hand's mask
    # lands where the ideal projection of the mesh is.
    h, w = s["mask"].shape
    init = cv2.initUndistortRectifyMap if dom.lens_model == "pinhole" else \
        cv2.fisheye.initUndistortRectifyMap
    mx, my = init(K, D, np.eye(3), K, (w, h), cv2.CV_32FC1)
    ideal_mask = cv2.remap(s["mask"], mx, my, cv2.INTER_NEAREST)
    p = s["verts3d"].astype(np.float64) @ K.T
    uv_ideal = np.round(p[:, :2] / p[:, 2:]).astype(int)
    inside = (uv_ideal >= 0).all(1) & (uv_ideal[:, 0] < w) & (uv_ideal[:, 1] < h)
    near = cv2.dilate(ideal_mask, np.ones((5, 5), np.uint8))
    assert near[uv_ideal[inside, 1], uv_ideal[inside, 0]].mean() > 0.9


@pytest.mark.parametrize("domain", DOMAINS)
def test_pipeline_geometry_is_exact_for_distorted_cameras(samples, domain):
    s = samples[domain]
    v = _pipe()(s)
    K, R = v["K"].double(), v["R"].double()
    p = v["joints3d"].double() @ K.T
    np.testing.assert_allclose(p[:, :2] / p[:, 2:], v["joints2d"].double(), atol=2e-3)
    np.testing.assert_allclose(v["joints3d_orig"].double() @ R.T, v["joints3d"].double(),
                               atol=1e-6)
    assert v["dist"].shape == (8,) and v["dist"][:len(s["dist"])].tolist() == pytest.approx(
        s["dist"].tolist())
    # The rectified crop is the ideal canonical view: the output's hand mask covers the
    # projected joints, which the baseline (lens ignored) misplaces.
    base = _pipe(undistort=False)(s)
    uv = v["joints2d"].round().long().clamp(0, 95)
    assert v["mask"][uv[:, 1], uv[:, 0]].float().mean() > 0.8
    assert not torch.equal(v["image"], base["image"])


def test_no_distortion_is_unchanged(samples):
    s = dict(samples["wide"])
    assert "dist" not in s
    a = _pipe()(s)
    b = _pipe()({**s, "dist": np.zeros(5, np.float32), "dist_model": "pinhole"})
    c = _pipe(undistort=False)(s)
    for key in a:
        assert torch.equal(a[key], b[key]) and torch.equal(a[key], c[key]), key
    assert torch.equal(a["dist"], torch.zeros(8)) and int(a["dist_model"]) == 0


def test_loader_batches_distorted_and_plain_samples(samples):
    pipe = _pipe()
    data = [samples["wide"], samples["wide-radtan"], samples["wide-fisheye"]]
    batch = next(iter(make_loader(data, pipe, batch_size=3, shuffle=False)))
    assert batch["dist"].shape == (3, 8) and batch["dist_model"].tolist() == [0, 0, 1]


def test_bad_distortion_in_a_sample(samples):
    s = samples["wide-radtan"]
    with pytest.raises(ValueError, match="dist_model"):
        _pipe()({**s, "dist_model": "kannala"})
    with pytest.raises(ValueError, match=r"sample\['dist'\]"):
        _pipe()({**s, "dist": np.full(5, np.nan)})
