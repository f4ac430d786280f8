"""The files of a run folder and of an evaluation or prediction folder, named in one place.

Every writer and reader takes its paths from :class:`RunFolder`; nothing else spells these
names. A training run writes ``config.json``, ``log.jsonl`` and ``checkpoint.pt``; an
evaluation (into the run folder for the main job, or into ``eval --out``) writes
``pred.json`` and, with ground truth, ``metrics.json``, ``metrics.md``, ``pck.png`` and
``overlays/`` and ``contact_sheet.png``; the main job adds ``report.md``; ``predict`` writes
``predictions/NAME.json``, ``meshes/NAME_handK.obj|ply``, ``overlays/NAME.png`` (or, for a
video, ``overlay.mp4``) and ``summary.json``.
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
    overlays = _Entry("overlays", "Folder of overlays of test samples or predict's images.")
    report = _Entry("report.md", "The main job's markdown report.")
    contact_sheet = _Entry("contact_sheet.png", "The worst and median test samples' panels.")
    # prediction
    predictions = _Entry("predictions", "Folder of ``predict``'s JSON files, one per image.")
    meshes = _Entry("meshes", "Folder of ``predict``'s meshes, one file per hand and format.")
    video = _Entry("overlay.mp4", "``predict``'s overlay video (for a video input).")
    summary = _Entry("summary.json", "``predict``'s counts, timings and settings.")

    def overlay(self, index: int) -> Path:
        """The overlay panel of test sample ``index``."""
        return self.overlays / f"test_{index:03d}.png"

    def prediction(self, name: str) -> Path:
        """``predict``'s camera-space hands of the image ``name`` (JSON)."""
        return self.predictions / f"{name}.json"

    def prediction_overlay(self, name: str) -> Path:
        """``predict``'s overlay of the image ``name``."""
        return self.overlays / f"{name}.png"

    def mesh(self, name: str, hand: int, fmt: str) -> Path:
        """Hand number ``hand`` of the image ``name`` as a mesh file (``fmt``: obj, ply)."""
        return self.meshes / f"{name}_hand{hand}.{fmt}"

    def relative(self, path: Path) -> str:
        """``path`` relative to the folder, as written in a report's links."""
        return Path(path).relative_to(self.root).as_posix()
