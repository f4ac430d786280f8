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
    @property
    def config(self) -> Path:
        """The resolved run configuration (JSON)."""
        return self.root / "config.json"

    @property
    def log(self) -> Path:
        """One JSON line per epoch: losses, learning rate, counters."""
        return self.root / "log.jsonl"

    @property
    def checkpoint(self) -> Path:
        """Weights, optimiser and RNG states, step, and the configuration."""
        return self.root / "checkpoint.pt"

    # evaluation
    @property
    def pred(self) -> Path:
        """Predictions in the benchmark's submission format."""
        return self.root / "pred.json"

    @property
    def metrics(self) -> Path:
        """Metrics of the model (and the baseline) as JSON."""
        return self.root / "metrics.json"

    @property
    def metrics_table(self) -> Path:
        """The metrics as a markdown table."""
        return self.root / "metrics.md"

    @property
    def pck(self) -> Path:
        """3D PCK curves (PNG)."""
        return self.root / "pck.png"

    @property
    def overlays(self) -> Path:
        """Folder of overlay images of test samples."""
        return self.root / "overlays"

    def overlay(self, index: int) -> Path:
        """The overlay image of test sample ``index``."""
        return self.overlays / f"test_{index:03d}.png"

    @property
    def report(self) -> Path:
        """The main job's markdown report."""
        return self.root / "report.md"

    # prediction
    @property
    def prediction(self) -> Path:
        """``predict``'s camera-space prediction (JSON)."""
        return self.root / "prediction.json"

    @property
    def prediction_overlay(self) -> Path:
        """``predict``'s overlay image."""
        return self.root / "overlay.png"

    def relative(self, path: Path) -> str:
        """``path`` relative to the folder, as written in a report's links."""
        return Path(path).relative_to(self.root).as_posix()
