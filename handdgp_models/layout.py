"""The files of a run folder and of an evaluation or prediction folder, named in one place.

Every writer and reader takes its paths from :class:`RunFolder`; nothing else spells these
names. A training run writes ``config.json``, ``log.jsonl`` and ``checkpoint.pt``; an
evaluation (into the run folder for the main job, or into ``eval --out``) writes
``pred.json`` and, with ground truth, ``metrics.json``, ``metrics.md``, ``pck.png`` and
``overlays/``; the main job adds ``report.md``; ``predict`` writes ``prediction.json`` and
``overlay.png``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunFolder"]


class _Entry:
    """A file or folder of a :class:`RunFolder`: ``folder.<entry>`` is its path."""

    def __init__(self, name: str, doc: str) -> None:
        self.name, self.__doc__ = name, doc

    def __get__(self, folder: RunFolder | None, owner: type) -> Path | _Entry:
        return self if folder is None else folder.root / self.name


@dataclass(frozen=True)
class RunFolder:
    """The layout of one output folder.

    Attributes:
        root: the folder.
    """

    root: Path

    def __init__(self, root: str | os.PathLike) -> None:
        object.__setattr__(self, "root", Path(root))

    # training
    config = _Entry("config.json", "The resolved run configuration (JSON).")
    log = _Entry("log.jsonl", "One JSON line per epoch: losses, learning rate, counters.")
    checkpoint = _Entry("checkpoint.pt", "Weights, optimiser and RNG states, step, config.")
    # evaluation
    pred = _Entry("pred.json", "Predictions in the benchmark's submission format.")
    metrics = _Entry("metrics.json", "Metrics of the model (and the baseline) as JSON.")
    metrics_table = _Entry("metrics.md", "The metrics as a markdown table.")
    pck = _Entry("pck.png", "3D PCK curves.")
    overlays = _Entry("overlays", "Folder of overlay images of test samples.")
    report = _Entry("report.md", "The main job's markdown report.")
    # prediction
    prediction = _Entry("prediction.json", "``predict``'s camera-space prediction (JSON).")
    prediction_overlay = _Entry("overlay.png", "``predict``'s overlay image.")

    def overlay(self, index: int) -> Path:
        """The overlay image of test sample ``index``."""
        return self.overlays / f"test_{index:03d}.png"

    def relative(self, path: Path) -> str:
        """``path`` relative to the folder, as written in a report's links."""
        return Path(path).relative_to(self.root).as_posix()
