"""``handdgp data check``: a dataset copy against the official split sizes, file by file, and
how often its hands leave the paper's ``affine`` window (:mod:`.coverage`) at the dataset's
config's canonical focal length."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._io import read_rgb
from .coverage import WindowCoverage, box_fraction_outside, keypoint_fraction_outside

__all__ = ["OFFICIAL_COUNTS", "CheckReport", "SplitCount", "check_dataset", "window_coverage"]

#: Images per split of the official releases (FreiHAND training: 32,560 annotations x 4
#: versions).
OFFICIAL_COUNTS = {"freihand": {"training": 130240, "evaluation": 3960},
                   "ho3d": {"train": 66034, "evaluation": 11524}}
_NAMES = {"freihand": "FreiHAND", "ho3d": "HO3D-v2"}
_LISTED = 20  # problems printed per kind before "and N more"


@dataclass
class SplitCount:
    """What was found for one split."""

    split: str
    images: int = 0
    official: int = 0
    missing: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class CheckReport:
    """The result of :func:`check_dataset`; ``ok`` is False on any problem."""

    dataset: str
    root: Path
    subset: bool
    splits: list[SplitCount]
    coverage: list[WindowCoverage] = field(default_factory=list)
    focal: float = 0.0
    size: int = 0

    @property
    def ok(self) -> bool:
        for s in self.splits:
            if s.error or s.missing or s.unreadable:
                return False
            if not self.subset and s.images != s.official:
                return False
        return True

    def text(self) -> str:
        """A table of counts, then the problems (each file named)."""
        lines = [f"{_NAMES[self.dataset]} at {self.root}",
                 f"{'split':<12}{'images':>10}{'official':>10}{'missing':>9}{'unreadable':>12}"]
        for s in self.splits:
            lines.append(f"{s.split:<12}{s.images:>10}{s.official:>10}{len(s.missing):>9}"
                         f"{len(s.unreadable):>12}")
        problems = []
        for s in self.splits:
            if s.error:
                problems.append(f"{s.split}: {s.error}")
            for kind, items in (("missing", s.missing), ("unreadable", s.unreadable)):
                problems += [f"{kind}: {p}" for p in items[:_LISTED]]
                if len(items) > _LISTED:
                    problems.append(f"... and {len(items) - _LISTED} more {kind} files")
            if not s.error and s.images != s.official:
                note = "accepted (--subset)" if self.subset else "a problem (pass --subset to " \
                                                                 "accept a partial copy)"
                problems.append(f"{s.split}: {s.images} images where the official split has "
                                f"{s.official}: {note}")
        lines += self._coverage_lines()
        lines += ["", "problems:" if problems else "no problems found", *problems]
        lines.append("OK" if self.ok else "NOT OK")
        return "\n".join(lines)

    def _coverage_lines(self) -> list[str]:
        if not self.coverage:
            return []
        half = math.degrees(math.atan(self.size / (2 * self.focal)))
        lines = ["", f"affine window: {self.size} px at f_c = {self.focal:g} px (the "
                     f"'{self.dataset}' config):",
                 f"points within about {half:.1f} deg of the optical axis stay in the crop",
                 f"{'split':<12}{'samples':>10}{'outside':>10}{'mean fraction outside':>24}"
                 "  of"]
        for c in self.coverage:
            if c.note:
                lines.append(f"{c.split:<12}{c.note}")
                continue
            lines.append(f"{c.split:<12}{c.samples:>10}{c.outside:>10}{c.mean_fraction:>24.3f}"
                         f"  {c.points}")
        if any(c.outside for c in self.coverage):
            lines.append(f"samples partly outside are cut by the 'affine' rectification: "
                         f"prefer '{self.dataset}-perspective' (docs/configs.md)")
        return lines


def _check_files(count: SplitCount, items: list[tuple[Path, list[Path]]], root: Path,
                 decode: bool, progress: bool) -> None:
    """``items``: (image, other required files) per sample."""
    from tqdm import tqdm

    from ..hand import safe_load_pickle

    for image, others in tqdm(items, desc=f"check {count.split}", disable=not progress,
                              leave=False, unit="img"):
        for path in (image, *others):
            rel = str(path.relative_to(root))
            if not path.is_file():
                count.missing.append(rel)
                continue
            if not decode:
                continue
            try:
                if path == image:
                    read_rgb(path)
                else:
                    safe_load_pickle(path)
            except Exception as exc:  # every failure is reported, none stops the check
                count.unreadable.append(f"{rel} ({exc})")


def _freihand_items(root: Path, split: str) -> list[tuple[Path, list[Path]]]:
    from .freihand import FREIHAND_VERSIONS, FreiHAND

    ds = FreiHAND(root, split, FREIHAND_VERSIONS, load_masks=False)
    return [(ds.image_path(i), []) for i in range(len(ds))]


def _ho3d_items(root: Path, split: str) -> list[tuple[Path, list[Path]]]:
    from .ho3d import HO3D

    ds = HO3D(root, split)
    return [(rgb, [meta]) for rgb, meta in map(ds._paths, range(len(ds)))]


_ITEMS = {"freihand": _freihand_items, "ho3d": _ho3d_items}


def _freihand_coverage(root: Path, split: str, focal: float, size: int,
                       progress: bool) -> WindowCoverage:
    from .freihand import FREIHAND_VERSIONS, FreiHAND

    ds = FreiHAND(root, split, FREIHAND_VERSIONS, load_masks=False)
    if ds.xyz is None:
        return WindowCoverage(split, note="no ground-truth keypoints in this copy")
    fractions = keypoint_fraction_outside(np.asarray(ds.xyz), focal, size)
    return WindowCoverage.of(split, fractions, repeat=len(ds.versions))


def _ho3d_coverage(root: Path, split: str, focal: float, size: int,
                   progress: bool) -> WindowCoverage:
    from tqdm import tqdm

    from .ho3d import HO3D

    ds = HO3D(root, split)
    joints, Ks, boxes = [], [], []
    for i in tqdm(range(len(ds)), desc=f"coverage {split}", disable=not progress,
                  leave=False, unit="img"):
        try:
            item = ds.annotation(i)
        except (OSError, ValueError):  # reported by the file check
            continue
        if "joints3d" in item:
            joints.append(item["joints3d"])
        else:
            Ks.append(item["K"])
            boxes.append(item["bbox"])
    if joints:
        return WindowCoverage.of(split, keypoint_fraction_outside(np.stack(joints), focal, size))
    if boxes:
        return WindowCoverage.of(split, box_fraction_outside(np.stack(Ks), np.stack(boxes),
                                                             focal, size), "box area")
    return WindowCoverage(split, note="no readable annotations")


_COVERAGE = {"freihand": _freihand_coverage, "ho3d": _ho3d_coverage}


def window_coverage(dataset: str, root: str | os.PathLike, split: str, *,
                    progress: bool = False) -> tuple[WindowCoverage, float, int]:
    """How many samples of a split leave the ``affine`` window at the canonical focal length
    and input size of the dataset's named config (``freihand``: 1000 px, ``ho3d``: 500 px;
    224 px): ground-truth keypoints, or the hand box where a split has no keypoints
    (HO3D-v2 evaluation).

    Returns:
        ``(coverage, f_c, S)``.
    """
    from ..config import load_config

    model = load_config(dataset).model
    cov = _COVERAGE[dataset](Path(root), split, model.focal, model.input_size, progress)
    return cov, model.focal, model.input_size


def check_dataset(dataset: str, root: str | os.PathLike, *, subset: bool = False,
                  decode: bool = True, progress: bool = False) -> CheckReport:
    """Count a FreiHAND or HO3D-v2 copy against the official splits.

    Args:
        dataset: ``"freihand"`` or ``"ho3d"``.
        root: the dataset directory.
        subset: accept splits smaller than the official ones (a partial copy).
        decode: also decode every image (and HO3D meta file), not only check it exists.
        progress: a progress bar per split.

    Returns:
        A :class:`CheckReport` naming every missing or unreadable file, with the split's
        :func:`window_coverage`.
    """
    if dataset not in _NAMES:
        raise ValueError(f"dataset: expected one of {list(_NAMES)}, got {dataset!r}")
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"--data-root: no directory {root}")
    report = CheckReport(dataset, root, subset, [])
    for split, official in OFFICIAL_COUNTS[dataset].items():
        count = SplitCount(split, official=official)
        report.splits.append(count)
        try:
            items = _ITEMS[dataset](root, split)
        except (OSError, ValueError) as exc:  # a missing or corrupt annotation file
            count.error = str(exc)
            continue
        count.images = len(items)
        _check_files(count, items, root, decode, progress)
        cov, report.focal, report.size = window_coverage(dataset, root, split,
                                                         progress=progress)
        report.coverage.append(cov)
    return report
