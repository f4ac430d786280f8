"""File reading shared by the dataset loaders: every failure names the file.

Images are read completely or not at all: a JPEG or PNG is checked for its end marker (and a
PNG for the checksum of every chunk) before it is decoded, so a truncated or damaged file is an
error naming it, never an image with missing rows. Annotation values are checked where they
are read (:func:`check_intrinsics`, :func:`check_joints`), and dataset ids are checked to stay
inside the dataset folder (:func:`path_inside`).
"""

from __future__ import annotations

import json
import math
import os
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..validate import require_in_front, require_intrinsics
from .json_arrays import read_json_array

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8"


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


def _png_problem(data: bytes) -> str | None:
    """Why a PNG byte string is incomplete or damaged, or None when every chunk checks out."""
    pos = len(_PNG_SIGNATURE)
    while True:
        if pos + 12 > len(data):
            return "truncated (no IEND chunk)"
        length = int.from_bytes(data[pos:pos + 4], "big")
        end = pos + 12 + length
        if end > len(data):
            return "truncated (a chunk runs past the end of the file)"
        kind = data[pos + 4:pos + 8]
        if zlib.crc32(data[pos + 4:end - 4]) != int.from_bytes(data[end - 4:end], "big"):
            return f"corrupt (bad checksum in chunk {kind!r} at byte {pos})"
        if kind == b"IEND":
            return None
        pos = end


def _jpeg_problem(data: bytes) -> str | None:
    """Why a JPEG byte string is incomplete, or None when its markers run to the EOI marker.

    Walks the marker segments (skipping each by its length, so embedded thumbnails are not
    mistaken for the end) and the entropy-coded data after each SOS, where a 0xFF byte is
    followed by 0x00 (stuffing), a restart marker or the next marker.
    """
    n, pos = len(data), len(_JPEG_SOI)
    while True:
        if pos >= n:
            return "truncated (no end-of-image marker)"
        if data[pos] != 0xFF:
            return f"corrupt (expected a marker at byte {pos})"
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            return "truncated (no end-of-image marker)"
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            return None
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # RSTn, TEM: no length field
            continue
        if pos + 2 > n:
            return "truncated (inside a marker segment)"
        length = int.from_bytes(data[pos:pos + 2], "big")
        if length < 2:
            return f"corrupt (bad segment length at byte {pos})"
        pos += length
        if pos > n:
            return "truncated (a segment runs past the end of the file)"
        if marker != 0xDA:  # SOS: scan data follows
            continue
        while True:
            pos = data.find(b"\xff", pos)
            if pos < 0 or pos + 1 >= n:
                return "truncated (the image data ends early)"
            following = data[pos + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7:
                pos += 2
            elif following == 0xFF:
                pos += 1
            else:
                break


def read_image(path: str | os.PathLike, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """Decode an image file completely, or raise naming it.

    Args:
        path: a JPEG or PNG file (checked for truncation and, for PNG, chunk checksums before
            decoding); other formats OpenCV reads are decoded as they are.
        flags: ``cv2.imread`` flags (``IMREAD_COLOR`` gives BGR).

    Raises:
        FileNotFoundError: no such file.
        ValueError: empty, truncated, corrupt or not an image; the message names the file.
    """
    path = require_file(path)
    data = path.read_bytes()
    if not data:
        raise ValueError(f"empty image file: {path}")
    problem = None
    if data.startswith(_PNG_SIGNATURE):
        problem = _png_problem(data)
    elif data.startswith(_JPEG_SOI):
        problem = _jpeg_problem(data)
    if problem is not None:
        raise ValueError(f"{problem} image file: {path}")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if img is None or img.size == 0:
        raise ValueError(f"corrupt or unreadable image file: {path}")
    return img


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image file completely as uint8 ``(H, W, 3)`` RGB (see :func:`read_image`)."""
    img = read_image(path, cv2.IMREAD_COLOR)
    # cvtColor swaps the channels ~100x faster than copying the reversed numpy view
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a (possibly JPEG-compressed) mask as uint8 ``(H, W)`` with values 0/1."""
    img = read_image(path, cv2.IMREAD_GRAYSCALE)
    return (img > 127).astype(np.uint8)


def read_text_lines(path: str | os.PathLike) -> list[str]:
    """Non-empty, stripped lines of a UTF-8 text file; ValueError naming it otherwise."""
    path = require_file(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (undecodable byte at offset "
                         f"{exc.start})") from exc
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def path_inside(root: str | os.PathLike, ident: str, source: str) -> Path:
    """``root / ident`` for a dataset id such as ``"SEQ/FRAME"``, refused if it could leave root.

    Each ``/``-separated part must be a plain name: not empty, ``.`` or ``..``, without
    backslashes, NUL bytes or a drive prefix. (Symbolic links inside the dataset are followed
    as usual; the check is on the id, which comes from a list file.)

    Raises:
        ValueError: naming ``source`` (the list file and line) and the id.
    """
    parts = ident.split("/")
    for part in parts:
        if (part in ("", ".", "..") or "\\" in part or "\x00" in part or ":" in part
                or os.path.isabs(part)):
            raise ValueError(f"{source}: id {ident!r} is not a plain relative name inside "
                             f"the dataset folder")
    root = Path(root)
    out = root.joinpath(*parts)
    base = os.path.normpath(root)
    if os.path.commonpath([base, os.path.normpath(out)]) != base:
        raise ValueError(f"{source}: id {ident!r} resolves outside the dataset folder {root}")
    return out


def as_float_array(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """A numeric annotation as float32 of exactly ``shape`` (any shape of the same size).

    Nested lists are walked with a budget of a few times the expected size before numpy sees
    them, so a value built from shared references cannot make the conversion explode.

    Raises:
        ValueError: naming ``name`` when the value is not numeric or has the wrong size.
    """
    size = math.prod(shape)
    if not isinstance(value, np.ndarray):
        budget, stack = 4 * size + 16, [value]
        while stack:
            item = stack.pop()
            budget -= item.size if isinstance(item, np.ndarray) else 1
            if budget < 0:
                raise ValueError(f"{name}: expected {size} numbers of shape {shape}, "
                                 "got a much larger value")
            if isinstance(item, (list, tuple)):
                stack.extend(item)
    try:
        if isinstance(value, np.ndarray) and value.size != size:
            raise ValueError(f"{value.size} values")
        arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected {size} numbers of shape {shape}, got "
                         f"{type(value).__name__} ({exc})") from exc
    if arr.size != size:
        raise ValueError(f"{name}: has shape {arr.shape}, expected {shape}")
    return arr.reshape(shape)


def _item_name(source: str | os.PathLike, item: object, field: str) -> str:
    return f"{source}{'' if item is None else f' item {item}'}: {field}"


def check_intrinsics(K: np.ndarray, source: str | os.PathLike, item: object = None) -> np.ndarray:
    """Dataset intrinsics ``(3, 3)``: finite, positive focal lengths, invertible; float32.

    Raises:
        ValueError: naming the file, the item and what is wrong.
    """
    return require_intrinsics(K, _item_name(source, item, "K")).astype(np.float32)


def check_joints(points: np.ndarray, source: str | os.PathLike, item: object = None,
                 field: str = "joints") -> np.ndarray:
    """Camera-space annotation points ``(N, 3)`` metres: finite, in front of the camera; float32.

    Raises:
        ValueError: naming the file, the item and the offending point.
    """
    return require_in_front(points, _item_name(source, item, field)).astype(np.float32)


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
