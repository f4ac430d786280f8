"""Writers of an SMPL-layout model file, an H36M joint regressor and a tiny Human3.6M tree in
the widely used preprocessed layout (``annotations/Human36M_subject{S}_*.json`` + ``images/``).

The tree's values are computed here independently of the loader: the body is posed in a world
frame (millimetres for the H36M joints, metres for SMPL's translation, as in the release), the
cameras look at it from about 4 m, and the 2D ground truth is projected from world points with
``cv2.projectPoints`` (world rotation and translation, not the loader's conversion).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import scipy.sparse
import torch

from handdgp_models.body import default_body_data, load_smpl

IMAGE_SIZE = (96, 128)  # (H, W)
FOCAL = 120.0


def write_smpl(path: str | Path) -> Path:
    """The embedded body's arrays as an SMPL model file (``.pkl`` with a sparse joint
    regressor, as in the release, or a dense ``.npz``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = dict(default_body_data())
    if path.suffix == ".npz":
        np.savez(path, **data)
    else:
        data["J_regressor"] = scipy.sparse.csc_matrix(data["J_regressor"])
        data["bs_style"] = "lbs"
        with open(path, "wb") as f:
            pickle.dump(data, f, protocol=2)
    return path


def h36m_regressor(body) -> np.ndarray:
    """A (17, V) regressor in Human3.6M's joint order for the embedded body: SMPL joints where
    they match, a vertex for the nose and the head top, the spine mid-point for the torso."""
    jreg = body.smpl.J_regressor.double().numpy()
    kp = body.keypoint_regressor.double().numpy()
    top = int(np.argmax(body.template[:, 1].numpy()))
    head_top = np.zeros(jreg.shape[1])
    head_top[top] = 1.0
    rows = [jreg[0], jreg[2], jreg[5], jreg[8], jreg[1], jreg[4], jreg[7],
            0.5 * (jreg[3] + jreg[6]), jreg[12], kp[24], head_top, jreg[16], jreg[18],
            jreg[20], jreg[17], jreg[19], jreg[21]]
    return np.stack(rows)


def write_h36m_regressor(path: str | Path, body=None) -> Path:
    path = Path(path)
    np.save(path, h36m_regressor(body or load_smpl()))
    return path


def _camera(rng: np.random.Generator, angle: float) -> dict:
    """A camera 4 m from the body at ``angle`` about the vertical (world z up), looking at its
    pelvis; H36M's layout: ``X_cam = R X_world + t`` with ``t`` in millimetres."""
    eye = np.array([4.0 * np.sin(angle), -4.0 * np.cos(angle), 1.2])
    forward = np.array([0.0, 0.0, 0.9]) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    t = -R @ eye * 1000.0
    h, w = IMAGE_SIZE
    f = FOCAL * rng.uniform(0.95, 1.05)
    return {"R": R.tolist(), "t": t.tolist(), "f": [f, f * 1.01],
            "c": [w / 2 + rng.uniform(-3, 3), h / 2 + rng.uniform(-3, 3)]}


# SMPL's rest frame is y up; H36M's world frame is z up: the global orientation turns it.
_Y_UP_TO_Z_UP = cv2.Rodrigues(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0],
                                        [0.0, 1.0, 0.0]]))[0].ravel()


def _project_world(points_m: np.ndarray, cam: dict) -> np.ndarray:
    """World metres -> pixels with OpenCV's own projection (the fixture's independent path)."""
    R, t = np.asarray(cam["R"]), np.asarray(cam["t"]) / 1000.0
    K = np.array([[cam["f"][0], 0, cam["c"][0]], [0, cam["f"][1], cam["c"][1]], [0, 0, 1]])
    rvec = cv2.Rodrigues(R)[0]
    uv, _ = cv2.projectPoints(points_m.astype(np.float64), rvec, t, K, None)
    return uv[:, 0]


def write_h36m(root: str | Path, subjects: dict[int, list[int]], *, cameras=(1, 2, 3, 4),
               seed: int = 0, layout: str = "neuralannot", regressor=None,
               missing_fit: tuple = ()) -> dict:
    """Write ``annotations/`` and ``images/`` for ``subjects`` (subject -> frame indices of
    action 2, subaction 1), seen by ``cameras``.

    Args:
        layout: ``"neuralannot"`` (``_SMPL_NeuralAnnot.json``) or ``"smpl_param"`` (the older
            file; entries nested under ``smpl_param`` as some releases store them).
        regressor: (17, V) for the H36M joints (default :func:`h36m_regressor`).
        missing_fit: ``(subject, frame)`` pairs left out of the SMPL file.

    Returns:
        ``{(subject, cam, frame): {"file": relative image path, "uv17": (17, 2) pixels,
        "uv_verts": (V, 2) pixels, "joints_world_mm": (17, 3), "bbox": [x, y, w, h]}}``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    body = load_smpl()
    regressor = h36m_regressor(body) if regressor is None else regressor
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    truth: dict = {}
    image_id = ann_id = 0
    for subject, frames in subjects.items():
        cams = {str(c): _camera(rng, 2 * np.pi * k / len(cameras) + rng.uniform(-0.2, 0.2))
                for k, c in enumerate(cameras)}
        images, annotations = [], []
        joints_3d: dict = {"2": {"1": {}}}
        smpl: dict = {"2": {"1": {}}}
        for frame in frames:
            pose = rng.normal(0.0, 0.15, size=72)
            pose[:3] = _Y_UP_TO_Z_UP + rng.normal(0.0, 0.1, size=3)
            shape = rng.normal(0.0, 0.5, size=10)
            trans = np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), 0.95])
            with torch.no_grad():
                verts, _ = body(torch.tensor(pose[None]), torch.tensor(shape[None]),
                                torch.tensor(trans[None]))
            verts = verts[0].numpy()
            world_mm = regressor @ verts * 1000.0
            joints_3d["2"]["1"][str(frame)] = world_mm.tolist()
            if (subject, frame) not in missing_fit:
                entry = {"pose": pose.tolist(), "shape": shape.tolist(), "trans": trans.tolist()}
                smpl["2"]["1"][str(frame)] = ({"smpl_param": entry} if layout == "smpl_param"
                                              else entry)
            for c, cam in cams.items():
                seq = f"s_{subject:02d}_act_02_subact_01_ca_{int(c):02d}"
                name = f"{seq}/{seq}_{frame + 1:06d}.jpg"
                uv17 = _project_world(world_mm / 1000.0, cam)
                uv_verts = _project_world(verts, cam)
                lo, hi = uv_verts.min(0), uv_verts.max(0)
                bbox = [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]
                h, w = IMAGE_SIZE
                img = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (w, h))
                (root / "images" / seq).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(root / "images" / name), img)
                images.append({"id": image_id, "file_name": name, "width": w, "height": h,
                               "subject": subject, "action_name": "Directions",
                               "action_idx": 2, "subaction_idx": 1, "cam_idx": int(c),
                               "frame_idx": frame})
                annotations.append({"id": ann_id, "image_id": image_id, "bbox": bbox,
                                    "keypoints_vis": [True] * 17})
                truth[(subject, int(c), frame)] = {"file": name, "uv17": uv17,
                                                   "uv_verts": uv_verts,
                                                   "joints_world_mm": world_mm, "bbox": bbox}
                image_id += 1
                ann_id += 1
        prefix = root / "annotations" / f"Human36M_subject{subject}"
        Path(f"{prefix}_data.json").write_text(json.dumps(
            {"images": images, "annotations": annotations, "categories": [{"id": 1}]}))
        Path(f"{prefix}_camera.json").write_text(json.dumps(cams))
        Path(f"{prefix}_joint_3d.json").write_text(json.dumps(joints_3d))
        suffix = "smpl_param" if layout == "smpl_param" else "SMPL_NeuralAnnot"
        Path(f"{prefix}_{suffix}.json").write_text(json.dumps(smpl))
    return truth
