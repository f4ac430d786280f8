"""Writers of tiny datasets in the official FreiHAND and HO3D-v2 file formats.

The values are random but plausible (hands 0.4-0.8 m in front of the camera, inside the
image); each writer returns what it wrote, in the dataset's own conventions, so tests can
check that the loaders convert it correctly.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np

FREIHAND_SIZE = 224
HO3D_SIZE = (480, 640)  # (H, W)


def _hand_points(rng: np.random.Generator, n: int, K: np.ndarray, size: tuple[int, int],
                 spread: float = 0.06) -> np.ndarray:
    """``n`` OpenCV camera-space points of a hand-sized cloud that projects inside the image."""
    h, w = size
    depth = rng.uniform(0.4, 0.8)
    uv = np.array([rng.uniform(0.35 * w, 0.65 * w), rng.uniform(0.35 * h, 0.65 * h)])
    centre = depth * np.linalg.solve(K, np.array([uv[0], uv[1], 1.0]))
    return centre + rng.uniform(-spread, spread, size=(n, 3))


def _intrinsics(rng: np.random.Generator, size: tuple[int, int], f: float) -> np.ndarray:
    h, w = size
    f = f * rng.uniform(0.9, 1.1)
    return np.array([[f, 0.0, w / 2 + rng.uniform(-5, 5)], [0.0, f * rng.uniform(0.98, 1.02),
                     h / 2 + rng.uniform(-5, 5)], [0.0, 0.0, 1.0]])


def _image(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A smooth random RGB image (uint8), so JPEG round trips stay close."""
    small = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    return cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def write_freihand(root: str | Path, num: int = 3, *, split: str = "training",
                   num_versions: int = 4, masks: bool = True, with_gt: bool = True,
                   seed: int = 0) -> dict:
    """Write a FreiHAND-format dataset with ``num`` annotations under ``root``.

    Returns ``{"K": (num, 3, 3), "xyz": (num, 21, 3), "verts": (num, 778, 3), "mano":
    (num, 61), "images": {image_id: uint8 RGB}, "masks": {i: uint8 0/1}}`` (float64 arrays).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    size = (FREIHAND_SIZE, FREIHAND_SIZE)
    K = np.stack([_intrinsics(rng, size, 500.0) for _ in range(num)])
    pts = [_hand_points(rng, 21 + 778, K[i], size) for i in range(num)]
    xyz = np.stack([p[:21] for p in pts])
    verts = np.stack([p[21:] for p in pts])
    mano = rng.normal(size=(num, 61)) * 0.3
    (root / split / "rgb").mkdir(parents=True, exist_ok=True)
    with open(root / f"{split}_K.json", "w") as f:
        json.dump(K.tolist(), f)
    if with_gt:
        for name, arr in (("xyz", xyz), ("verts", verts)):
            with open(root / f"{split}_{name}.json", "w") as f:
                json.dump(arr.tolist(), f)
        with open(root / f"{split}_mano.json", "w") as f:
            json.dump([[m.tolist()] for m in mano], f)  # release layout: [[61 values]]
    images, mask_arrays = {}, {}
    versions = num_versions if split == "training" else 1
    for v in range(versions):
        for i in range(num):
            img = _image(rng, size)
            image_id = v * num + i
            cv2.imwrite(str(root / split / "rgb" / f"{image_id:08d}.jpg"), img[:, :, ::-1],
                        [cv2.IMWRITE_JPEG_QUALITY, 100])
            images[image_id] = img
    if masks and split == "training":
        (root / split / "mask").mkdir(parents=True, exist_ok=True)
        for i in range(num):
            m = np.zeros(size, np.uint8)
            m[40:120, 60:170] = 1
            cv2.imwrite(str(root / split / "mask" / f"{i:08d}.jpg"), m * 255)
            mask_arrays[i] = m
    return {"K": K, "xyz": xyz, "verts": verts, "mano": mano, "images": images,
            "masks": mask_arrays}


def write_ho3d(root: str | Path, frames: dict[str, int] | None = None, *, split: str = "train",
               ext: str = "png", seed: int = 0) -> dict:
    """Write an HO3D-v2-format split under ``root`` (``frames``: sequence → frame count).

    Joints are in HO3D order and OpenGL coordinates, as in the release. Returns
    ``{"ids": [...], "meta": {id: dict}, "images": {id: uint8 RGB}}``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    frames = frames or {"ABF10": 2, "MC1": 1}
    ids, metas, images = [], {}, {}
    flip = np.diag([1.0, -1.0, -1.0])
    for seq, count in frames.items():
        (root / split / seq / "rgb").mkdir(parents=True, exist_ok=True)
        (root / split / seq / "meta").mkdir(parents=True, exist_ok=True)
        for k in range(count):
            frame = f"{k:04d}"
            K = _intrinsics(rng, HO3D_SIZE, 615.0)
            joints_cv = _hand_points(rng, 21, K, HO3D_SIZE)
            joints_gl = joints_cv @ flip
            meta = {"camMat": K, "objName": "003_cracker_box", "objRot": rng.normal(size=(3, 1)),
                    "objTrans": rng.normal(size=3)}
            if split == "train":
                meta.update(handJoints3D=joints_gl, handPose=rng.normal(size=48) * 0.2,
                            handTrans=joints_gl[0].copy(), handBeta=rng.normal(size=10) * 0.5)
            else:
                uv = (joints_cv @ K.T)[:, :2] / (joints_cv @ K.T)[:, 2:]
                meta.update(handJoints3D=joints_gl[0].copy(), handPose=None, handBeta=None,
                            handTrans=None,
                            handBoundingBox=np.concatenate([uv.min(0), uv.max(0)]))
            with open(root / split / seq / "meta" / f"{frame}.pkl", "wb") as f:
                pickle.dump(meta, f, protocol=2)
            img = _image(rng, HO3D_SIZE)
            path = root / split / seq / "rgb" / f"{frame}.{ext}"
            params = [cv2.IMWRITE_JPEG_QUALITY, 100] if ext == "jpg" else []
            cv2.imwrite(str(path), img[:, :, ::-1], params)
            ident = f"{seq}/{frame}"
            ids.append(ident)
            metas[ident] = meta
            images[ident] = img
    (root / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return {"ids": ids, "meta": metas, "images": images}


def write_mano(path: str | Path) -> Path:
    """Write the embedded hand's arrays as a model file in MANO's layout.

    ``.pkl``: a pickled dict as in ``MANO_RIGHT.pkl`` (numpy arrays, the joint regressor as a
    scipy CSC matrix); ``.npz``: the same arrays, dense.
    """
    import scipy.sparse

    from handdgp_models.hand import default_hand_data

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = dict(default_hand_data())
    if path.suffix == ".npz":
        np.savez(path, **data)
    else:
        data["J_regressor"] = scipy.sparse.csc_matrix(data["J_regressor"])
        with open(path, "wb") as f:
            pickle.dump(data, f, protocol=2)
    return path
