"""Run configuration: named configs, JSON/TOML files and ``key=value`` overrides.

A config is a plain nested dict (so it can be stored in checkpoints and loaded with
``torch.load(weights_only=True)``) with sections ``model`` (fields of
:class:`~handdgp_models.model.NetworkConfig`), ``data``, ``train``, ``loss``
(:class:`~handdgp_models.losses.LossWeights`) and ``eval``.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["NAMED_CONFIGS", "apply_overrides", "default_config", "load_config", "merge"]


def default_config() -> dict:
    """The paper-sized configuration (ResNet-50, 224 px, two views)."""
    return {
        "model": {"backbone": "resnet50", "backbone_weights": None, "input_size": 224,
                  "mesh_channels": [256, 256, 128, 64, 32], "feature_channels": 256,
                  "weight_hidden": 1024, "weight_channels": 97, "kp_hidden": [224, 112],
                  "method": "dgp", "focal": 300.0, "rescale": True},
        "data": {"dataset": "synthetic", "train_samples": 2000, "test_samples": 300,
                 "seed": 0, "test_seed": 1000, "mode": "perspective", "two_views": True,
                 "occlusion_prob": 0.3, "orientation_spread": 180.0, "depth": None,
                 "cache_dir": None, "shift": 0.1, "scale_jitter": 0.2,
                 "rotation_deg": 45.0, "photometric": True, "num_workers": 0},
        "train": {"seed": 0, "batch_size": 32, "steps": 20000, "stage1_fraction": 0.5,
                  "stage2_lr_factor": 0.1, "lr": 1e-3, "lr_decay_at": 0.8, "weight_decay": 0.0,
                  "grad_clip": 10.0, "checkpoint_every": 500, "threads": 0,
                  "hierarchy_cache": None},
        "loss": {"verts": 1.0, "kp2d": 1.0, "normal": 0.05, "edge": 0.5, "consist2d": 1.0,
                 "consist3d": 1.0, "transl": 1.0, "proj_verts": 1.0, "proj_joints": 0.5},
        "eval": {"batch_size": 32, "overlays": 8},
    }


def merge(base: dict, update: dict) -> dict:
    """Recursive dict merge; ``update`` wins. Returns a new dict."""
    out = copy.deepcopy(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# The main job's data: hands within 90 degrees of a palm-to-camera view at 0.4-0.9 m, so that
# a ResNet-18 trained from scratch for 1500 steps on a CPU learns the relative mesh; the
# canonical focal fits the closest hands into the 128 px input.
_SMALL = {
    "model": {"backbone": "resnet18", "input_size": 128, "mesh_channels": [64, 64, 48, 32, 16],
              "feature_channels": 64, "weight_hidden": 128, "weight_channels": 16,
              "kp_hidden": [128, 64], "focal": 200.0},
    "data": {"two_views": False, "train_samples": 1600, "test_samples": 200,
             "orientation_spread": 90.0, "depth": [0.4, 0.9]},
    "train": {"batch_size": 16, "steps": 1500, "stage1_fraction": 0.5, "stage2_lr_factor": 0.3,
              "lr": 1e-3, "lr_decay_at": 0.85, "checkpoint_every": 50},
    "eval": {"batch_size": 32, "overlays": 6},
}

NAMED_CONFIGS: dict[str, dict] = {
    "paper": {},
    # The main job: sized to train + evaluate on a 2-core CPU in about 20 minutes.
    "small": _SMALL,
    # Smoke tests: a few steps on a handful of samples.
    "tiny": merge(_SMALL, {
        "model": {"input_size": 64, "mesh_channels": [16, 16, 16, 16, 8], "feature_channels": 16,
                  "weight_hidden": 16, "weight_channels": 4, "kp_hidden": [16, 16],
                  "focal": 85.0},
        "data": {"train_samples": 8, "test_samples": 4},
        "train": {"batch_size": 4, "steps": 4, "checkpoint_every": 2},
        "eval": {"batch_size": 4, "overlays": 2},
    }),
}


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(config: dict, overrides: list[str] | None) -> dict:
    """Apply ``section.key=value`` overrides (values parsed as JSON, else kept as strings)."""
    out = copy.deepcopy(config)
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"--set: expected key=value, got {item!r}")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = out
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                raise ValueError(f"--set: unknown section {p!r} in {key!r}")
            node = node[p]
        if parts[-1] not in node:
            raise ValueError(f"--set: unknown key {key!r}")
        node[parts[-1]] = _parse_value(value)
    return out


def load_config(name_or_path: str | os.PathLike | None = None,
                overrides: list[str] | None = None) -> dict:
    """A named config (``paper``, ``small``, ``tiny``) or a JSON/TOML file over the defaults.

    Raises:
        ValueError: unknown name, unreadable file or bad override.
    """
    base = default_config()
    if name_or_path is None:
        update: dict = {}
    elif str(name_or_path) in NAMED_CONFIGS:
        update = NAMED_CONFIGS[str(name_or_path)]
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise ValueError(f"config: {str(name_or_path)!r} is neither a named config "
                             f"({sorted(NAMED_CONFIGS)}) nor a file")
        if path.suffix == ".toml":
            import tomllib

            update = tomllib.loads(path.read_text())
        else:
            update = json.loads(path.read_text())
        for section in update:
            if section not in base:
                raise ValueError(f"config: unknown section {section!r} in {path.name}")
    return apply_overrides(merge(base, update), overrides)
