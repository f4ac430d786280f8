"""Command line: ``handdgp train|eval|predict|main`` (also ``python -m handdgp_models``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

from .errors import DEBUG_FLAG, UserArgumentParser, run_cli
from .files import strict_json

__all__ = ["main", "predict_image", "run_main", "train_and_evaluate"]


def _add_config_args(p: argparse.ArgumentParser, default: str) -> None:
    from .config import NAMED_CONFIGS

    p.add_argument("--config", default=default,
                   help=f"named config ({', '.join(NAMED_CONFIGS)}) or a JSON/TOML file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override, e.g. --set train.steps=100 (repeatable; JSON values)")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", metavar="ROOT",
                   help="dataset directory of the FreiHAND / HO3D-v2 / Human3.6M sources")
    p.add_argument("--mano", metavar="PATH",
                   help="MANO_RIGHT.pkl (or .npz) for real datasets (default: embedded hand)")
    _add_body_args(p)


def _add_body_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--smpl", metavar="PATH",
                   help="SMPL_NEUTRAL.pkl (or .npz) for Human3.6M (body configs)")
    p.add_argument("--h36m-regressor", metavar="PATH",
                   help="J_regressor_h36m_correct.npy: also score the 17 Human3.6M joints")


def _with_body_args(cfg, args: argparse.Namespace):
    """``--smpl`` / ``--h36m-regressor`` fill the body section (body configs only)."""
    for flag, key in (("smpl", "smpl"), ("h36m_regressor", "h36m_regressor")):
        value = getattr(args, flag, None)
        if value is None:
            continue
        if cfg.body is None:
            raise ValueError(f"--{flag.replace('_', '-')}: the config has no body section "
                             "(use --config h36m for the full-body variant)")
        setattr(cfg.body, key, value)
    return cfg


def _with_data_args(cfg, args: argparse.Namespace):
    """``--data-root`` fills the root of every real source; ``--mano`` the hand model;
    ``--smpl`` / ``--h36m-regressor`` the body."""
    for src in [*cfg.data.train, cfg.data.test]:
        if args.data_root is not None and src.dataset != "synthetic":
            src.root = args.data_root
    if args.mano is not None:
        cfg.hand.mano = args.mano
    _with_body_args(cfg, args)
    if getattr(args, "backbone_weights", None) is not None:
        cfg.model.backbone_weights = args.backbone_weights
    return cfg


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

    cfg = _with_data_args(load_config(args.config, args.set), args)
    distributed = _init_distributed()
    try:
        summary = train(cfg, args.out, resume=not args.no_resume, progress=not args.quiet)
    finally:
        if distributed:
            import torch.distributed as dist

            dist.destroy_process_group()
    if int(os.environ.get("RANK", "0")) == 0:
        print(strict_json(summary, nan_as_null=True))
    return 0


def _test_source(cfg, args: argparse.Namespace):
    """The evaluation source: the checkpoint's ``data.test`` or the one ``--dataset`` names."""
    from .config import RunConfig, SourceConfig

    src = cfg.data.test
    if args.dataset is not None and args.dataset != src.dataset:
        src = (RunConfig().data.test if args.dataset == "synthetic"
               else SourceConfig(dataset=args.dataset))
    if args.split is not None:
        src.split = args.split
    cfg.data.test = src
    return cfg


def _print_eval(result: dict, out: Path) -> None:
    from .report import metrics_table

    lines = [f"wrote {out / 'pred.json'} ({result['samples']} images, "
             f"{result['images_per_s']:.1f} images/s, {result['invalid']} degenerate DGP "
             "systems)"]
    if "model" in result:
        cols = {"HandDGP": result["model"]}
        if "baseline_mean_t" in result:
            cols["mean training translation"] = result["baseline_mean_t"]
        table = metrics_table(cols)
        (out / "metrics.md").write_text(table + "\n")
        lines += [table, f"metrics in {out / 'metrics.json'}"]
    else:
        lines.append("no ground truth in this split: submit pred.json to the benchmark's server")
    print("\n".join(lines))


def _cmd_eval(args: argparse.Namespace) -> int:
    from .build import (
        build_template,
        build_test_data,
        build_train_data,
        model_from_checkpoint,
        resolve_device,
    )
    from .checkpoint import restoring_from
    from .config import apply_overrides
    from .evaluate import evaluate

    ckpt = Path(args.checkpoint)
    if not ckpt.is_file():
        raise ValueError(f"--checkpoint: no file {ckpt}")
    device = resolve_device(args.device)
    with restoring_from(ckpt):
        model, cfg = model_from_checkpoint(ckpt, mano=args.mano, smpl=args.smpl, device=device)
    cfg = _with_data_args(_test_source(apply_overrides(cfg, args.set), args), args)
    hand = build_template(cfg, ("test",))
    test_ds = build_test_data(cfg, ckpt.parent, hand, progress=not args.quiet)
    train_ds = None
    if all(s.dataset == "synthetic" for s in [*cfg.data.train, cfg.data.test]):
        train_ds = build_train_data(cfg, ckpt.parent, hand, progress=not args.quiet)
    out = Path(args.out)
    result = evaluate(model, cfg, test_ds, out, train_ds=train_ds, progress=not args.quiet,
                      device=device)
    _print_eval(result, out)
    return 0


def train_and_evaluate(cfg, out: str | os.PathLike, *, progress: bool = True,
                       device: str | None = None) -> tuple[dict, dict]:
    """Train ``cfg`` into ``out`` (resuming from its checkpoint), then evaluate the checkpoint
    on the config's test set (with the mean-translation baseline from the training set).

    Args:
        device: evaluation device; None: ``cfg.train.device`` resolved.

    Returns:
        The trainer's summary and :func:`~handdgp_models.evaluate.evaluate`'s result.
    """
    from .build import (
        build_template,
        build_test_data,
        build_train_data,
        model_from_checkpoint,
        resolve_device,
    )
    from .evaluate import evaluate
    from .train import train

    out = Path(out)
    summary = train(cfg, out, progress=progress)
    device = resolve_device(cfg.train.device) if device is None else device
    model, _ = model_from_checkpoint(out / "checkpoint.pt", device=device)
    hand = build_template(cfg)
    train_ds = build_train_data(cfg, out, hand)
    test_ds = build_test_data(cfg, out, hand)
    result = evaluate(model, cfg, test_ds, out, train_ds=train_ds, progress=progress,
                      device=device)
    return summary, result


def run_main(out: str | os.PathLike, config: str = "small", overrides: list[str] | None = None,
             progress: bool = True) -> dict:
    """Train, evaluate on the test cameras and write ``report.md`` into ``out``."""
    from .config import load_config
    from .report import write_report

    out = Path(out)
    cfg = load_config(config, overrides)
    summary, result = train_and_evaluate(cfg, out, progress=progress, device="cpu")
    overlays = sorted(f"overlays/{p.name}" for p in (out / "overlays").glob("*.png"))
    report = write_report(out, result, cfg, summary, overlays)
    print(report.read_text())
    return result


def _cmd_main(args: argparse.Namespace) -> int:
    run_main(args.out, args.config, args.set, progress=not args.quiet)
    return 0


def _cmd_data_check(args: argparse.Namespace) -> int:
    from .data.check import check_dataset

    report = check_dataset(args.dataset, args.data_root, subset=args.subset,
                           decode=not args.no_decode, progress=not args.quiet)
    print(report.text())
    return 0 if report.ok else 1


def _parse_box(text: str | None, h: int, w: int) -> np.ndarray:
    from .inputs import parse_box

    return parse_box(text, h, w, "--box")


def _parse_intrinsics(path: str | None, h: int, w: int) -> np.ndarray:
    from .inputs import read_intrinsics

    return read_intrinsics(path, h, w, "--intrinsics")


def predict_image(model, cfg, image: np.ndarray, K: np.ndarray, box: np.ndarray) -> dict:
    """Camera-space prediction for one RGB uint8 (H, W, 3) image. Returns numpy arrays."""
    from .build import build_pipeline

    x = build_pipeline(cfg, train=False)({"image": image, "K": K, "box": box})
    with torch.no_grad():
        out = model(x["image"][None], x["K"][None], x["R"][None])
    return {"joints": out["joints_orig"][0].numpy(), "verts": out["verts_orig"][0].numpy(),
            "translation": (out["t"][0] @ x["R"]).numpy(), "weights": out["weights"][0].numpy(),
            "valid": bool(out["valid"][0])}


def _cmd_predict(args: argparse.Namespace) -> int:
    import cv2

    from .build import model_from_checkpoint, template_bones
    from .checkpoint import restoring_from
    from .evaluate import render_overlay
    from .files import write_json
    from .inputs import read_image_option

    image = read_image_option(args.image, "--image")
    h, w = image.shape[:2]
    K = _parse_intrinsics(args.intrinsics, h, w)
    box = _parse_box(args.box, h, w)
    with restoring_from(args.checkpoint):
        model, cfg = model_from_checkpoint(args.checkpoint, mano=args.mano, smpl=args.smpl)
    pred = predict_image(model, cfg, image, K, box)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "prediction.json", {
        "joints": pred["joints"].tolist(), "vertices": pred["verts"].tolist(),
        "translation": pred["translation"].tolist(), "weights": pred["weights"].tolist(),
        "valid": pred["valid"], "K": K.tolist(), "box": box.tolist(), "units": "metres"})
    over = render_overlay({"image": image, "K": K}, pred["verts"], pred["joints"],
                          model.faces.numpy(), bones=template_bones(cfg))
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
    _add_data_args(p)
    p.add_argument("--backbone-weights", metavar="PATH",
                   help="torchvision state dict to initialise the backbone (ImageNet)")
    p.add_argument("--out", required=True)
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_train)
    p = sub.add_parser("eval", help="predict a test set: pred.json, and metrics with ground "
                                    "truth")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--dataset", choices=("freihand", "ho3d", "h36m", "synthetic"),
                   help="test set (default: the checkpoint's data.test)")
    p.add_argument("--split", help="dataset split (default: FreiHAND/HO3D-v2 evaluation, "
                                   "Human3.6M test)")
    _add_data_args(p)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_eval)
    p = sub.add_parser("predict", help="camera-space hand mesh for one image")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--intrinsics", help="JSON: a 3x3 K, {'K': ...} or fx, fy, cx, cy")
    p.add_argument("--box", help="cu,cv,side in pixels (default: centred box)")
    p.add_argument("--mano", metavar="PATH", help="the MANO file the model was trained with")
    p.add_argument("--smpl", metavar="PATH", help="the SMPL file a body model was trained with")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_cmd_predict)
    p = sub.add_parser("main", help="train the reference model, evaluate, write report.md")
    _add_config_args(p, "small")
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_main)
    p = sub.add_parser("data", help="dataset tools")
    dsub = p.add_subparsers(dest="data_command", required=True)
    q = dsub.add_parser("check", help="count a FreiHAND / HO3D-v2 copy against the official "
                                      "split sizes and name missing or unreadable files")
    q.add_argument("--dataset", required=True, choices=("freihand", "ho3d"))
    q.add_argument("--data-root", required=True, metavar="ROOT")
    q.add_argument("--subset", action="store_true",
                   help="accept a copy smaller than the official splits")
    q.add_argument("--no-decode", action="store_true",
                   help="only check that image files exist (faster)")
    q.add_argument("--quiet", action="store_true")
    q.set_defaults(func=_cmd_data_check)
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
    except KeyboardInterrupt as e:
        from .train import Terminated

        what = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        print(f"{what}; checkpoint saved", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130


if __name__ == "__main__":
    sys.exit(main())
