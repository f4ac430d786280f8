"""Deployment latency on the CPU: one predict call end to end, eager vs torch.compile vs an
AOTInductor package.

    python -m benchmarks.bench_deploy                      # small and paper networks, B=1, 8
    python -m benchmarks.bench_deploy --configs small --batches 1 --reps 10

One call is what ``predict`` does for B images: decode each JPEG (640x480), rectify it to the
network's canonical camera through the input pipeline (dgp_ops' warp), run the network and the
DGP solve, and bring the joints and vertices back to the original camera. The three rows of a
configuration differ only in how the network runs: eager PyTorch, ``torch.compile`` of the same
module, or the AOTInductor package ``handdgp export`` writes (loaded with
``torch._inductor.aoti_load_package``). The network has random weights: timing does not depend
on them. Compilation times are reported separately; times are medians of interleaved
repetitions, with the ratio to eager measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from benchmarks._timing import fmt_time, time_interleaved

IMAGE_H, IMAGE_W = 480, 640


def _jpegs(count: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        img = cv2.GaussianBlur(rng.integers(0, 255, (IMAGE_H, IMAGE_W, 3), np.uint8), (9, 9), 3)
        out.append(cv2.imencode(".jpg", img)[1].tobytes())
    return out


def _setup(config: str, cache: Path):
    from handdgp_models.config import load_config
    from handdgp_models.export import DeployedNetwork
    from handdgp_models.run import Run

    run = Run(load_config(config, [f'cache_dir="{cache}"']), roles=())
    torch.manual_seed(0)
    network = run.new_network().eval()
    return run, network, DeployedNetwork(network).eval()


def _end_to_end(pipeline, forward, jpegs: list[bytes], K: np.ndarray, box: np.ndarray):
    """One predict call over ``jpegs``: decode, rectify, network, back to the camera."""
    def call():
        samples = [pipeline({"image": cv2.imdecode(np.frombuffer(j, np.uint8),
                                                   cv2.IMREAD_COLOR)[..., ::-1], "K": K,
                             "box": box}) for j in jpegs]
        batch = [torch.stack([s[k] for s in samples]) for k in ("image", "K", "R")]
        with torch.no_grad():
            joints, verts, *_ = forward(*batch)
        return joints.numpy(), verts.numpy()
    return call


def measure(config: str, batches: list[int], reps: int, work: Path) -> list[dict]:
    from handdgp_models.export import export_network

    run, network, deployed = _setup(config, work / "cache")
    pipeline = run.pipeline(train=False)
    K = np.array([[600.0, 0, IMAGE_W / 2], [0, 600.0, IMAGE_H / 2], [0, 0, 1]], np.float32)
    box = np.array([IMAGE_W / 2 + 40, IMAGE_H / 2 - 20, 180.0], np.float32)
    t0 = time.perf_counter()
    package = torch._inductor.aoti_compile_and_package(
        export_network(network), package_path=str(work / f"{config}.pt2"))
    aoti = torch._inductor.aoti_load_package(package)
    aoti_s = time.perf_counter() - t0
    compiled = torch.compile(deployed, dynamic=True)
    rows = []
    for b in batches:
        jpegs = _jpegs(b)
        fns = {name: _end_to_end(pipeline, fwd, jpegs, K, box)
               for name, fwd in (("eager", deployed), ("torch.compile", compiled),
                                 ("AOTInductor", aoti))}
        t0 = time.perf_counter()
        fns["torch.compile"]()  # the first call compiles
        compile_s = time.perf_counter() - t0
        times = time_interleaved(fns, reps=reps, warmup=1, budget_s=60.0)
        for name, t in times.items():
            rows.append({"config": config, "batch": b, "method": name, "call": t,
                         "per_image": t / b, "vs_eager": times["eager"] / t,
                         "build": {"torch.compile": compile_s, "AOTInductor": aoti_s}.get(name)})
    return rows


def format_table(rows: list[dict]) -> str:
    head = (f"{'config':<8}{'B':>3}  {'method':<14}{'per call':>11}{'per image':>11}"
            f"{'vs eager':>10}{'compile':>10}")
    lines = [head, "-" * len(head)]
    for r in rows:
        build = "-" if r["build"] is None else f"{r['build']:.0f} s"
        lines.append(f"{r['config']:<8}{r['batch']:>3}  {r['method']:<14}"
                     f"{fmt_time(r['call']):>11}{fmt_time(r['per_image']):>11}"
                     f"{r['vs_eager']:>9.2f}x{build:>10}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=["small", "paper"])
    p.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    p.add_argument("--reps", type=int, default=10, help="timed repetitions (at most)")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_deploy_") as tmp:
        for config in args.configs:
            rows += measure(config, args.batches, args.reps, Path(tmp))
            print(f"  {config} done", flush=True)
    print(f"\nend-to-end predict latency on the CPU (torch {torch.__version__}, "
          f"{os.cpu_count()} cores, {torch.get_num_threads()} threads; {IMAGE_W}x{IMAGE_H} "
          "JPEGs); medians of interleaved repetitions")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
