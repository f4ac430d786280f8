"""A directory of float32 ``.npy`` files converted once from JSON annotation files.

The first :meth:`ArrayCache.load` of a JSON file parses it with the streaming parser of
:mod:`.json_arrays` (bounded memory) into ``<stem>.npy`` beside a ``<stem>.meta.json`` that
records what it was built from; later loads memory-map the ``.npy`` (``mmap_mode="r"``), so
the pages are read lazily and shared by every process that maps the file (DataLoader
workers, DDP ranks on one machine).

A cache entry is valid when its metadata names the same cache format version, the same
source file size and modification time (nanoseconds), the same entry shape, and the ``.npy``
has the recorded size and CRC-32 and loads with the recorded shape. Anything else — a
changed source, a missing, truncated or corrupt file — is reported with one
``warnings.warn`` and the entry is rebuilt. Files are written to a temporary name and moved
into place with ``os.replace``, so a reader never sees a partial file; a build holds a lock
on the directory, so concurrent processes (DDP ranks) convert each file once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..cache import CACHE_ENV, cache_root
from .json_arrays import parse_json_array

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

__all__ = ["CACHE_ENV", "CACHE_FORMAT_VERSION", "ArrayCache", "default_cache_dir"]

#: Bumped whenever the cache layout or the conversion changes; older entries are rebuilt.
CACHE_FORMAT_VERSION = 1
#: Name of the cache folder created inside a writable dataset root.
CACHE_SUBDIR = ".handdgp_cache"
_COPY_BYTES = 8 << 20


def _writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError:
        return False
    return True


def default_cache_dir(root: str | os.PathLike, name: str,
                      configured: str | os.PathLike | None = None) -> Path:
    """Where the annotation cache of the dataset at ``root`` lives (the project's cache
    policy, :mod:`handdgp_models.cache`).

    ``<cache root>/<name>-<hash of the absolute root>`` when ``configured`` (a run config's
    ``cache_dir``) or ``$HANDDGP_CACHE`` is set; otherwise ``root/.handdgp_cache`` when the
    dataset root is writable (created), else under ``~/.cache/handdgp``.
    """
    root = Path(root)
    if configured is None and not os.environ.get(CACHE_ENV):
        inside = root / CACHE_SUBDIR
        if _writable_dir(inside):
            return inside
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
    return cache_root(configured) / f"{name}-{digest}"


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while block := f.read(_COPY_BYTES):
            crc = zlib.crc32(block, crc)
    return crc


class ArrayCache:
    """Float32 arrays converted from JSON files, memory-mapped from ``directory``.

    Args:
        directory: the cache directory (created when missing).

    Raises:
        OSError: naming ``directory`` when it cannot be created or written.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"cache_dir: cannot create the annotation cache {self.directory}: "
                          f"{exc}") from exc

    def paths(self, source: str | os.PathLike) -> tuple[Path, Path]:
        """``(array, metadata)`` paths of the entry of JSON file ``source``."""
        stem = Path(source).stem
        return self.directory / f"{stem}.npy", self.directory / f"{stem}.meta.json"

    def load(self, source: str | os.PathLike, shape: tuple[int, ...]) -> np.memmap:
        """The JSON list of ``shape`` arrays in ``source`` as a read-only float32 memory map
        of shape ``(N, *shape)``, converting (or re-converting) it first when needed.

        Raises:
            FileNotFoundError: ``source`` is missing.
            ValueError: naming ``source`` when it is malformed (see :mod:`.json_arrays`).
            OSError: naming the cache directory when the entry cannot be written.
        """
        source = Path(source)
        if not source.is_file():
            raise FileNotFoundError(f"missing dataset file: {source}")
        shape = tuple(int(s) for s in shape)
        key = self._key(source, shape)
        array_path, meta_path = self.paths(source)
        if array_path.exists() or meta_path.exists():
            problem = self._problem(array_path, meta_path, key)
            if problem is None:
                return np.load(array_path, mmap_mode="r")
            warnings.warn(f"annotation cache {array_path} of {source} is {problem}; "
                          "rebuilding it", stacklevel=2)
        with self._exclusive():
            # another process (a DDP rank) may have built it while this one waited
            if not (meta_path.exists() and self._problem(array_path, meta_path, key) is None):
                self._build(source, shape, key, array_path, meta_path)
        return np.load(array_path, mmap_mode="r")

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold an exclusive lock on the cache directory (POSIX ``flock``; no-op elsewhere),
        so that concurrent processes convert each file once."""
        if fcntl is None:
            yield
            return
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    @staticmethod
    def _key(source: Path, shape: tuple[int, ...]) -> dict:
        st = source.stat()
        return {"format": CACHE_FORMAT_VERSION, "source": source.name,
                "source_bytes": st.st_size, "source_mtime_ns": st.st_mtime_ns,
                "entry_shape": list(shape)}

    @staticmethod
    def _problem(array_path: Path, meta_path: Path, key: dict) -> str | None:
        """None when the entry is valid, else why it is not."""
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            return "missing its metadata or has unreadable metadata"
        if not isinstance(meta, dict) or meta.get("key") != key:
            return "stale (the source file or the cache format changed)"
        try:
            if array_path.stat().st_size != meta["bytes"]:
                return "truncated or of the wrong size"
            if _crc32(array_path) != meta["crc32"]:
                return "corrupt (checksum mismatch)"
            arr = np.load(array_path, mmap_mode="r")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return f"unreadable ({exc})"
        if arr.dtype != np.float32 or list(arr.shape) != [meta["entries"], *key["entry_shape"]]:
            return f"of the wrong dtype or shape ({arr.dtype} {arr.shape})"
        return None

    def _build(self, source: Path, shape: tuple[int, ...], key: dict, array_path: Path,
               meta_path: Path) -> None:
        temps: list[Path] = []

        def temp(suffix: str) -> tuple[int, Path]:
            fd, name = tempfile.mkstemp(dir=self.directory, prefix=f".{source.stem}.",
                                        suffix=suffix)
            temps.append(Path(name))
            os.chmod(name, 0o644)  # mkstemp's 0600 would hide a shared cache from other users
            return fd, Path(name)

        try:
            # raw float32 first (the entry count is known only at the end), then header + data
            fd, raw_path = temp(".raw")
            with os.fdopen(fd, "wb") as raw:
                n = parse_json_array(source, shape, raw)
            fd, npy_path = temp(".npy")
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, {"descr": "<f4", "fortran_order": False, "shape": (n, *shape)})
            with os.fdopen(fd, "wb") as out, open(raw_path, "rb") as raw:
                out.write(header.getvalue())
                crc = zlib.crc32(header.getvalue())
                while block := raw.read(_COPY_BYTES):
                    out.write(block)
                    crc = zlib.crc32(block, crc)
                out.flush()
                os.fsync(out.fileno())
            meta = {"key": key, "entries": n, "bytes": npy_path.stat().st_size, "crc32": crc}
            fd, meta_tmp = temp(".json")
            with os.fdopen(fd, "w") as f:
                json.dump(meta, f)
            # array first: a reader that sees the new metadata also sees the new array
            os.replace(npy_path, array_path)
            os.replace(meta_tmp, meta_path)
        except OSError as exc:
            raise OSError(f"cache_dir: cannot write the annotation cache entry {array_path}: "
                          f"{exc}") from exc
        finally:
            for path in temps:
                path.unlink(missing_ok=True)
