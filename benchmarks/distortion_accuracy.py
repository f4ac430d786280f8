"""What does distortion-aware rectification buy on distorted cameras?

A network is trained briefly on ideal pinhole cameras (the ``tiny`` config, more steps and
samples; a few CPU minutes), then evaluated on synthetic wide-angle test sets rendered through
three lenses (:data:`handdgp_models.data.synthetic.CAMERA_DOMAINS`): an ideal pinhole
(``wide``), a barrel + tangential pinhole lens (``wide-radtan``) and a fisheye
(``wide-fisheye``). Each distorted set is evaluated twice: the input pipeline samples the
distorted image through its lens into the canonical view (``input.undistort``, the default),
or ignores the coefficients as if the camera were an ideal pinhole (the baseline). Printed:
CS-MJE (camera space, no alignment) and RR-MJE (root-relative), in mm, one table.

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
                pred = predict_dataset(model, data, build_pipeline(cfg, run.template, False))
                rows.append((domain, undistort, *errors_mm(pred)))
    print(f"# trained {args.steps} steps on {args.train_samples} pinhole images (tiny config); "
          f"{args.test_samples} test images per lens; mm")
    print(f"| {'test cameras':14} | {'rectification':22} | {'CS-MJE':>7} | {'RR-MJE':>7} |")
    print(f"|{'-' * 16}|{'-' * 24}|{'-' * 9}|{'-' * 9}|")
    for domain, undistort, cs, rr in rows:
        how = ("ideal pinhole" if not CAMERA_DOMAINS[domain].distorted else
               "through the lens" if undistort else "lens ignored")
        print(f"| {domain:14} | {how:22} | {cs:7.1f} | {rr:7.1f} |")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
