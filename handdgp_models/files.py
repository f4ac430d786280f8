"""Writing and reading the project's own files: atomic writes, strict JSON, checked ``.npz``.

Every failure is a :class:`ValueError` (or :class:`OSError` for the file system) naming the file.
A file is written under a temporary name in the same folder and renamed into place, so a reader
never sees half of it and an interrupted write leaves the previous version intact.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import UserError

__all__ = ["atomic_write", "read_json", "read_npz", "strict_json", "write_json", "write_npz"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically.

    Args:
        path: destination file; its folder is created.
        mode: ``"wb"`` or ``"w"`` (text, UTF-8).

    Yields:
        The open temporary file. If the block raises, the temporary file is removed and
        ``path`` is left untouched.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode: expected 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _plain(obj: Any, where: str, nan_as_null: bool) -> Any:
    """``obj`` with numpy values turned into Python ones; ValueError at a non-finite number."""
    if isinstance(obj, dict):
        return {k: _plain(v, f"{where}.{k}" if where else str(k), nan_as_null)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v, f"{where}[{i}]", nan_as_null) for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        if nan_as_null and obj.dtype.kind == "f":
            return _plain(obj.tolist(), where, nan_as_null)
        if obj.dtype.kind == "f" and not np.isfinite(obj).all():
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(obj))[0])
            raise ValueError(f"non-finite number at {where or 'value'}{list(bad)}")
        return obj.tolist()
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        if nan_as_null:
            return None
        raise ValueError(f"non-finite number {obj} at {where or 'value'}")
    return obj


def strict_json(obj: Any, *, indent: int | None = None, nan_as_null: bool = False) -> str:
    """Serialise ``obj`` as standard JSON: numpy arrays and scalars allowed, NaN/Infinity never.

    Args:
        obj: dicts, lists, tuples, numbers, strings, numpy arrays and scalars.
        indent: as in :func:`json.dumps`.
        nan_as_null: write a non-finite number as ``null`` (an undefined value, e.g. a metric
            over no samples) instead of refusing it.

    Raises:
        ValueError: naming the key path of the first non-finite number (e.g. ``joints[3][2]``),
            unless ``nan_as_null``.
    """
    return json.dumps(_plain(obj, "", nan_as_null), indent=indent, allow_nan=False)


def write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = None,
               nan_as_null: bool = False) -> None:
    """Write ``obj`` to ``path`` as strict JSON (see :func:`strict_json`), atomically.

    Raises:
        ValueError: naming the file and the key path of a non-finite number; nothing is written.
    """
    try:
        text = strict_json(obj, indent=indent, nan_as_null=nan_as_null)
    except ValueError as exc:
        raise ValueError(f"refusing to write {path}: {exc}") from exc
    with atomic_write(path, "w") as f:
        f.write(text + "\n")


def read_json(path: str | os.PathLike, option: str) -> Any:
    """The JSON document in ``path``, a file the user named with ``option``.

    Raises:
        UserError: naming ``option`` and the file when it is missing or not readable JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{option}: no such file {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{option} {path}: not a readable JSON file ({exc})") from exc


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` of ``arrays`` into ``path``, atomically."""
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def read_npz(path: str | os.PathLike,
             check: Callable[[dict[str, np.ndarray]], None] | None = None) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` file (no pickled objects), or fail naming the file.

    Args:
        path: the archive.
        check: optional validator called with the arrays; its ``ValueError`` is re-raised with
            the file name.

    Raises:
        FileNotFoundError: no such file.
        ValueError: empty, truncated, corrupt, not an ``.npz``, holding pickled objects, or
            refused by ``check``; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not an .npz archive (truncated or not written by numpy)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise ValueError(f"{path}: holds pickled objects, which are never loaded") from exc
        raise ValueError(f"{path}: corrupt .npz archive ({exc})") from exc
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError) as exc:
        raise ValueError(f"{path}: corrupt .npz archive ({type(exc).__name__}: {exc})") from exc
    if check is not None:
        try:
            check(arrays)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
    return arrays
