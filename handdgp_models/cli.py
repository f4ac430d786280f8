"""Command line: ``handdgp train|eval|predict|export|main|convert-official|data`` (also
``python -m handdgp_models``)."""

from __future__ import annotations

import argparse
import sys

from .errors import DEBUG_FLAG, UserArgumentParser, run_cli

__all__ = ["build_parser", "main"]


def _add_config_args(p: argparse.ArgumentParser, default: str | None = None) -> None:
    from .config import DEFAULT_CONFIG, NAMED_CONFIGS

    p.add_argument("--config", default=default,
                   help=f"named config ({', '.join(NAMED_CONFIGS)}) or a JSON/TOML file "
                        f"(default: {DEFAULT_CONFIG})")
    _add_set_arg(p)


def _add_set_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override, e.g. --set train.steps=100 (repeatable; JSON values)")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", metavar="ROOT",
                   help="dataset directory of the FreiHAND / HO3D-v2 / Human3.6M sources")
    p.add_argument("--mano", metavar="PATH",
                   help="MANO_RIGHT.pkl (or .npz) for real datasets (default: embedded hand)")
    p.add_argument("--smpl", metavar="PATH",
                   help="SMPL_NEUTRAL.pkl (or .npz) for Human3.6M (body configs)")
    p.add_argument("--h36m-regressor", metavar="PATH",
                   help="J_regressor_h36m_correct.npy: also score the 17 Human3.6M joints")


def _options(args: argparse.Namespace):
    """The config keys the command's options set (through the strict config path)."""
    from .config import RunOptions

    return RunOptions(**{k: getattr(args, k, None) for k in (
        "data_root", "mano", "smpl", "h36m_regressor", "backbone_weights")},
        test_dataset=getattr(args, "dataset", None), test_split=getattr(args, "split", None))


def _fine_tune_run(args: argparse.Namespace, progress: bool):
    """``train --init``: the run of a checkpoint (its config with ``--set`` and the options),
    trained into ``--out`` from its weights."""
    from pathlib import Path

    from .run import TRAIN, Run

    if not Path(args.init).is_file():
        raise ValueError(f"--init: no file {args.init}")
    return Run.from_checkpoint(args.init, args.set, _options(args), roles=TRAIN,
                               progress=progress, folder=args.out)


def _cmd_train(args: argparse.Namespace) -> int:
    from .config import DEFAULT_CONFIG, resolve_config

    cfg = None
    if args.init is None:  # a bad setting fails before torch is imported
        cfg = resolve_config(args.config or DEFAULT_CONFIG, args.set, _options(args))
    elif args.config is not None:
        raise ValueError("--config: not with --init (the run config is the checkpoint's; "
                         "change it with --set)")
    from .engine import distributed
    from .files import strict_json
    from .run import TRAIN, Run
    from .train import train

    with distributed() as rank:
        progress = not args.quiet and rank == 0
        run = Run(cfg, args.out, roles=TRAIN, progress=progress) if cfg is not None \
            else _fine_tune_run(args, progress)
        summary = train(run, resume=not args.no_resume, progress=not args.quiet)
    if rank == 0:
        print(strict_json(summary, nan_as_null=True))
    return 0


def _print_eval(evaluation) -> None:
    from .report import metric_columns, metrics_table

    result, folder = evaluation.result, evaluation.folder
    lines = [f"wrote {folder.pred} ({result['samples']} images, "
             f"{result['images_per_s']:.1f} images/s, {result['invalid']} degenerate DGP "
             "systems)"]
    if "model" in result:
        lines += [metrics_table(metric_columns(result)), f"metrics in {folder.metrics}"]
    else:
        lines.append("no ground truth in this split: submit pred.json to the benchmark's server")
    print("\n".join(lines))


def _cmd_eval(args: argparse.Namespace) -> int:
    from .engine import evaluate_checkpoint

    evaluation = evaluate_checkpoint(args.checkpoint, args.out, args.set, _options(args),
                                     device=args.device, progress=not args.quiet)
    _print_eval(evaluation)
    return 0


def _cmd_main(args: argparse.Namespace) -> int:
    from .config import DEFAULT_CONFIG, resolve_config

    config = args.config or DEFAULT_CONFIG
    resolve_config(config, args.set)  # a bad setting fails before anything is built
    from .engine import run_main

    run_main(args.out, config, args.set, progress=not args.quiet)
    return 0


def _cmd_data_check(args: argparse.Namespace) -> int:
    from .data.check import check_dataset

    report = check_dataset(args.dataset, args.data_root, subset=args.subset,
                           decode=not args.no_decode, progress=not args.quiet)
    print(report.text())
    return 0 if report.ok else 1


def _hands_option(args: argparse.Namespace, keys: list[str]):
    """The hands of each input: ``--boxes``, ``--detector``, else ``--box`` or the centred
    default box (a left hand with ``--left``)."""
    from .detections import boxes_file, detector, fixed_hands

    given = [n for n, v in (("--boxes", args.boxes), ("--detector", args.detector),
                            ("--box", args.box)) if v is not None]
    if len(given) > 1:
        raise ValueError(f"{' and '.join(given)}: give the hands one way only")
    if args.left and (args.boxes or args.detector):
        raise ValueError("--left: applies to --box or the default box; a boxes file or a "
                         "detector gives each hand's handedness")
    if args.boxes is not None:
        return boxes_file(args.boxes, keys)
    if args.detector is not None:
        return detector(args.detector)
    from .inputs import parse_box

    return fixed_hands(lambda h, w: parse_box(args.box, h, w, "--box"), right=not args.left)


def _check_first_input(inputs, camera, hands) -> None:
    """Read the first image and check its camera (and its hands, unless a detector gives
    them) now, so a bad input is named before the model loads."""
    from .camera import require_supported_lens

    first = next(iter(inputs), None)
    if first is None:
        return
    require_supported_lens(camera(*first.image.shape[:2]))
    if hands is not None:
        hands(first.key, first.image)


def _smooth_option(args: argparse.Namespace) -> tuple[float, float] | None:
    if not args.smooth:
        return None
    from .smoothing import OneEuroFilter

    OneEuroFilter(args.smooth_cutoff, args.smooth_beta)  # names a bad value now
    return args.smooth_cutoff, args.smooth_beta


def _cmd_predict(args: argparse.Namespace) -> int:
    from .inputs import camera_option
    from .media import open_inputs

    inputs = open_inputs(args.input, "--input")
    if args.smooth and not inputs.is_video:
        raise ValueError("--smooth: smooths a video's hands over time; the inputs are images")
    camera = camera_option(args.intrinsics, args.calibration, args.fov)
    hands = _hands_option(args, inputs.keys())
    _check_first_input(inputs, camera, None if args.detector else hands)
    from .prediction_files import PredictSettings, predict_to_folder

    meshes = {"both": ("obj", "ply"), "none": ()}.get(args.mesh_format, (args.mesh_format,))
    settings = PredictSettings(args.batch_size, meshes, not args.no_overlays,
                               _smooth_option(args), progress=not args.quiet)
    if args.package is not None:
        from .export import PackagedPredictor

        predictor = PackagedPredictor(args.package)
    else:
        from .build import resolve_device
        from .engine import Predictor

        predictor = Predictor.from_checkpoint(args.checkpoint, _options(args),
                                              resolve_device(args.device))
    s = predict_to_folder(predictor, inputs, args.out, camera, hands, settings)
    print(f"{s['images']} images, {s['hands']} hands ({s['left']} left, {s['invalid']} "
          f"degenerate DGP systems) in {s['seconds']:.1f} s: {s['images_per_s']:.1f} images/s "
          f"end to end, {s['network_images_per_s']:.1f} images/s in the input pipeline and "
          f"network; wrote {args.out}")
    return 0


def _add_predict_parser(sub) -> None:
    from .predict_defaults import BATCH_SIZE, SMOOTH_BETA, SMOOTH_MIN_CUTOFF

    p = sub.add_parser("predict", help="camera-space hand meshes for images, folders or a video")
    # one of --checkpoint / --package is required: checked with --input and --out in
    # _check_predict_args, so that a bare `predict` names all three
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", help="a training checkpoint (or --package)")
    src.add_argument("--package", help="an AOTInductor package written by export (.pt2)")
    p.add_argument("--input", "--image", dest="input", nargs="+", metavar="PATH",
                   help="images, folders of images, or one video file (required)")
    cam = p.add_mutually_exclusive_group()
    cam.add_argument("--intrinsics", help="JSON: a 3x3 K, {'K': ...} or fx, fy, cx, cy")
    cam.add_argument("--calibration", help="an OpenCV calibration file (YAML/JSON/XML: "
                                           "camera_matrix, distortion_coefficients, size)")
    cam.add_argument("--fov", type=float, metavar="DEG",
                     help="horizontal field of view in degrees")
    p.add_argument("--boxes", metavar="JSON", help="hands per image: {name: [{box: [x0, y0, "
                   "x1, y1], right: bool, score}]}, keyed by file name or frame number")
    p.add_argument("--detector", metavar="MODULE:FUNCTION",
                   help="a Python callable image -> [{box, right, score}] (or file.py:func)")
    p.add_argument("--box", help="cu,cv,side in pixels for every image (default: centred box)")
    p.add_argument("--left", action="store_true", help="the --box / default hand is a left one")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE,
                   help=f"hands per network call (default {BATCH_SIZE})")
    p.add_argument("--mesh-format", default="obj", choices=("obj", "ply", "both", "none"),
                   help="mesh files written per hand (default obj)")
    p.add_argument("--no-overlays", action="store_true", help="write no overlay images/video")
    p.add_argument("--smooth", action="store_true",
                   help="One-Euro smoothing of a video's hands over time (default off)")
    p.add_argument("--smooth-cutoff", type=float, default=SMOOTH_MIN_CUTOFF, metavar="HZ",
                   help=f"One-Euro cut-off at rest (default {SMOOTH_MIN_CUTOFF})")
    p.add_argument("--smooth-beta", type=float, default=SMOOTH_BETA, metavar="PER_M",
                   help=f"One-Euro speed coefficient (default {SMOOTH_BETA})")
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"),
                   help="device of a checkpoint's network (a package runs where it was "
                        "compiled for)")
    p.add_argument("--mano", metavar="PATH", help="the MANO file the model was trained with")
    p.add_argument("--smpl", metavar="PATH", help="the SMPL file a body model was trained with")
    p.add_argument("--out", help="output folder (required)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_predict, check=lambda args, p=p: _check_predict_args(p, args))


def _cmd_export(args: argparse.Namespace) -> int:
    from .engine import export_checkpoint

    path = export_checkpoint(args.checkpoint, args.out, _options(args), args.device)
    from .export import metadata_path

    print(f"wrote {path} and {metadata_path(path)}")
    return 0


def _cmd_convert_official(args: argparse.Namespace) -> int:
    from .official import convert_official

    out = convert_official(args.checkpoint, args.mobrecon_template, args.out,
                           ignore_unexpected=args.ignore_unexpected)
    print(f"wrote {out}: evaluate it with `handdgp eval --checkpoint {out} ...`")
    return 0


def _add_convert_parser(sub) -> None:
    p = sub.add_parser("convert-official",
                       help="the authors' released HandDGP weights as a checkpoint of this "
                            "project (docs/official_weights.md)")
    p.add_argument("--checkpoint", required=True, help="the official checkpoint (.ckpt)")
    p.add_argument("--mobrecon-template", required=True, metavar="DIR",
                   help="the template folder of MobRecon's repository (transform.pkl, "
                        "j_reg.npy)")
    p.add_argument("--out", required=True, help="the checkpoint to write")
    p.add_argument("--ignore-unexpected", action="store_true",
                   help="skip weights the network has no place for instead of refusing")
    p.set_defaults(func=_cmd_convert_official)


def build_parser() -> argparse.ArgumentParser:
    parser = UserArgumentParser(prog="handdgp", description=__doc__)
    parser.add_argument(DEBUG_FLAG, action="store_true",
                        help="print the traceback of an error (accepted anywhere on the line)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a model (resumes from OUT/checkpoint.pt)")
    _add_config_args(p)
    p.add_argument("--init", metavar="CHECKPOINT",
                   help="fine-tune: start from this checkpoint's weights and config (with "
                        "--set overrides), a new optimiser and step count")
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
    _add_set_arg(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_eval)
    _add_predict_parser(sub)
    p = sub.add_parser("export", help="compile a checkpoint's network into an AOTInductor "
                                      "package (.pt2) for predict --package")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="the package, e.g. model.pt2 (metadata beside "
                                                "it as model.json)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--mano", metavar="PATH", help="the MANO file the model was trained with")
    p.add_argument("--smpl", metavar="PATH", help="the SMPL file a body model was trained with")
    p.set_defaults(func=_cmd_export)
    p = sub.add_parser("main", help="train the reference model, evaluate, write report.md")
    _add_config_args(p)
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_main)
    _add_convert_parser(sub)
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


def _check_predict_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    missing = [name for name, given in (("--checkpoint (or --package)", args.checkpoint or
                                         args.package), ("--input", args.input),
                                        ("--out", args.out)) if not given]
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)}")


def _run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "check", None) is not None:
        args.check(args)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as e:
        from .train import Terminated

        what = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        print(f"{what}; checkpoint saved", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130


if __name__ == "__main__":
    sys.exit(main())
