"""How does distortion-aware rectification compare with undistorting first in OpenCV?

A batch of B distinct photos 3×H×W from one distorted camera (pinhole with radial +
tangential coefficients, or fisheye), each cropped around a different hand box into an S×S
rectified view. Candidates, measured side by side in one run (medians of interleaved
repetitions), on the CPU:

- ``dgp_ops``: ``rectify_images(..., distortion=...)``: one fused pass per batch (float32), and
  ``warp_perspective_distorted`` on the uint8 photos with the same homographies;
- ``cv2 map+remap+warp``: what a user does today per image: ``initUndistortRectifyMap`` +
  ``remap`` to an undistorted full image, then ``warpPerspective`` of the crop (uint8);
- ``cv2 remap+warp (map cached)``: the same with the undistortion map computed once for the
  camera (the best case of that approach);
- ``cv2 rectify map+remap``: the crop's own map (``initUndistortRectifyMap`` with the
  rectifying rotation and the canonical K, S×S) + ``remap``, per image: OpenCV's one-pass
  equivalent of dgp_ops.

Ratios are other / dgp_ops uint8 (> 1: dgp_ops is faster).

    python -m benchmarks.bench_undistort            # 16 × 3×480×640 → 224×224
    python -m benchmarks.bench_undistort --quick    # tiny sizes, a smoke test
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import torch

import dgp_ops
from benchmarks._timing import fmt_time, time_interleaved
from dgp_ops import rectify as rc
from dgp_ops.lens import Distortion

LENSES = {"pinhole": [-0.28, 0.09, 0.0012, -0.0008, -0.02], "fisheye": [-0.013, 0.021, -0.011,
                                                                         0.002]}


def make_inputs(B: int, h: int, w: int, seed: int = 0):
    """uint8 HWC photos, a camera, and per-photo box centres and sides (pixels)."""
    g = np.random.default_rng(seed)
    photos = g.integers(0, 256, size=(B, h, w, 3), dtype=np.uint8)
    photos = np.ascontiguousarray(cv2.GaussianBlur(photos.reshape(B * h, w, 3), (5, 5), 2)
                                  .reshape(B, h, w, 3))
    f = 0.8 * w
    K = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])
    centers = np.stack([g.uniform(0.25 * w, 0.75 * w, B), g.uniform(0.25 * h, 0.75 * h, B)], 1)
    sides = g.uniform(0.2, 0.35, B) * min(h, w)
    return photos, K, centers, sides


def opencv_calls(model, D, K, photos, rect, S):
    """The three OpenCV pipelines as callables over the batch."""
    h, w = photos.shape[1:3]
    Hs, Rs, Kcs = (t.numpy() for t in (rect.H, rect.R, rect.K))
    init = cv2.initUndistortRectifyMap if model == "pinhole" else \
        cv2.fisheye.initUndistortRectifyMap
    cached = init(K, D, np.eye(3), K, (w, h), cv2.CV_16SC2)

    def per_image_map():
        for b in range(len(photos)):
            m1, m2 = init(K, D, np.eye(3), K, (w, h), cv2.CV_16SC2)
            und = cv2.remap(photos[b], m1, m2, cv2.INTER_LINEAR)
            cv2.warpPerspective(und, Hs[b], (S, S), flags=cv2.INTER_LINEAR)

    def cached_map():
        for b in range(len(photos)):
            und = cv2.remap(photos[b], *cached, cv2.INTER_LINEAR)
            cv2.warpPerspective(und, Hs[b], (S, S), flags=cv2.INTER_LINEAR)

    def rectify_map():
        for b in range(len(photos)):
            m1, m2 = init(K, D, Rs[b], Kcs[b], (S, S), cv2.CV_16SC2)
            cv2.remap(photos[b], m1, m2, cv2.INTER_LINEAR)

    return {"cv2 map+remap+warp": per_image_map, "cv2 remap+warp (map cached)": cached_map,
            "cv2 rectify map+remap": rectify_map}


def run(B: int, h: int, w: int, S: int, reps: int, budget_s: float) -> list[tuple]:
    rows = []
    photos, K, centers, sides = make_inputs(B, h, w)
    Kt = torch.tensor(K, dtype=torch.float32).expand(B, 3, 3)
    img_f = torch.from_numpy(photos).permute(0, 3, 1, 2).float().div(255).contiguous()
    img_u8 = torch.from_numpy(photos).permute(0, 3, 1, 2)  # channels-last, read in place
    center = torch.tensor(centers, dtype=torch.float32)
    side = torch.tensor(sides, dtype=torch.float32)
    for model, coeffs in LENSES.items():
        D = np.array(coeffs)
        dist = Distortion(torch.tensor(coeffs, dtype=torch.float32), model)
        rect = rc.rectification(Kt.double(), center.double(), side.double(), out_size=S,
                                distortion=Distortion(dist.coeffs.double(), model))
        H32 = rect.H.float()
        fns = {
            "dgp_ops uint8": lambda H32=H32, dist=dist: dgp_ops.warp_perspective_distorted(
                img_u8, H32, Kt, dist, (S, S)),
            "dgp_ops float32 (rectify_images)": lambda dist=dist: rc.rectify_images(
                img_f, Kt, center, side, out_size=S, distortion=dist),
            **opencv_calls(model, D, K, photos, rect, S),
        }
        times = time_interleaved(fns, reps=reps, budget_s=budget_s)
        base = times["dgp_ops uint8"]
        for name, t in times.items():
            rows.append((model, name, t, t / base))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    ap.add_argument("--threads", type=int, default=None, help="torch and OpenCV threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    B, h, w, S = (2, 60, 80, 32) if args.quick else (16, 480, 640, 224)
    rows = run(B, h, w, S, reps=3 if args.quick else 15, budget_s=1.0 if args.quick else 20.0)
    print(f"# {B} photos 3x{h}x{w} (one distorted camera) -> {S}x{S} rectified crops, CPU, "
          f"{torch.get_num_threads()} threads; ratio = time / dgp_ops uint8")
    print(f"| {'lens':8} | {'method':34} | {'time (batch)':>12} | {'ratio':>6} |")
    print(f"|{'-' * 10}|{'-' * 36}|{'-' * 14}|{'-' * 8}|")
    for model, name, t, r in rows:
        print(f"| {model:8} | {name:34} | {fmt_time(t):>12} | {r:6.2f} |")


if __name__ == "__main__":
    main()
