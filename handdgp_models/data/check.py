"""``handdgp data check``: a dataset copy against the official split sizes, file by file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ._io import read_rgb

__all__ = ["OFFICIAL_COUNTS", "CheckReport", "SplitCount", "check_dataset"]

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
        lines += ["", "problems:" if problems else "no problems found", *problems]
        lines.append("OK" if self.ok else "NOT OK")
        return "\n".join(lines)


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
        A :class:`CheckReport` naming every missing or unreadable file.
    """
    if dataset not in _NAMES:
        raise ValueError(f"dataset: expected one of {list(_NAMES)}, got {dataset!r}")
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"--data-root: no directory {root}")
    splits = []
    for split, official in OFFICIAL_COUNTS[dataset].items():
        count = SplitCount(split, official=official)
        splits.append(count)
        try:
            items = _ITEMS[dataset](root, split)
        except (OSError, ValueError) as exc:  # a missing or corrupt annotation file
            count.error = str(exc)
            continue
        count.images = len(items)
        _check_files(count, items, root, decode, progress)
    return CheckReport(dataset, root, subset, splits)
