"""HO3D-v2 loader (official release layout) returning samples in the project conventions.

Layout under ``root``::

    train.txt  evaluation.txt            lines "SEQ/FRAME"
    {split}/{SEQ}/rgb/{FRAME}.png        (.jpg accepted: HO3D-v3 ships JPEG)
    {split}/{SEQ}/meta/{FRAME}.pkl       camMat, handJoints3D, handPose, handTrans, handBeta, ...

HO3D stores OpenGL camera coordinates (y up, z backward); this loader applies
``diag(1, -1, -1)`` once and reorders joints from HO3D order to FreiHAND/OpenPose order.
The evaluation split gives only the root joint (``handJoints3D`` of shape (3,)) and a hand
bounding box ``handBoundingBox`` = (u_min, v_min, u_max, v_max).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..hand import NUM_KEYPOINTS, HandModel, load_mano, safe_load_pickle
from ._io import (
    as_float_array,
    box_from_points,
    check_intrinsics,
    check_joints,
    path_inside,
    project,
    read_rgb,
    read_text_lines,
    require_file,
)

__all__ = ["HO3D", "HO3D_TO_OPENPOSE", "OPENPOSE_TO_HO3D", "OPENGL_TO_OPENCV"]

#: ``ho3d_joints = openpose_joints[OPENPOSE_TO_HO3D]``.
OPENPOSE_TO_HO3D = (0, 5, 6, 7, 9, 10, 11, 17, 18, 19, 13, 14, 15, 1, 2, 3, 4, 8, 12, 16, 20)
#: ``openpose_joints = ho3d_joints[HO3D_TO_OPENPOSE]`` (the inverse permutation).
HO3D_TO_OPENPOSE = tuple(int(i) for i in np.argsort(OPENPOSE_TO_HO3D))
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0]).astype(np.float32)
_SPLITS = ("train", "evaluation")


def _field(meta: dict, key: str, shape: tuple[int, ...], path: Path) -> np.ndarray:
    if key not in meta or meta[key] is None:
        raise ValueError(f"{path}: missing field {key!r}")
    arr = as_float_array(meta[key], shape, f"{path}: field {key!r}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{path}: field {key!r} holds NaN or Inf")
    return arr


class HO3D(Dataset):
    """HO3D-v2 ``train`` or ``evaluation`` split.

    Args:
        root: dataset directory (the one holding ``train.txt``).
        split: ``"train"`` or ``"evaluation"``.
        mano: a MANO model path, a :class:`~handdgp_models.hand.HandModel`, or None. With a
            model, ``verts3d`` comes from the meta's
            ``handPose``/``handBeta``/``handTrans``; without one, training items carry joints
            only. Build a model with HO3D's fingertip ids (``tip_ids="ho3d"``).
        box_scale: the square box side is ``box_scale`` × the larger side of the keypoint
            (train) or ``handBoundingBox`` (evaluation) extent; 1.0 keeps it tight.

    Each item: ``image`` uint8 (H, W, 3) RGB; ``K`` float32 (3, 3); training items carry
    ``joints3d`` (21, 3) metres OpenCV camera, OpenPose order, ``joints2d`` (21, 2) pixels,
    ``pose`` (48,), ``shape`` (10,), ``transl`` (3,) (MANO parameters, OpenGL frame as stored)
    and ``verts3d`` (778, 3) when a model is given; evaluation items carry ``root3d`` (3,)
    (the only 3D annotation released), ``bbox`` (4,) the release's ``handBoundingBox`` and no
    joints; ``box`` float32 (3,); ``index``; ``name`` ``"ho3d"``; ``id`` ``"SEQ/FRAME"``.
    :meth:`annotation` gives an item without its image.
    """

    name = "ho3d"

    def __init__(self, root: str | os.PathLike, split: str = "train", *,
                 mano: str | os.PathLike | HandModel | None = None,
                 box_scale: float = 1.0) -> None:
        if split not in _SPLITS:
            raise ValueError(f"split: expected one of {_SPLITS}, got {split!r}")
        if not box_scale > 0:
            raise ValueError(f"box_scale: must be positive, got {box_scale!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"HO3D root directory not found: {self.root}")
        self.split = split
        self.box_scale = float(box_scale)
        list_path = require_file(self.root / f"{split}.txt")
        ids = read_text_lines(list_path)
        for number, line in enumerate(ids, start=1):
            if len(line.split("/")) != 2:
                raise ValueError(f"{list_path} entry {number}: expected a line 'SEQ/FRAME', "
                                 f"got {line!r}")
            path_inside(self.root / split, line, f"{list_path} entry {number}")
        self.ids = ids
        if mano is None or isinstance(mano, HandModel):
            self.hand_model = mano
        else:
            self.hand_model = load_mano(mano, tip_ids="ho3d")

    def __len__(self) -> int:
        return len(self.ids)

    def _paths(self, index: int) -> tuple[Path, Path]:
        seq, frame = self.ids[index].split("/")
        base = path_inside(self.root / self.split, seq, f"{self.split}.txt")
        rgb = base / "rgb" / f"{frame}.png"
        if not rgb.is_file() and (base / "rgb" / f"{frame}.jpg").is_file():
            rgb = base / "rgb" / f"{frame}.jpg"
        return rgb, base / "meta" / f"{frame}.pkl"

    def _index(self, index: int) -> int:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        return index % len(self)

    def __getitem__(self, index: int) -> dict:
        index = self._index(index)
        image = read_rgb(self._paths(index)[0])
        return {"image": image, **self.annotation(index)}

    def annotation(self, index: int) -> dict:
        """Item ``index`` without its image (what the meta file holds), as in
        ``__getitem__``."""
        index = self._index(index)
        meta_path = self._paths(index)[1]
        meta = safe_load_pickle(require_file(meta_path))  # its errors name the file
        if not isinstance(meta, dict):
            raise ValueError(f"{meta_path}: expected a dict, got {type(meta).__name__}")
        K = check_intrinsics(_field(meta, "camMat", (3, 3), meta_path), meta_path)
        sample: dict = {"K": K, "index": int(index), "name": self.name, "id": self.ids[index]}
        if self.split == "evaluation":
            root = _field(meta, "handJoints3D", (3,), meta_path) @ OPENGL_TO_OPENCV
            sample["root3d"] = check_joints(root[None], meta_path, field="handJoints3D")[0]
            bbox = _field(meta, "handBoundingBox", (4,), meta_path)
            u0, v0, u1, v1 = bbox
            side = max(u1 - u0, v1 - v0) * self.box_scale
            if not side > 0:
                raise ValueError(f"{meta_path}: handBoundingBox {[u0, v0, u1, v1]} is empty")
            sample["bbox"] = bbox.astype(np.float32)
            sample["box"] = np.array([(u0 + u1) / 2, (v0 + v1) / 2, side], dtype=np.float32)
            return sample
        joints_ho3d = _field(meta, "handJoints3D", (NUM_KEYPOINTS, 3), meta_path)
        joints3d = (joints_ho3d[list(HO3D_TO_OPENPOSE)] @ OPENGL_TO_OPENCV).astype(np.float32)
        sample["joints3d"] = check_joints(joints3d, meta_path, field="handJoints3D")
        sample["joints2d"] = project(joints3d, K)
        pose = _field(meta, "handPose", (48,), meta_path)
        beta = _field(meta, "handBeta", (10,), meta_path)
        trans = _field(meta, "handTrans", (3,), meta_path)
        sample.update(pose=pose, shape=beta, transl=trans)
        if self.hand_model is not None:
            with torch.no_grad():
                verts, _ = self.hand_model.forward(
                    torch.from_numpy(pose[None]).double(), torch.from_numpy(beta[None]).double(),
                    torch.from_numpy(trans[None]).double())
            sample["verts3d"] = (verts[0].numpy() @ OPENGL_TO_OPENCV).astype(np.float32)
        box = box_from_points(sample["joints2d"])
        box[2] *= self.box_scale
        sample["box"] = box
        return sample
