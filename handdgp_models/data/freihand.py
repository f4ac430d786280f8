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

The JSON annotation files are converted once into float32 ``.npy`` files of an
:class:`~.array_cache.ArrayCache` and memory-mapped afterwards (see ``cache_dir``).

Test-time protocol: the evaluation split uses the release's fixed centred box of side
``fixed_side`` (100 px), never the ground truth, unless ``box="keypoints"`` is asked for.
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
    project,
    read_mask,
    read_rgb,
    require_file,
)
from .array_cache import ArrayCache, default_cache_dir

__all__ = ["FREIHAND_VERSIONS", "FreiHAND"]

FREIHAND_VERSIONS = ("gs", "hom", "sample", "auto")
_SPLITS = ("training", "evaluation")
_BOXES = ("auto", "keypoints", "fixed")
#: Side in pixels of the release's fixed evaluation box.
FIXED_BOX_SIDE = 100.0
# annotation file suffix -> shape of one entry; mano entries are [[48 pose, 10 shape,
# 2 uv_root, 1 scale]]
_ANNOTATIONS = {"K": (3, 3), "xyz": (NUM_KEYPOINTS, 3), "verts": (NUM_VERTS, 3), "mano": (1, 61)}


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


def _copy32(array: np.ndarray) -> np.ndarray:
    """A plain (not memory-mapped) float32 copy."""
    return np.array(array, dtype=np.float32)


class FreiHAND(Dataset):
    """FreiHAND training or evaluation split.

    Args:
        root: dataset directory (the one holding ``training_K.json``).
        split: ``"training"`` or ``"evaluation"``.
        version: training image version(s): ``"gs"`` (green screen), ``"hom"``, ``"sample"``,
            ``"auto"``, an int 0-3, or a sequence of them (concatenated in that order).
            Ignored for the evaluation split, which has one version.
        box: ``"auto"`` (the default: keypoint boxes on the training split, the fixed box
            on the evaluation split — the benchmark protocol), ``"fixed"`` (the release's
            centred box of side ``fixed_side`` on either split) or ``"keypoints"`` (square
            box around the projected ground-truth joints; on the evaluation split an
            explicit opt-in that needs the ground truth and is *not* the test protocol).
        fixed_side: side of the fixed box in pixels (the release uses 100).
        load_masks: return ``mask`` when ``training/mask/%08d.jpg`` exists.
        cache_dir: directory of the converted annotation arrays. None: the project's cache
            policy (:func:`~handdgp_models.data.array_cache.default_cache_dir`: under
            ``cache_root`` or ``$HANDDGP_CACHE`` when set, else ``root/.handdgp_cache`` when
            ``root`` is writable, else ``~/.cache/handdgp``). The first load converts each
            JSON file (bounded memory); later loads memory-map the arrays, shared by
            DataLoader workers. A stale or damaged entry is reported with a warning and
            rebuilt. Use one directory per dataset root.
        cache_root: a run config's ``cache_dir`` (the root of every cache), or None.

    Each item is a dict: ``image`` uint8 (H, W, 3) RGB; ``K`` float32 (3, 3); when ground
    truth is present ``joints3d`` (21, 3) and ``verts3d`` (778, 3) float32 metres (OpenCV
    camera), ``joints2d`` (21, 2) pixels, ``pose`` (48,), ``shape`` (10,); ``mask`` uint8
    (H, W) 0/1 when available; ``box`` float32 (3,) = (centre_u, centre_v, side) pixels;
    ``index`` int; ``name`` ``"freihand"``. Arrays are fresh copies (never memory maps).

    Raises:
        FileNotFoundError / ValueError: naming the missing or corrupt file.
        OSError: naming the cache directory when it cannot be written.
    """

    name = "freihand"

    def __init__(self, root: str | os.PathLike, split: str = "training",
                 version: str | int | Sequence[str | int] = "gs", *, box: str = "auto",
                 fixed_side: float = FIXED_BOX_SIDE, load_masks: bool = True,
                 cache_dir: str | os.PathLike | None = None,
                 cache_root: str | os.PathLike | None = None) -> None:
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
        xyz_path = self.root / f"{split}_xyz.json"
        self.has_gt = split == "training" or xyz_path.is_file()
        if box == "auto":
            box = "keypoints" if split == "training" else "fixed"
        if box == "keypoints" and not self.has_gt:
            raise ValueError(f"box='keypoints' needs {xyz_path}, which is missing")
        self.box_mode = box

        require_file(self.root / f"{split}_K.json")
        self.cache = ArrayCache(default_cache_dir(self.root, self.name, cache_root)
                                if cache_dir is None else cache_dir)
        # which annotation files to map; reopened by name after unpickling (spawned workers)
        self._annotation_names = ["K"]
        if self.has_gt:
            self._annotation_names += ["xyz", "verts"]
            if (self.root / f"{split}_mano.json").is_file():
                self._annotation_names.append("mano")
        self._map_annotations(check=True)

    def _map_annotations(self, check: bool) -> None:
        """Set ``K``, ``xyz``, ``verts``, ``mano`` (memory maps, None when absent)."""
        arrays = {}
        for key in self._annotation_names:
            path = self.root / f"{self.split}_{key}.json"
            if check:
                arrays[key] = self.cache.load(path, _ANNOTATIONS[key])
            else:
                arrays[key] = np.load(self.cache.paths(path)[0], mmap_mode="r")
        self.K = arrays["K"]
        n = len(self.K)
        self.num_annotations = n
        for key in ("xyz", "verts", "mano"):
            if check and key in arrays and len(arrays[key]) != n:
                raise ValueError(f"{self.root / f'{self.split}_{key}.json'}: "
                                 f"{len(arrays[key])} entries but the K file has {n}")
        self.xyz, self.verts = arrays.get("xyz"), arrays.get("verts")
        self.mano = arrays["mano"][:, 0] if "mano" in arrays else None

    def __getstate__(self) -> dict:
        # memory maps would be pickled as full copies; send the file names instead
        state = dict(self.__dict__)
        for key in ("K", "xyz", "verts", "mano"):
            state[key] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._map_annotations(check=False)

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
        K = check_intrinsics(_copy32(self.K[i]), self.root / f"{self.split}_K.json", i)
        sample: dict = {"image": image, "K": K, "index": int(index), "name": self.name}
        if self.has_gt:
            joints3d = check_joints(_copy32(self.xyz[i]), self.root / f"{self.split}_xyz.json", i)
            sample["joints3d"] = joints3d
            sample["verts3d"] = check_joints(_copy32(self.verts[i]),
                                             self.root / f"{self.split}_verts.json", i, "verts")
            sample["joints2d"] = project(joints3d, K)
            if self.mano is not None:
                sample["pose"] = _copy32(self.mano[i, :48])
                sample["shape"] = _copy32(self.mano[i, 48:58])
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

