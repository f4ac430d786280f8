"""Does the input pipeline keep up with a GPU? Images per second per CPU core.

Writes a FreiHAND-layout training set of ``--num`` 224×224 JPEG images (with masks and
annotations) into a temporary directory and measures, over ``FreiHAND`` +
``InputPipeline`` (its public call only):

- decode: ``dataset[i]`` (JPEG image + mask decode, annotation copies);
- + rectify/warp: the deterministic evaluation input (``train=False``);
- + training augmentation, one view and two views (box jitter, rotation, photometric);

in the main process with one thread (``torch.set_num_threads(1)``,
``cv2.setNumThreads(1)``), then through ``make_loader`` with 1 and 2 worker processes
(one thread each). "per core" divides by the number of processes doing the work; "per
CPU-s" counts images per CPU second of those processes (process time in the main process,
the reaped workers' rusage for loaders), which a loaded machine disturbs less. Times are
medians of interleaved repetitions (main process) or of timed epochs after a warm-up epoch
(loaders). The target is 250 images/s per core at 224 px. ``--profile`` adds a cProfile of
the one-view training input.

    python -m benchmarks.bench_input              # 320 images, paper FreiHAND settings
    python -m benchmarks.bench_input --quick      # a smoke test
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import pstats
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from handdgp_models.data import FreiHAND, InputPipeline, PipelineConfig, make_loader

SIZE = 224
TARGET_PER_CORE = 250.0


def _photo_like(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A 224×224 RGB image with photo-like detail (a lit background, a skin-coloured hand
    blob, texture and sensor noise) and its 0/1 hand mask."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    base = rng.uniform(40, 200, 3)
    slope = rng.uniform(-60, 60, (2, 3))
    img = base + xx[..., None] * slope[0] + yy[..., None] * slope[1]
    texture = cv2.resize(rng.normal(0, 25, (28, 28, 3)).astype(np.float32), (SIZE, SIZE),
                         interpolation=cv2.INTER_CUBIC)
    img += texture
    mask = np.zeros((SIZE, SIZE), np.uint8)
    centre = rng.uniform(80, 144, 2).astype(int)
    cv2.ellipse(mask, tuple(int(c) for c in centre), (int(rng.uniform(25, 40)),
                int(rng.uniform(35, 55))), float(rng.uniform(0, 180)), 0, 360, 1, -1)
    for _ in range(5):  # fingers
        angle = rng.uniform(0, 2 * np.pi)
        tip = centre + (rng.uniform(50, 80) * np.array([np.cos(angle), np.sin(angle)]))
        cv2.line(mask, tuple(int(c) for c in centre), tuple(int(c) for c in tip), 1,
                 int(rng.uniform(8, 14)))
    skin = np.array([rng.uniform(170, 230), rng.uniform(120, 170), rng.uniform(90, 140)])
    img = np.where(mask[..., None] > 0, skin + 0.5 * texture, img)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), mask


def write_dataset(root: Path, num: int, seed: int = 0) -> None:
    """``num`` annotations and images in the FreiHAND training layout (one version)."""
    rng = np.random.default_rng(seed)
    (root / "training" / "rgb").mkdir(parents=True)
    (root / "training" / "mask").mkdir(parents=True)
    K, xyz, verts = [], [], []
    for i in range(num):
        f = rng.uniform(450, 650)
        k = np.array([[f, 0, 112 + rng.normal(0, 2)], [0, f, 112 + rng.normal(0, 2)], [0, 0, 1]])
        centre = np.array([rng.normal(0, 0.02), rng.normal(0, 0.02), rng.uniform(0.5, 0.8)])
        K.append(k.tolist())
        xyz.append((centre + rng.normal(0, 0.04, (21, 3))).tolist())
        verts.append((centre + rng.normal(0, 0.04, (778, 3))).tolist())
        img, mask = _photo_like(rng)
        cv2.imwrite(str(root / "training" / "rgb" / f"{i:08d}.jpg"), img[:, :, ::-1],
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(str(root / "training" / "mask" / f"{i:08d}.jpg"), mask * 255)
    for name, data in (("K", K), ("xyz", xyz), ("verts", verts)):
        with open(root / f"training_{name}.json", "w") as fh:
            json.dump(data, fh)
    mano = rng.normal(0, 0.5, (num, 1, 61)).tolist()
    with open(root / "training_mano.json", "w") as fh:
        json.dump(mano, fh)


def _pipelines(mode: str, focal: float) -> dict[str, InputPipeline | None]:
    size = {"out_size": SIZE, "focal": focal}
    return {
        "decode": None,
        "decode + rectify/warp": InputPipeline(PipelineConfig(mode=mode), train=False, **size),
        "+ training augmentation (1 view)": InputPipeline(PipelineConfig(mode=mode), **size),
        "+ training augmentation (2 views)": InputPipeline(
            PipelineConfig(mode=mode, two_views=True), **size),
    }


def _pass(dataset: FreiHAND, pipeline: InputPipeline | None, indices: list[int],
          generator: torch.Generator):
    def run() -> None:
        for i in indices:
            sample = dataset[i]
            if pipeline is not None:
                pipeline(sample, generator)
    return run


def _main_rates(passes: dict, images: int, reps: int, budget_s: float) -> dict:
    """Per pass: (images/s wall, images/s of CPU time), medians of interleaved repetitions."""
    for fn in passes.values():  # warm-up
        fn()
    wall: dict[str, list[float]] = {k: [] for k in passes}
    cpu: dict[str, list[float]] = {k: [] for k in passes}
    start = time.perf_counter()
    for rep in range(reps):
        for name, fn in passes.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(images / (time.perf_counter() - t0))
            cpu[name].append(images / (time.process_time() - c0))
        if rep >= 2 and time.perf_counter() - start > budget_s:
            break
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in passes}


def _children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _loader_rates(dataset: FreiHAND, pipeline: InputPipeline | None, workers: int,
                  batch: int, epochs: int) -> tuple[float, float]:
    """(images/s wall, median of the timed epochs; images per worker CPU second, over every
    epoch, read from the reaped workers' rusage)."""
    if pipeline is None:
        pipeline = _identity
    cpu0 = _children_cpu_s()
    loader = make_loader(dataset, pipeline, batch_size=batch, shuffle=True,
                         num_workers=workers, seed=0)
    rates, total = [], 0
    for epoch in range(epochs + 1):
        t0 = time.perf_counter()
        n = sum(len(b["index"]) if "index" in b else len(b["view1"]["index"])
                for b in loader)
        total += n
        if epoch:  # the first epoch starts the workers
            rates.append(n / (time.perf_counter() - t0))
    del loader  # the persistent workers are joined (reaped) here: their rusage counts
    gc.collect()
    return statistics.median(rates), total / (_children_cpu_s() - cpu0)


def _identity(sample: dict, generator: torch.Generator | None = None) -> dict:
    return {"image": torch.from_numpy(sample["image"]), "index": sample["index"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, default=320, help="images written")
    parser.add_argument("--mode", default="affine", help="rectification mode")
    parser.add_argument("--focal", type=float, default=1000.0, help="canonical focal (px)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3, help="timed loader epochs")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.num, args.epochs, args.workers = 48, 1, [1]

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    work = Path(tempfile.mkdtemp(prefix="bench_input_"))
    try:
        write_dataset(work / "FreiHAND", args.num)
        dataset = FreiHAND(work / "FreiHAND", "training", cache_dir=work / "cache")
        pipelines = _pipelines(args.mode, args.focal)
        indices = list(range(min(64, len(dataset))))
        gen = torch.Generator().manual_seed(0)
        main_rates = _main_rates({k: _pass(dataset, p, indices, gen)
                                  for k, p in pipelines.items()}, len(indices), reps=15,
                                 budget_s=2.0 if args.quick else 30.0)
        rows = [(name, "main, 1 thread", wall, cpu) for name, (wall, cpu) in main_rates.items()]
        for workers in args.workers:
            for name, pipe in pipelines.items():
                wall, cpu = _loader_rates(dataset, pipe, workers, args.batch, args.epochs)
                rows.append((name, f"DataLoader, {workers} worker{'s' * (workers > 1)}",
                             wall, cpu))

        print(f"Input pipeline on {args.num} FreiHAND-layout {SIZE}x{SIZE} JPEGs (+ masks); "
              f"mode={args.mode}, focal={args.focal:g}, out {SIZE} px; "
              f"target {TARGET_PER_CORE:.0f} images/s per core")
        header = (f"{'stage':34s} {'where':22s} {'images/s':>9s} {'per core':>9s} "
                  f"{'per CPU-s':>10s}")
        print(header)
        print("-" * len(header))
        for name, where, wall, cpu in rows:
            procs = int(where.split(",")[1].split()[0]) if "worker" in where else 1
            print(f"{name:34s} {where:22s} {wall:9.0f} {wall / procs:9.0f} {cpu:10.0f}")
        print("images/s: wall clock; per core: images/s divided by the worker processes; "
              "per CPU-s: images per CPU second of the processes doing the work (less "
              "sensitive to a loaded machine). Two views: each image gives two network "
              "inputs; the counts are dataset images.")

        if args.profile:
            prof = cProfile.Profile()
            run = _pass(dataset, pipelines["+ training augmentation (1 view)"],
                        list(range(len(dataset))), gen)
            prof.runcall(run)
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(18)
            print(out.getvalue())
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
