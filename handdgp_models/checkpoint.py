"""Checkpoints: written atomically, read only as this project's weights-only archives.

A checkpoint is the ``torch.save`` zip archive of a dict holding at least ``"model"`` (a state
dict of tensors) and ``"config"`` (the run configuration as a JSON object string); the trainer
adds optimiser, scheduler and RNG states. :func:`load_checkpoint` reads it with
``weights_only=True`` and turns every way a file can fail to be such a checkpoint into one
:class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import zipfile
from collections.abc import Iterator
from pathlib import Path

import torch

from .errors import UserError, one_line
from .files import atomic_write

__all__ = ["CheckpointError", "load_checkpoint", "restoring_from", "save_checkpoint"]

_ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive


class CheckpointError(UserError):
    """A file that is not a readable checkpoint of this project; the message names it."""


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Atomic ``torch.save`` (temporary file in the same folder, then rename)."""
    with atomic_write(path) as f:
        torch.save(state, f)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint of this project on the CPU (``torch.load(weights_only=True)``).

    Args:
        path: a file written by :func:`save_checkpoint`.

    Returns:
        The saved dict; ``"model"`` is a dict of tensors (all finite) and ``"config"`` a JSON
        string of a dict with a ``"model"`` section.

    Raises:
        CheckpointError: the file is missing, empty, truncated, not a torch archive, holds
            objects other than tensors and containers (refused, never executed), has non-finite
            weights, or lacks the weights or the configuration.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path}: no such file")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: not a file")
    try:
        with open(path, "rb") as f:
            head = f.read(len(_ZIP_MAGIC))
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path}: cannot be read ({exc.strerror})") from exc
    if not head:
        raise CheckpointError(f"checkpoint {path}: the file is empty")
    if head != _ZIP_MAGIC:
        raise CheckpointError(f"checkpoint {path}: not a checkpoint of this project "
                              "(not a torch archive)")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"checkpoint {path}: truncated or corrupt archive")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message here advises turning weights_only off: never pass that on.
        raise CheckpointError(
            f"checkpoint {path}: not a checkpoint of this project (it holds objects other "
            "than tensors and plain containers, which are never loaded)") from exc
    except (RuntimeError, EOFError, ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"checkpoint {path}: truncated or corrupt archive "
                              f"({one_line(str(exc))[:200]})") from exc
    _check_contents(state, path)
    return state


def _check_contents(state: object, path: Path) -> None:
    what = f"checkpoint {path}: not a checkpoint of this project"
    if not isinstance(state, dict):
        raise CheckpointError(f"{what} (it holds a {type(state).__name__}, not a dict)")
    weights = state.get("model")
    if not isinstance(weights, dict) or not weights:
        raise CheckpointError(f"{what} (no 'model' weights)")
    for key, value in weights.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{what} ('model' entry {key!r} is not a named tensor)")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"checkpoint {path}: weight {key!r} holds NaN or Inf")
    config = state.get("config")
    if not isinstance(config, str):
        raise CheckpointError(f"{what} (no 'config')")
    try:
        cfg = json.loads(config)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"checkpoint {path}: its 'config' is not valid JSON ({exc})") from exc
    if not isinstance(cfg, dict) or not isinstance(cfg.get("model"), dict):
        raise CheckpointError(f"checkpoint {path}: its 'config' has no 'model' section")


@contextlib.contextmanager
def restoring_from(path: str | os.PathLike) -> Iterator[None]:
    """Report a checkpoint whose config or weights do not fit this version's model.

    Wrap the code that builds a model from a loaded checkpoint's config and loads its weights:
    a ``KeyError``/``TypeError`` (unknown or missing config keys) or ``RuntimeError``
    (mismatched state dict) becomes a :class:`CheckpointError` naming ``path``.
    """
    try:
        yield
    except (KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path}: does not fit this version of the model "
                              f"({type(exc).__name__}: {one_line(str(exc))[:300]})") from exc
