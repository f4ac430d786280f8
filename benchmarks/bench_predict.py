"""How fast is ``predict`` on a folder of photos? Images per second end to end and in the
input pipeline and network, batched across images or one hand at a time, with and without
the files it writes.

Takes a checkpoint's own test images (rendered or read through its ``data.test``), writes
``--images`` of them into a temporary folder with a boxes file (the test protocol's box, a
right hand), and runs :func:`handdgp_models.prediction_files.predict_to_folder` on it:

- batch 1, no files written beyond the JSON (the network one hand at a time);
- batch 16, the same (hands batched across images);
- batch 16, everything ``predict`` writes by default (JSON, ``.obj``, shaded overlays);
- batch 16, two hands per image (the second a left hand, mirrored), everything written.

Settings run in turn, ``--reps`` times each, interleaved; the table gives the best repetition
of each (a loaded machine slows runs, never speeds them up), and images per CPU second of
this process (which other processes on the machine disturb less than wall time).

    python -m benchmarks.bench_predict --checkpoint runs/reference/checkpoint.pt
    python -m benchmarks.bench_predict --quick    # a smoke test on a 1-step tiny model
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from handdgp_models.camera import default_camera
from handdgp_models.detections import boxes_file
from handdgp_models.engine import Predictor
from handdgp_models.media import open_inputs
from handdgp_models.prediction_files import PredictSettings, predict_to_folder
from handdgp_models.run import Run

SETTINGS = {
    "batch 1, JSON only": (1, False, False),
    "batch 16, JSON only": (16, False, False),
    "batch 16, JSON + obj + overlays": (16, True, False),
    "batch 16, 2 hands (1 left), all files": (16, True, True),
}


def write_inputs(run: Run, folder: Path, count: int) -> dict[bool, Path]:
    """The first ``count`` test images as PNGs, and boxes files with one right hand (the
    protocol's box) and with a second, left hand beside it."""
    folder.mkdir(parents=True)
    boxes: dict[bool, dict] = {False: {}, True: {}}
    for i in range(min(count, len(run.test_data))):
        sample = run.test_data[i]
        name = f"test_{i:04d}.png"
        cv2.imwrite(str(folder / name), np.asarray(sample["image"])[..., ::-1])
        cu, cv, side = (float(x) for x in sample["box"])
        right = {"box": [cu - side / 2, cv - side / 2, cu + side / 2, cv + side / 2],
                 "right": True}
        w = sample["image"].shape[1]
        left = {"box": [w - 1 - right["box"][2], right["box"][1], w - 1 - right["box"][0],
                        right["box"][3]], "right": False}
        boxes[False][name], boxes[True][name] = [right], [right, left]
    paths = {}
    for two, content in boxes.items():
        paths[two] = folder.parent / f"boxes_{int(two)}.json"
        paths[two].write_text(json.dumps(content))
    return paths


def measure(predictor: Predictor, folder: Path, boxes: dict[bool, Path], out: Path,
            reps: int) -> dict[str, dict]:
    """The best repetition's summary of each setting."""
    inputs = open_inputs([folder])
    best: dict[str, dict] = {}
    for rep in range(reps):
        for name, (batch, files, two) in SETTINGS.items():
            settings = PredictSettings(batch, ("obj",) if files else (), files)
            cpu = time.process_time()
            s = predict_to_folder(predictor, inputs, out / f"{rep}_{batch}_{files}_{two}",
                                  default_camera, boxes_file(boxes[two], inputs.keys()),
                                  settings)
            s["images_per_cpu_s"] = s["images"] / max(time.process_time() - cpu, 1e-9)
            if name not in best or s["seconds"] < best[name]["seconds"]:
                best[name] = s
    return best


def table(best: dict[str, dict]) -> str:
    base = best["batch 1, JSON only"]["network_images_per_s"]
    lines = ["| setting | images/s end to end | images per CPU-s end to end | images/s "
             "pipeline + network | network speed-up vs batch 1 |", "|---|---|---|---|---|"]
    for name, s in best.items():
        lines.append(f"| {name} | {s['images_per_s']:.1f} | {s['images_per_cpu_s']:.1f} | "
                     f"{s['network_images_per_s']:.1f} | "
                     f"{s['network_images_per_s'] / base:.2f}x |")
    return "\n".join(lines)


def _quick_checkpoint(root: Path) -> Path:
    from handdgp_models.config import load_config
    from handdgp_models.train import train

    cfg = load_config("tiny", [f'cache_dir="{root / "cache"}"', "train.steps=1"])
    train(cfg, root / "run", progress=False)
    return root / "run" / "checkpoint.pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="a training checkpoint (its data.test images)")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a 1-step tiny model, 4 images")
    args = parser.parse_args()
    if args.checkpoint is None and not args.quick:
        parser.error("give --checkpoint (or --quick)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = _quick_checkpoint(tmp) if args.quick else Path(args.checkpoint)
        count, reps = (4, 1) if args.quick else (args.images, args.reps)
        run = Run.from_checkpoint(ckpt, roles=("test",))
        predictor = Predictor(run)
        boxes = write_inputs(run, tmp / "images", count)
        best = measure(predictor, tmp / "images", boxes, tmp / "out", reps)
    print(f"predict on {count} test images of {ckpt.name} ({run.config.model.backbone}, "
          f"{run.config.model.input_size} px), {torch.get_num_threads()} threads")
    print(table(best))


if __name__ == "__main__":
    main()
