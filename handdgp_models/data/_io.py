"""File reading shared by the dataset loaders: every failure names the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from .json_arrays import read_json_array


def require_file(path: str | os.PathLike) -> Path:
    """Return ``path`` as a Path, or raise FileNotFoundError naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing dataset file: {path}")
    return path


def read_json(path: str | os.PathLike) -> object:
    """Parse a JSON file; ValueError naming the file when it is not valid JSON."""
    path = require_file(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"corrupt JSON file {path}: {exc}") from exc


def json_array(path: str | os.PathLike, shape: tuple[int, ...]) -> np.ndarray:
    """A JSON list of equally shaped arrays as float32 ``(N, *shape)``, checked (in memory;
    see :class:`~handdgp_models.data.array_cache.ArrayCache` for large files)."""
    return read_json_array(require_file(path), shape)


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as uint8 ``(H, W, 3)`` RGB."""
    path = require_file(path)
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"corrupt or unreadable image file: {path}")
    # cvtColor swaps the channels ~100x faster than copying the reversed numpy view
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a (possibly JPEG-compressed) mask as uint8 ``(H, W)`` with values 0/1."""
    path = require_file(path)
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise ValueError(f"corrupt or unreadable mask file: {path}")
    return (img > 127).astype(np.uint8)


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection of camera-space ``(N, 3)`` points with ``K`` ``(3, 3)`` → ``(N, 2)``."""
    p = points.astype(np.float64) @ K.astype(np.float64).T
    return (p[:, :2] / p[:, 2:]).astype(np.float32)


def box_from_points(points2d: np.ndarray) -> np.ndarray:
    """Square box ``(centre_u, centre_v, side)`` around ``(N, 2)`` pixel points (float32)."""
    lo, hi = points2d.min(axis=0), points2d.max(axis=0)
    centre = (lo + hi) / 2.0
    side = max(float((hi - lo).max()), 1.0)
    return np.array([centre[0], centre[1], side], dtype=np.float32)
