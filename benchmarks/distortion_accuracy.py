"""What does distortion-aware rectification buy on distorted cameras?

A network is trained briefly on ideal pinhole cameras (the ``tiny`` config, more steps and
samples; a few CPU minutes), then evaluated on synthetic wide-angle test sets rendered through
three lenses (:data:`handdgp_models.data.synthetic.CAMERA_DOMAINS`): an ideal pinhole
(``wide``), a barrel + tangential pinhole lens (``wide-radtan``) and a fisheye
(``wide-fisheye``). Each distorted set is evaluated twice: the input pipeline samples the
distorted image through its lens into the canonical view (``input.undistort``, the default),
or ignores the coefficients as if the camera were an ideal pinhole (the baseline). Printed, in
mm, one table: the network's CS-MJE (camera space, no alignment) and RR-MJE (root-relative),
and the oracle's CS-MJE: ground-truth root-relative joints placed by DGP
(``dgp_ops.solve_translation``, equal weights) on the ground-truth keypoints *as they appear in
the rectified crop*, i.e. the camera-space error the input geometry alone causes.

    python -m benchmarks.distortion_accuracy                 # the table in docs/warp_and_rectify.md
    python -m benchmarks.distortion_accuracy --quick         # a smoke test (seconds of training)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile

import numpy as np
import torch

import dgp_ops
from handdgp_models.build import build_pipeline
from handdgp_models.config import load_config
from handdgp_models.data.synthetic import CAMERA_DOMAINS, SyntheticHands
from handdgp_models.evaluate import predict_dataset
from handdgp_models.run import Run
from handdgp_models.train import train

TEST_DOMAINS = ("wide", "wide-radtan", "wide-fisheye")
DEPTH = (0.4, 0.9)  # metres: the training sources' range
ORIENTATION_SPREAD = 90.0


def train_pinhole(out: str, steps: int, samples: int) -> Run:
    """The ``tiny`` config trained for ``steps`` on ``samples`` pinhole images."""
    source = {"samples": samples, "orientation_spread": ORIENTATION_SPREAD, "depth": list(DEPTH)}
    cfg = load_config("tiny", [f"train.steps={steps}", "train.batch_size=16",
                               f"train.checkpoint_every={steps}",
                               f"data.train={json.dumps([source])}"])
    run = Run(cfg, out)
    train(run, progress=False)
    return run


def test_set(domain: str, samples: int, template) -> list[dict]:
    """The rendered test samples of one lens (rendered once, evaluated twice)."""
    camera = dataclasses.replace(CAMERA_DOMAINS[domain], depth=DEPTH)
    ds = SyntheticHands(samples, seed=2000, camera=camera, occlusion_prob=0.0,
                        orientation_spread=ORIENTATION_SPREAD, hand_model=template)
    return [ds[i] for i in range(len(ds))]


def oracle_cs_mje_mm(data: list[dict], pipeline, root: int = 0) -> float:
    """Camera-space error of DGP on perfect inputs seen through ``pipeline``: the true
    root-relative joints in the rectified camera, the true keypoints where the crop shows
    them, the crop's intrinsics; mm."""
    views = [pipeline(s) for s in data]
    j3 = torch.stack([v["joints3d"] for v in views]).double()
    rel = j3 - j3[:, root:root + 1]
    t = dgp_ops.solve_translation(rel, torch.stack([v["joints2d"] for v in views]).double(),
                                  torch.stack([v["K"] for v in views]).double())
    R = torch.stack([v["R"] for v in views]).double()
    cam = (rel + t[:, None]) @ R  # rectified camera -> original camera (R^T Y)
    gt = torch.stack([v["joints3d_orig"] for v in views]).double()
    return 1000 * float(torch.linalg.vector_norm(cam - gt, dim=-1).mean())


def errors_mm(pred: dict) -> tuple[float, float]:
    """CS-MJE and RR-MJE in mm."""
    cs = np.linalg.norm(pred["joints"] - pred["gt_joints"], axis=-1).mean()
    rel = pred["joints"] - pred["joints"][:, :1]
    gt_rel = pred["gt_joints"] - pred["gt_joints"][:, :1]
    return 1000 * cs, 1000 * np.linalg.norm(rel - gt_rel, axis=-1).mean()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--train-samples", type=int, default=600)
    ap.add_argument("--test-samples", type=int, default=60)
    args = ap.parse_args()
    if args.quick:
        args.steps, args.train_samples, args.test_samples = 4, 16, 3
    with tempfile.TemporaryDirectory() as out:
        run = train_pinhole(out, args.steps, args.train_samples)
        model = run.trained_network("cpu")
        rows = []
        for domain in TEST_DOMAINS:
            data = test_set(domain, args.test_samples, run.template)
            modes = (True, False) if CAMERA_DOMAINS[domain].distorted else (True,)
            for undistort in modes:
                cfg = dataclasses.replace(run.config, input=dataclasses.replace(
                    run.config.input, undistort=undistort))
                pipeline = build_pipeline(cfg, run.template, False)
                pred = predict_dataset(model, data, pipeline)
                rows.append((domain, undistort, *errors_mm(pred),
                             oracle_cs_mje_mm(data, pipeline, run.template.root_index)))
    print(f"# trained {args.steps} steps on {args.train_samples} pinhole images (tiny config); "
          f"{args.test_samples} test images per lens; mm")
    print(f"| {'test cameras':14} | {'rectification':18} | {'CS-MJE':>7} | {'RR-MJE':>7} | "
          f"{'oracle CS-MJE':>13} |")
    print(f"|{'-' * 16}|{'-' * 20}|{'-' * 9}|{'-' * 9}|{'-' * 15}|")
    for domain, undistort, cs, rr, oracle in rows:
        how = ("ideal pinhole" if not CAMERA_DOMAINS[domain].distorted else
               "through the lens" if undistort else "lens ignored")
        print(f"| {domain:14} | {how:18} | {cs:7.1f} | {rr:7.1f} | {oracle:13.2f} |")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
