"""Command line: ``handdgp train|eval|predict|main`` (also ``python -m handdgp_models``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from .errors import DEBUG_FLAG, UserArgumentParser, run_cli

__all__ = ["main", "predict_image", "run_main"]


def _add_config_args(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--config", default=default,
                   help="named config (paper, small, tiny) or a JSON/TOML file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override, e.g. --set train.steps=100 (repeatable)")


def _init_distributed() -> bool:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    import torch.distributed as dist

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    return True


def _cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .train import train

    cfg = load_config(args.config, args.set)
    distributed = _init_distributed()
    try:
        summary = train(cfg, args.out, resume=not args.no_resume, progress=not args.quiet)
    finally:
        if distributed:
            import torch.distributed as dist

            dist.destroy_process_group()
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary))
    return 0


def _eval_into(checkpoint: Path, out: Path, cfg_overrides: list[str], progress: bool) -> dict:
    from .checkpoint import restoring_from
    from .config import apply_overrides
    from .evaluate import evaluate
    from .report import metrics_table
    from .train import build_datasets, model_from_checkpoint

    with restoring_from(checkpoint):
        model, cfg = model_from_checkpoint(checkpoint)
    cfg = apply_overrides(cfg, cfg_overrides)
    train_ds, test_ds = build_datasets(cfg, checkpoint.parent, progress=progress)
    result = evaluate(model, cfg, test_ds, out, train_ds=train_ds, progress=progress)
    cols = {"HandDGP": result["model"]}
    if "baseline_mean_t" in result:
        cols["mean training translation"] = result["baseline_mean_t"]
    table = metrics_table(cols)
    (out / "metrics.md").write_text(table + "\n")
    print(table)
    return result


def _cmd_eval(args: argparse.Namespace) -> int:
    ckpt = Path(args.checkpoint)
    if not ckpt.is_file():
        raise SystemExit(f"--checkpoint: no file {ckpt}")
    _eval_into(ckpt, Path(args.out), args.set, not args.quiet)
    return 0


def run_main(out: str | os.PathLike, config: str = "small", overrides: list[str] | None = None,
             progress: bool = True) -> dict:
    """Train, evaluate on the test cameras and write ``report.md`` into ``out``."""
    from .config import load_config
    from .evaluate import evaluate
    from .model import build_model
    from .report import write_report
    from .train import build_datasets, load_checkpoint, train

    out = Path(out)
    cfg = load_config(config, overrides)
    summary = train(cfg, out, progress=progress)
    state = load_checkpoint(out / "checkpoint.pt")
    model = build_model(cfg["model"], cache_dir=cfg["train"].get("hierarchy_cache"))
    model.load_state_dict(state["model"])
    train_ds, test_ds = build_datasets(cfg, out)
    result = evaluate(model, cfg, test_ds, out, train_ds=train_ds, progress=progress)
    overlays = sorted(f"overlays/{p.name}" for p in (out / "overlays").glob("*.png"))
    report = write_report(out, result, cfg, summary, overlays)
    print(report.read_text())
    return result


def _cmd_main(args: argparse.Namespace) -> int:
    run_main(args.out, args.config, args.set, progress=not args.quiet)
    return 0


def _parse_box(text: str | None, h: int, w: int) -> np.ndarray:
    from .inputs import parse_box

    return parse_box(text, h, w, "--box")


def _parse_intrinsics(path: str | None, h: int, w: int) -> np.ndarray:
    from .inputs import read_intrinsics

    return read_intrinsics(path, h, w, "--intrinsics")


def predict_image(model, cfg: dict, image: np.ndarray, K: np.ndarray, box: np.ndarray) -> dict:
    """Camera-space prediction for one RGB uint8 (H, W, 3) image. Returns numpy arrays."""
    from .train import make_pipeline

    x = make_pipeline(cfg, train=False)({"image": image, "K": K, "box": box})
    with torch.no_grad():
        out = model(x["image"][None], x["K"][None], x["R"][None])
    return {"joints": out["joints_orig"][0].numpy(), "verts": out["verts_orig"][0].numpy(),
            "translation": (out["t"][0] @ x["R"]).numpy(), "weights": out["weights"][0].numpy(),
            "valid": bool(out["valid"][0])}


def _cmd_predict(args: argparse.Namespace) -> int:
    import cv2

    from .checkpoint import restoring_from
    from .evaluate import render_overlay
    from .files import write_json
    from .inputs import read_image_option
    from .train import model_from_checkpoint

    image = read_image_option(args.image, "--image")
    h, w = image.shape[:2]
    K = _parse_intrinsics(args.intrinsics, h, w)
    box = _parse_box(args.box, h, w)
    with restoring_from(args.checkpoint):
        model, cfg = model_from_checkpoint(args.checkpoint)
    pred = predict_image(model, cfg, image, K, box)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "prediction.json", {
        "joints": pred["joints"].tolist(), "vertices": pred["verts"].tolist(),
        "translation": pred["translation"].tolist(), "weights": pred["weights"].tolist(),
        "valid": pred["valid"], "K": K.tolist(), "box": box.tolist(), "units": "metres"})
    over = render_overlay({"image": image, "K": K}, pred["verts"], pred["joints"],
                          model.faces.numpy())
    cv2.imwrite(str(out / "overlay.png"), over[..., ::-1])
    print(f"wrote {out / 'prediction.json'} and {out / 'overlay.png'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = UserArgumentParser(prog="handdgp", description=__doc__)
    parser.add_argument(DEBUG_FLAG, action="store_true",
                        help="print the traceback of an error (accepted anywhere on the line)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a model (resumes from OUT/checkpoint.pt)")
    _add_config_args(p, "small")
    p.add_argument("--out", required=True)
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_train)
    p = sub.add_parser("eval", help="evaluate a checkpoint on the synthetic test cameras")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_eval)
    p = sub.add_parser("predict", help="camera-space hand mesh for one image")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--intrinsics", help="JSON: a 3x3 K, {'K': ...} or fx, fy, cx, cy")
    p.add_argument("--box", help="cu,cv,side in pixels (default: centred box)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_cmd_predict)
    p = sub.add_parser("main", help="train the reference model, evaluate, write report.md")
    _add_config_args(p, "small")
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_main)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``handdgp`` console script.

    A user error (bad option, unreadable or invalid file) prints one line on stderr naming
    the option or file and returns 2; ``--debug`` adds the traceback.
    """
    return run_cli(_run, argv)


def _run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted; checkpoint saved", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
