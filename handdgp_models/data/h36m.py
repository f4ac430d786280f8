"""Human3.6M loader for the widely used preprocessed layout, in the project conventions.

Layout under ``root`` (as prepared for I2L-MeshNet / Pose2Mesh)::

    annotations/Human36M_subject{S}_data.json         COCO style: "images" (file_name, width,
                                                      height, subject, action_idx,
                                                      subaction_idx, cam_idx, frame_idx) and
                                                      "annotations" (image_id, bbox [x, y, w, h])
    annotations/Human36M_subject{S}_camera.json       {cam_idx: {R (3x3), t (mm), f, c}}
    annotations/Human36M_subject{S}_joint_3d.json     {action: {subaction: {frame: 17x3 mm}}}
    annotations/Human36M_subject{S}_SMPL_NeuralAnnot.json   {action: {subaction: {frame:
                                                      {pose (72), shape (10), trans (3)}}}}
      (or the older ..._smpl_param.json of the same shape; entries may nest under "smpl_param")
    images/s_{SS}_act_{AA}_subact_{BB}_ca_{CC}/..._{frame+1:06d}.jpg

World coordinates are millimetres for the joints and metres for SMPL's translation; a
camera maps world points by ``X_cam = R X_world + t``. The loader converts to the project's
conventions at the edge: OpenCV camera space (the cameras already are), metres.

Splits (the supplement, as in I2L-MeshNet): ``train`` = subjects 1, 5, 6, 7, 8, every 5th
frame, all cameras (309,309 images in the full release); ``test`` = subjects 9, 11, every
64th frame, the frontal camera 4 only (2,142 images). Frames without an SMPL fit are left
out (their count is :attr:`Human36M.skipped_without_fit`), since the model trains and is
scored on meshes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ._io import project, read_json, read_rgb, require_file

__all__ = ["H36M_SPLITS", "Human36M", "H36MProtocol"]


@dataclass(frozen=True)
class H36MProtocol:
    """Which frames a split takes: subjects, every ``frame_step``-th frame, cameras (None: all)."""

    subjects: tuple[int, ...]
    frame_step: int
    cameras: tuple[int, ...] | None


H36M_SPLITS: dict[str, H36MProtocol] = {
    "train": H36MProtocol((1, 5, 6, 7, 8), 5, None),
    "test": H36MProtocol((9, 11), 64, (4,)),
}
_POSE_DIM, _SHAPE_DIM = 72, 10
_NUM_H36M_JOINTS = 17


def _table(data: object, path: Path, key: str) -> dict:
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a table at {key or 'the top level'}, "
                         f"got {type(data).__name__}")
    return data


def _lookup(data: dict, path: Path, *keys: object) -> object:
    """``data[k1][k2]...`` with string keys, or KeyError."""
    node: object = data
    for k in keys:
        node = _table(node, path, "/".join(map(str, keys)))[str(k)]
    return node


def _vector(value: object, n: int, path: Path, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {what}: expected {n} numbers ({exc})") from exc
    if arr.size != n or not np.all(np.isfinite(arr)):
        raise ValueError(f"{path}: {what}: expected {n} finite numbers, got {arr.size}")
    return arr


@dataclass(frozen=True)
class _Camera:
    R: np.ndarray  # (3, 3) world -> camera rotation
    t: np.ndarray  # (3,) metres
    K: np.ndarray  # (3, 3) pixels


def _camera(entry: object, path: Path, cam: int) -> _Camera:
    what = f"camera {cam}"
    if not isinstance(entry, dict) or not all(k in entry for k in ("R", "t", "f", "c")):
        raise ValueError(f"{path}: {what}: expected R, t, f and c")
    R = _vector(entry["R"], 9, path, f"{what} R").reshape(3, 3)
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-4):
        raise ValueError(f"{path}: {what}: R is not a rotation")
    t = _vector(entry["t"], 3, path, f"{what} t") / 1000.0
    f = _vector(entry["f"], 2, path, f"{what} f")
    c = _vector(entry["c"], 2, path, f"{what} c")
    K = np.array([[f[0], 0.0, c[0]], [0.0, f[1], c[1]], [0.0, 0.0, 1.0]])
    return _Camera(R, t, K)


def _smpl_file(prefix: str) -> Path:
    for suffix in ("SMPL_NeuralAnnot", "smpl_param"):
        path = Path(f"{prefix}_{suffix}.json")
        if path.is_file():
            return path
    raise FileNotFoundError(f"missing dataset file: {prefix}_SMPL_NeuralAnnot.json (or the "
                            f"older {Path(prefix).name}_smpl_param.json)")


@dataclass(frozen=True)
class _Item:
    subject: int
    file_name: str
    cam: int
    key: tuple[int, int, int]  # action, subaction, frame
    box: np.ndarray


class Human36M(Dataset):
    """Human3.6M frames with SMPL meshes and the 17 H36M joints, OpenCV camera, metres.

    Args:
        root: dataset directory (the one holding ``annotations/`` and ``images/``).
        split: ``"train"`` or ``"test"`` (:data:`H36M_SPLITS`).
        body: the :class:`~handdgp_models.body.BodyModel` that turns the SMPL parameters into
            the mesh and the 29 keypoints (the real SMPL for the release's fits).

    Each item is a dict: ``image`` uint8 (H, W, 3) RGB; ``K`` float32 (3, 3); ``joints3d``
    (29, 3) and ``verts3d`` (V, 3) float32 metres (the SMPL fit, camera space),
    ``joints2d`` (29, 2) pixels; ``eval_joints3d`` (17, 3) metres, the H36M joints of the
    motion capture (camera space, Human3.6M's joint order); ``box`` float32 (3,) = (centre_u,
    centre_v, side) pixels, the square around the annotation's bbox; ``index`` int; ``name``
    ``"h36m"``.

    Raises:
        FileNotFoundError / ValueError: naming the missing or corrupt file.
    """

    name = "h36m"

    def __init__(self, root: str | os.PathLike, split: str = "train", *, body) -> None:
        if split not in H36M_SPLITS:
            raise ValueError(f"split: expected one of {list(H36M_SPLITS)}, got {split!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"Human3.6M root directory not found: {self.root}")
        self.split = split
        self.protocol = H36M_SPLITS[split]
        self.body = body
        self.cameras: dict[tuple[int, int], _Camera] = {}
        self.joints: dict[int, tuple[Path, dict]] = {}
        self.fits: dict[int, tuple[Path, dict]] = {}
        self.items: list[_Item] = []
        self.skipped_without_fit = 0
        for subject in self.protocol.subjects:
            self._load_subject(subject)

    def _load_subject(self, subject: int) -> None:
        prefix = str(self.root / "annotations" / f"Human36M_subject{subject}")
        data_path = Path(f"{prefix}_data.json")
        data = _table(read_json(data_path), data_path, "")
        images, anns = data.get("images"), data.get("annotations")
        if not isinstance(images, list) or not isinstance(anns, list):
            raise ValueError(f"{data_path}: expected COCO-style 'images' and 'annotations' lists")
        cam_path = Path(f"{prefix}_camera.json")
        cams = _table(read_json(cam_path), cam_path, "")
        joint_path = Path(f"{prefix}_joint_3d.json")
        self.joints[subject] = (joint_path, _table(read_json(joint_path), joint_path, ""))
        fit_path = _smpl_file(prefix)
        fits = _table(read_json(fit_path), fit_path, "")
        self.fits[subject] = (fit_path, fits)
        boxes = {}
        for ann in anns:
            if isinstance(ann, dict) and "image_id" in ann and "bbox" in ann:
                boxes.setdefault(ann["image_id"], ann["bbox"])
        p = self.protocol
        for img in images:
            try:
                frame, cam = int(img["frame_idx"]), int(img["cam_idx"])
                key = (int(img["action_idx"]), int(img["subaction_idx"]), frame)
                file_name, image_id = str(img["file_name"]), img["id"]
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{data_path}: image entry without {exc}") from exc
            if frame % p.frame_step or (p.cameras is not None and cam not in p.cameras):
                continue
            if (subject, cam) not in self.cameras:
                if str(cam) not in cams:
                    raise ValueError(f"{cam_path}: no camera {cam} (image {file_name})")
                self.cameras[subject, cam] = _camera(cams[str(cam)], cam_path, cam)
            try:
                _lookup(self.joints[subject][1], joint_path, *key)
            except KeyError as exc:
                raise ValueError(f"{joint_path}: no joints for action/subaction/frame "
                                 f"{'/'.join(map(str, key))} (image {file_name})") from exc
            try:
                _lookup(fits, fit_path, *key)
            except KeyError:
                self.skipped_without_fit += 1
                continue
            if image_id not in boxes:
                raise ValueError(f"{data_path}: no annotation bbox for image {file_name}")
            box = _vector(boxes[image_id], 4, data_path, f"bbox of {file_name}")
            if not (box[2] > 0 and box[3] > 0):
                raise ValueError(f"{data_path}: bbox of {file_name} has no area: {box.tolist()}")
            square = np.array([box[0] + box[2] / 2, box[1] + box[3] / 2, max(box[2], box[3])],
                              dtype=np.float32)
            self.items.append(_Item(subject, file_name, cam, key, square))

    def __len__(self) -> int:
        return len(self.items)

    def image_path(self, index: int) -> Path:
        """Path of the RGB image of item ``index``."""
        return self.root / "images" / self.items[index].file_name

    def _fit(self, item: _Item) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        path, fits = self.fits[item.subject]
        entry = _lookup(fits, path, *item.key)
        if isinstance(entry, dict) and isinstance(entry.get("smpl_param"), dict):
            entry = entry["smpl_param"]
        what = f"fit {'/'.join(map(str, item.key))}"
        if not isinstance(entry, dict) or not all(k in entry for k in ("pose", "shape", "trans")):
            raise ValueError(f"{path}: {what}: expected pose, shape and trans")
        return (_vector(entry["pose"], _POSE_DIM, path, f"{what} pose"),
                _vector(entry["shape"], _SHAPE_DIM, path, f"{what} shape"),
                _vector(entry["trans"], 3, path, f"{what} trans"))

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index = index % len(self)
        item = self.items[index]
        cam = self.cameras[item.subject, item.cam]
        joint_path, joints = self.joints[item.subject]
        h36m = _vector(_lookup(joints, joint_path, *item.key), 3 * _NUM_H36M_JOINTS,
                       joint_path, f"joints {'/'.join(map(str, item.key))}").reshape(-1, 3)
        pose, shape, trans = self._fit(item)
        image = read_rgb(require_file(self.image_path(index)))
        dtype = self.body.template.dtype
        with torch.no_grad():
            verts, keypoints = self.body(torch.tensor(pose[None], dtype=dtype),
                                         torch.tensor(shape[None], dtype=dtype),
                                         torch.tensor(trans[None], dtype=dtype))

        def to_camera(world_m: np.ndarray) -> np.ndarray:
            return world_m @ cam.R.T + cam.t

        joints3d = to_camera(keypoints[0].double().numpy())
        return {
            "image": image, "K": cam.K.astype(np.float32),
            "joints3d": joints3d.astype(np.float32),
            "verts3d": to_camera(verts[0].double().numpy()).astype(np.float32),
            "joints2d": project(joints3d, cam.K),
            "eval_joints3d": to_camera(h36m / 1000.0).astype(np.float32),
            "box": item.box.copy(), "index": int(index), "name": self.name,
        }
