"""FreiHAND loader (official release layout) returning samples in the project conventions.

Layout under ``root``::

    training_K.json  training_xyz.json  training_verts.json  training_mano.json
    training/rgb/%08d.jpg     (4 versions × N: image id = version · N + i)
    training/mask/%08d.jpg    (optional, indexed by i; the hand is the same in every version)
    evaluation_K.json  [evaluation_xyz.json  evaluation_verts.json  evaluation_mano.json]
    evaluation/rgb/%08d.jpg

FreiHAND annotations are already OpenCV camera space in metres with joints in the
FreiHAND/OpenPose order, so no conversion is needed. ``N`` is the number of annotations
(32,560 for the official training split, 3,960 for evaluation).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from ..hand import NUM_KEYPOINTS, NUM_VERTS
from ._io import (
    box_from_points,
    check_intrinsics,
    check_joints,
    json_array,
    project,
    read_mask,
    read_rgb,
    require_file,
)

__all__ = ["FREIHAND_VERSIONS", "FreiHAND"]

FREIHAND_VERSIONS = ("gs", "hom", "sample", "auto")
_SPLITS = ("training", "evaluation")
_BOXES = ("auto", "keypoints", "fixed")


def _version_ids(version: str | int | Sequence[str | int]) -> tuple[int, ...]:
    items = [version] if isinstance(version, str | int) else list(version)
    if not items:
        raise ValueError("version: empty sequence")
    out = []
    for v in items:
        if isinstance(v, str) and v in FREIHAND_VERSIONS:
            out.append(FREIHAND_VERSIONS.index(v))
        elif isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(FREIHAND_VERSIONS):
            out.append(v)
        else:
            raise ValueError(f"version: expected one of {FREIHAND_VERSIONS} or 0-3, got {v!r}")
    return tuple(out)


class FreiHAND(Dataset):
    """FreiHAND training or evaluation split.

    Args:
        root: dataset directory (the one holding ``training_K.json``).
        split: ``"training"`` or ``"evaluation"``.
        version: training image version(s): ``"gs"`` (green screen), ``"hom"``, ``"sample"``,
            ``"auto"``, an int 0-3, or a sequence of them (concatenated in that order).
            Ignored for the evaluation split, which has one version.
        box: ``"keypoints"`` (square box around the projected ground-truth joints),
            ``"fixed"`` (the release's centred box of side ``fixed_side`` pixels) or
            ``"auto"`` (keypoints when ground truth is present, else fixed).
        fixed_side: side of the fixed box in pixels (the release uses 100).
        load_masks: return ``mask`` when ``training/mask/%08d.jpg`` exists.

    Each item is a dict: ``image`` uint8 (H, W, 3) RGB; ``K`` float32 (3, 3); when ground
    truth is present ``joints3d`` (21, 3) and ``verts3d`` (778, 3) float32 metres (OpenCV
    camera), ``joints2d`` (21, 2) pixels, ``pose`` (48,), ``shape`` (10,); ``mask`` uint8
    (H, W) 0/1 when available; ``box`` float32 (3,) = (centre_u, centre_v, side) pixels;
    ``index`` int; ``name`` ``"freihand"``.

    Raises:
        FileNotFoundError / ValueError: naming the missing or corrupt file.
    """

    name = "freihand"

    def __init__(self, root: str | os.PathLike, split: str = "training",
                 version: str | int | Sequence[str | int] = "gs", *, box: str = "auto",
                 fixed_side: float = 100.0, load_masks: bool = True) -> None:
        if split not in _SPLITS:
            raise ValueError(f"split: expected one of {_SPLITS}, got {split!r}")
        if box not in _BOXES:
            raise ValueError(f"box: expected one of {_BOXES}, got {box!r}")
        if not fixed_side > 0:
            raise ValueError(f"fixed_side: must be positive, got {fixed_side!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"FreiHAND root directory not found: {self.root}")
        self.split = split
        self.versions = _version_ids(version) if split == "training" else (0,)
        self.fixed_side = float(fixed_side)
        self.load_masks = load_masks

        self.K = json_array(self.root / f"{split}_K.json", (3, 3))
        n = len(self.K)
        self.num_annotations = n
        xyz_path = self.root / f"{split}_xyz.json"
        self.has_gt = split == "training" or xyz_path.is_file()
        self.xyz = self.verts = self.mano = None
        if self.has_gt:
            self.xyz = self._load(xyz_path, (NUM_KEYPOINTS, 3), n)
            self.verts = self._load(self.root / f"{split}_verts.json", (NUM_VERTS, 3), n)
            mano_path = self.root / f"{split}_mano.json"
            if mano_path.is_file():
                # each entry is [[48 pose, 10 shape, 2 uv_root, 1 scale]]
                self.mano = self._load(mano_path, (1, 61), n)[:, 0]
        self.box_mode = ("keypoints" if self.has_gt else "fixed") if box == "auto" else box
        if self.box_mode == "keypoints" and not self.has_gt:
            raise ValueError(f"box='keypoints' needs {xyz_path}, which is missing")

    @staticmethod
    def _load(path: Path, shape: tuple[int, ...], n: int) -> np.ndarray:
        arr = json_array(require_file(path), shape)
        if len(arr) != n:
            raise ValueError(f"{path}: {len(arr)} entries but the K file has {n}")
        return arr

    def __len__(self) -> int:
        return self.num_annotations * len(self.versions)

    def image_path(self, index: int) -> Path:
        """Path of the RGB image of item ``index``."""
        v, i = divmod(index, self.num_annotations)
        image_id = self.versions[v] * self.num_annotations + i
        return self.root / self.split / "rgb" / f"{image_id:08d}.jpg"

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index = index % len(self)
        i = index % self.num_annotations
        image = read_rgb(self.image_path(index))
        K = check_intrinsics(self.K[i], self.root / f"{self.split}_K.json", i)
        sample: dict = {"image": image, "K": K, "index": int(index), "name": self.name}
        if self.has_gt:
            joints3d = check_joints(self.xyz[i], self.root / f"{self.split}_xyz.json", i)
            sample["joints3d"] = joints3d
            sample["verts3d"] = check_joints(self.verts[i], self.root / f"{self.split}_verts.json",
                                             i, "verts")
            sample["joints2d"] = project(joints3d, K)
            if self.mano is not None:
                sample["pose"] = self.mano[i, :48].copy()
                sample["shape"] = self.mano[i, 48:58].copy()
        mask_path = self.root / self.split / "mask" / f"{i:08d}.jpg"
        if self.load_masks and mask_path.is_file():
            sample["mask"] = read_mask(mask_path)
        if self.box_mode == "keypoints":
            sample["box"] = box_from_points(sample["joints2d"])
        else:
            h, w = image.shape[:2]
            sample["box"] = np.array([(w - 1) / 2.0, (h - 1) / 2.0, self.fixed_side],
                                     dtype=np.float32)
        return sample

