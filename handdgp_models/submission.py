"""Writers and readers of benchmark submission files (FreiHAND and HO3D-v2 ``pred.json``) and
of the generic prediction file of other test sets."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import torch

from handdgp_models.files import write_json
from handdgp_models.hand import NUM_KEYPOINTS, NUM_VERTS
from handdgp_models.metrics import _as_points

# Index i of the HO3D joint order takes OpenPose/FreiHAND joint OPENPOSE_TO_HO3D[i].
OPENPOSE_TO_HO3D = (0, 5, 6, 7, 9, 10, 11, 17, 18, 19, 13, 14, 15, 1, 2, 3, 4, 8, 12, 16, 20)
# OpenCV (y down, z forward) <-> OpenGL (y up, z backward).
CV_TO_GL = np.array([1.0, -1.0, -1.0])


def _to_array(name: str, value: Any, count: int | None) -> np.ndarray:
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], torch.Tensor):
        value = torch.stack(list(value))
    return _as_points(name, value, count)


def _write(path: str | os.PathLike, joints: np.ndarray, verts: np.ndarray) -> None:
    if joints.shape[0] != verts.shape[0]:
        raise ValueError(
            f"joints batch {joints.shape[0]} does not match verts batch {verts.shape[0]}"
        )
    write_json(path, [joints, verts])  # strict JSON: a NaN prediction is refused


def write_freihand_pred(path: str | os.PathLike, xyz_list: Any, verts_list: Any) -> None:
    """Write FreiHAND's ``pred.json``: ``[xyz_list, verts_list]`` as plain lists in metres.

    Args:
        path: output file.
        xyz_list: ``(B, 21, 3)`` joints, OpenPose order, OpenCV camera, metres.
        verts_list: ``(B, 778, 3)`` MANO vertices, metres.
    """
    joints = _to_array("xyz_list", xyz_list, NUM_KEYPOINTS)
    verts = _to_array("verts_list", verts_list, NUM_VERTS)
    _write(path, joints, verts)


def write_mesh_pred(path: str | os.PathLike, joints: Any, verts: Any) -> None:
    """Write ``[joints_list, verts_list]`` (OpenCV camera, metres) for any template, in the
    template's own keypoint order (e.g. the body's 29 keypoints and its mesh).

    Args:
        path: output file.
        joints: ``(B, K, 3)`` keypoints; verts: ``(B, V, 3)`` mesh vertices.
    """
    _write(path, _to_array("joints", joints, None), _to_array("verts", verts, None))


def write_ho3d_pred(path: str | os.PathLike, joints: Any, verts: Any) -> None:
    """Write an HO3D-v2 ``pred.json``: ``[xyz_list, verts_list]`` in HO3D joint order, OpenGL axes.

    Args:
        path: output file.
        joints: ``(B, 21, 3)`` joints, OpenPose order, OpenCV camera, metres.
        verts: ``(B, 778, 3)`` MANO vertices, OpenCV camera, metres.
    """
    j = _to_array("joints", joints, NUM_KEYPOINTS)
    v = _to_array("verts", verts, NUM_VERTS)
    _write(path, j[:, list(OPENPOSE_TO_HO3D)] * CV_TO_GL, v * CV_TO_GL)


def _read(path: str | os.PathLike, count: int | None,
          count_keypoints: int | None = NUM_KEYPOINTS) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable pred.json ({exc})") from exc
    if not isinstance(data, list) or len(data) != 2:
        raise ValueError(f"{path}: expected [xyz_list, verts_list]")
    joints = _as_points(f"{path} xyz_list", data[0], count_keypoints)
    verts = _as_points(f"{path} verts_list", data[1], None)
    if count is not None and len(joints) != count:
        raise ValueError(f"{path}: {len(joints)} predictions, the split has {count} images")
    if len(verts) != len(joints):
        raise ValueError(f"{path}: {len(joints)} joint sets but {len(verts)} vertex sets")
    return joints, verts


def read_freihand_pred(path: str | os.PathLike,
                       count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a FreiHAND ``pred.json`` as the benchmark's evaluation reads it.

    Returns ``(joints (B, 21, 3), verts (B, V, 3))`` float64 metres, OpenPose order, OpenCV
    camera; ``count`` checks the number of predictions.
    """
    return _read(path, count)


def read_ho3d_pred(path: str | os.PathLike,
                   count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read an HO3D-v2 ``pred.json`` back into the project's conventions.

    Returns ``(joints, verts)`` in OpenPose order and OpenCV axes (the file holds HO3D order
    and OpenGL axes).
    """
    joints, verts = _read(path, count)
    back = np.argsort(OPENPOSE_TO_HO3D)
    return joints[:, back] * CV_TO_GL, verts * CV_TO_GL
