"""The library's high-level API: train and evaluate a run, the main job, evaluation of a
checkpoint, prediction on images, and distributed set-up.

The command line (:mod:`handdgp_models.cli`) is a thin face over these functions; the
benchmarks and users import them from here::

    from handdgp_models.config import load_config
    from handdgp_models.engine import train_and_evaluate

    summary, evaluation = train_and_evaluate(load_config("tiny"), "runs/tiny")
    print(evaluation.result["model"]["cs_mje"])
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from .build import resolve_device
from .config import DEFAULT_CONFIG, RunConfig, RunOptions, resolve_config
from .evaluate import Evaluation, evaluate
from .predict import HandPredictor
from .run import TEST, TRAIN, Run
from .train import train

__all__ = ["Predictor", "distributed", "evaluate_checkpoint", "export_checkpoint", "run_main",
           "train_and_evaluate"]


@contextlib.contextmanager
def distributed() -> Iterator[int]:
    """Join the process group when started by ``torchrun`` (``WORLD_SIZE`` > 1); yields this
    process's rank (0 otherwise) and leaves the group at the end."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        yield 0
        return
    import torch.distributed as dist

    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        yield dist.get_rank()
    finally:
        dist.destroy_process_group()


def train_and_evaluate(run: Run | RunConfig, out: str | os.PathLike | None = None, *,
                       progress: bool = True,
                       device: torch.device | str | None = None) -> tuple[dict, Evaluation]:
    """Train a run into its folder (resuming from its checkpoint), then evaluate the
    checkpoint on the run's test set, with the mean-training-translation baseline, into the
    same folder. The template and the training set are built once and used by both.

    Args:
        run: a :class:`~handdgp_models.run.Run`, or a run config trained into ``out``.
        device: evaluation device; None: ``train.device`` resolved.

    Returns:
        The trainer's summary and the :class:`~handdgp_models.evaluate.Evaluation`.
    """
    if isinstance(run, RunConfig):
        if out is None:
            raise ValueError("out: a run config needs a run folder to train into")
        run = Run(run, out, roles=TRAIN + TEST, progress=progress)
    summary = train(run, progress=progress)
    device = run.device if device is None else device
    model = run.trained_network(device)
    evaluation = evaluate(model, run, run.folder.root, baseline=True, progress=progress,
                          device=device)
    return summary, evaluation


def run_main(out: str | os.PathLike, config: str = DEFAULT_CONFIG,
             overrides: Sequence[str] | None = None, progress: bool = True) -> Evaluation:
    """The main job: train ``config``, evaluate on the test cameras on the CPU and write
    ``report.md`` into ``out`` (printed too)."""
    from .report import write_report

    run = Run(resolve_config(config, overrides or ()), out, progress=progress)
    summary, evaluation = train_and_evaluate(run, progress=progress, device="cpu")
    report = write_report(run.folder, evaluation, run.config, summary)
    print(report.read_text())
    return evaluation


def evaluate_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike,
                        overrides: Sequence[str] = (), options: RunOptions | None = None, *,
                        device: str = "auto", progress: bool = True) -> Evaluation:
    """Evaluate a training checkpoint on its config's test set, or on the one ``options``
    name (``--dataset``, ``--split``, ``--data-root``), into ``out``. With synthetic data only,
    the mean-translation baseline is scored too.

    Raises:
        ValueError: a missing checkpoint or bad option, naming it.
    """
    if not Path(checkpoint).is_file():
        raise ValueError(f"--checkpoint: no file {checkpoint}")
    run = Run.from_checkpoint(checkpoint, overrides, options, roles=TEST, progress=progress)
    dev = resolve_device(device)
    model = run.trained_network(dev)
    return evaluate(model, run, out, baseline=run.all_synthetic, progress=progress, device=dev)


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike,
                      options: RunOptions | None = None, device: str = "cpu") -> Path:
    """Write an AOTInductor package of a training checkpoint's network (``out``, a ``.pt2``)
    with its metadata beside it (:mod:`handdgp_models.export`).

    Raises:
        ValueError: a missing checkpoint or a bad option, naming it.
    """
    from .export import check_package_path, write_package

    check_package_path(out)
    if not Path(checkpoint).is_file():
        raise ValueError(f"--checkpoint: no file {checkpoint}")
    dev = resolve_device(device)
    run = Run.from_checkpoint(checkpoint, options=options, roles=())
    return write_package(run.trained_network(dev), run.config.input, run.template, out, dev)


class Predictor(HandPredictor):
    """Camera-space predictions of a trained network for images with their intrinsics
    (:class:`~handdgp_models.predict.HandPredictor`: one hand with ``predictor(image, K,
    box)``, several with ``predict``, streams with
    :class:`~handdgp_models.predict.PredictionLoop`).

    Args:
        run: a run whose :meth:`~handdgp_models.run.Run.trained_network` gives the weights
            (e.g. ``Run.from_checkpoint(path)``).
        device: where the network runs.

    Attributes:
        faces: (F, 3) mesh triangles; bones: the skeleton's keypoint pairs.
    """

    def __init__(self, run: Run, device: torch.device | str = "cpu") -> None:
        self.run, self.device = run, torch.device(device)
        self.model = run.trained_network(self.device)
        self.pipeline = run.pipeline(train=False)
        self.faces = run.template.faces.numpy()
        self.bones = run.template.bones

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, options: RunOptions | None = None,
                        device: torch.device | str = "cpu") -> Predictor:
        """A predictor for a training checkpoint (``options``: e.g. ``--mano``/``--smpl``)."""
        return cls(Run.from_checkpoint(path, options=options, roles=()), device)

    @torch.no_grad()
    def network(self, image: torch.Tensor, K: torch.Tensor,
                R: torch.Tensor) -> dict[str, np.ndarray]:
        image, K, R = (x.to(self.device) for x in (image, K, R))
        out = self.model(image, K, R)
        return {"joints": out["joints_orig"].cpu().numpy(),
                "verts": out["verts_orig"].cpu().numpy(),
                "translation": (out["t"][:, None] @ R)[:, 0].cpu().numpy(),
                "weights": out["weights"].cpu().numpy(), "valid": out["valid"].cpu().numpy()}
