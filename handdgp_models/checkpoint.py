"""Checkpoint files: atomic writes, and reads that never execute code from the file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

__all__ = ["load_checkpoint", "save_checkpoint"]


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Atomic ``torch.save`` (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        torch.save(state, f)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """``torch.load(weights_only=True)`` on CPU."""
    return torch.load(path, map_location="cpu", weights_only=True)
