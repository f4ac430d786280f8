"""Run configuration: one typed tree of dataclasses, named configs, files and overrides.

Every section is the settings class of the component that reads it, so each default is
declared once, in that class:

- ``model``: :class:`~handdgp_models.model.NetworkConfig` (network, canonical camera);
- ``hand``: :class:`HandConfig` (embedded hand or a MANO file);
- ``body``: :class:`BodyConfig` or null: present, the run is the full-body variant (SMPL,
  Human3.6M) instead of the hand;
- ``input``: :class:`~handdgp_models.data.PipelineConfig` (rectification and augmentation;
  its ``out_size``/``focal``/``train`` come from ``model`` and the role, not from the file);
- ``data``: :class:`DataConfig` (training sources with sampling weights, the test source);
- ``train``: :class:`TrainConfig`; ``loss``: :class:`~handdgp_models.losses.LossWeights`;
  ``eval``: :class:`EvalConfig`.

A run config is built from the defaults, a named config or a JSON/TOML file, and
``section.key=value`` overrides (JSON values; list items by index, ``data.train.0.root=...``).
Every layer is strict: an unknown key or a value of the wrong type anywhere is a
``ValueError`` naming the key and where it came from. :func:`to_dict` gives plain containers
(stored in checkpoints, loadable with ``torch.load(weights_only=True)``) and
:func:`config_from_dict` reads them back with the same checks.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .data.pipeline import PipelineConfig
from .losses import LossWeights
from .model.network import NetworkConfig

__all__ = ["DATASETS", "NAMED_CONFIGS", "BodyConfig", "DataConfig", "EvalConfig", "HandConfig",
           "RunConfig", "SourceConfig", "TrainConfig", "apply_overrides", "config_from_dict",
           "load_config", "to_dict"]

#: Data sources a config can name (``h36m`` needs a ``body`` section, the others show hands).
DATASETS = ("synthetic", "freihand", "ho3d", "h36m")
_DEVICES = ("auto", "cpu", "cuda")


@dataclass
class SourceConfig:
    """One data source.

    Attributes:
        dataset: ``"synthetic"``, ``"freihand"``, ``"ho3d"`` or ``"h36m"``.
        weight: relative sampling weight of this source in a training mix.
        root: dataset directory (real datasets; ``--data-root`` sets it).
        split: the dataset's split; None picks the role's default (FreiHAND
            ``training``/``evaluation``, HO3D-v2 ``train``/``evaluation``, Human3.6M
            ``train``/``test``).
        versions: FreiHAND training image versions (``gs``, ``hom``, ``sample``, ``auto``).
        samples: synthetic: number of rendered images; real data: use only the first
            ``samples`` items (None: all).
        seed: synthetic: base seed of the rendered images.
        camera: synthetic camera domain (``"train"`` or ``"test"``).
        occlusion_prob: synthetic: probability of random occluders over the hand.
        orientation_spread: synthetic: largest angle (degrees) from a palm-to-camera view.
        depth: synthetic: ``[min, max]`` depth of the hand in metres, or None for the
            camera domain's range.
    """

    dataset: str = "synthetic"
    weight: float = 1.0
    root: str | None = None
    split: str | None = None
    versions: list[str] = field(default_factory=lambda: ["gs", "hom", "sample", "auto"])
    samples: int | None = None
    seed: int = 0
    camera: str = "train"
    occlusion_prob: float = 0.3
    orientation_spread: float = 180.0
    depth: list[float] | None = None

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset: expected one of {DATASETS}, got {self.dataset!r}")
        if not self.weight > 0:
            raise ValueError(f"weight: must be positive, got {self.weight!r}")
        if self.samples is not None and self.samples < 0:
            raise ValueError(f"samples: must be >= 0, got {self.samples!r}")
        if self.depth is not None and (len(self.depth) != 2
                                       or not 0.0 < self.depth[0] <= self.depth[1]):
            raise ValueError(f"depth: expected [min, max] metres with 0 < min <= max, "
                             f"got {self.depth}")


def _default_train_sources() -> list[SourceConfig]:
    return [SourceConfig(samples=2000, seed=0, camera="train")]


def _default_test_source() -> SourceConfig:
    return SourceConfig(samples=300, seed=1000, camera="test")


@dataclass
class DataConfig:
    """Where the images come from.

    Attributes:
        train: training sources, mixed by their ``weight``.
        test: the evaluation source.
        cache_dir: folder of rendered synthetic images (default ``RUN/data``).
        num_workers: DataLoader worker processes.
    """

    train: list[SourceConfig] = field(default_factory=_default_train_sources)
    test: SourceConfig = field(default_factory=_default_test_source)
    cache_dir: str | None = None
    num_workers: int = 0

    def __post_init__(self) -> None:
        if not self.train:
            raise ValueError("train: needs at least one source")
        if self.num_workers < 0:
            raise ValueError(f"num_workers: must be >= 0, got {self.num_workers}")


@dataclass
class HandConfig:
    """The hand model.

    Attributes:
        mano: path of ``MANO_RIGHT.pkl`` (or the ``.npz`` layout); None for the embedded
            default hand. Real datasets need the real MANO mesh.
        tip_ids: fingertip vertex ids: ``"freihand"``, ``"ho3d"``, ``"smplx"``, or None for
            those of the first training source's dataset.
    """

    mano: str | None = None
    tip_ids: str | None = None


@dataclass
class BodyConfig:
    """The body model of the full-body variant (a run with this section trains on bodies).

    Attributes:
        smpl: path of ``SMPL_NEUTRAL.pkl`` (or the ``.npz`` layout); None for the embedded
            default body (synthetic smoke runs only: Human3.6M needs the real SMPL mesh).
        h36m_regressor: path of ``J_regressor_h36m_correct.npy`` (Human3.6M's 17 joints from
            SMPL's vertices); with it, evaluation also scores the 17 H36M joints.
    """

    smpl: str | None = None
    h36m_regressor: str | None = None


@dataclass
class TrainConfig:
    """Optimisation and checkpointing.

    Attributes:
        seed: seeds the initialisation, the data order and every augmentation draw.
        batch_size: images per step and process.
        steps: optimiser steps in total.
        stage1_fraction: share of the steps with relative-space losses only.
        stage2_lr_factor: learning-rate factor of stage 2 (all losses, end to end).
        lr: Adam learning rate; weight_decay: Adam weight decay.
        lr_decay_at: fraction of the steps after which the rate drops tenfold.
        grad_clip: gradient-norm clip.
        checkpoint_every: steps between checkpoints (also every epoch and on interrupt).
        threads: torch intra-op threads; 0 chooses them during training from the cores other
            processes leave free (:class:`~handdgp_models.threads.ThreadGovernor`).
        hierarchy_cache: folder of the cached mesh hierarchy (default ``~/.cache/handdgp``).
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    """

    seed: int = 0
    batch_size: int = 32
    steps: int = 20000
    stage1_fraction: float = 0.5
    stage2_lr_factor: float = 0.1
    lr: float = 1e-3
    lr_decay_at: float = 0.8
    weight_decay: float = 0.0
    grad_clip: float = 10.0
    checkpoint_every: int = 500
    threads: int = 0
    hierarchy_cache: str | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("batch_size", "steps", "checkpoint_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.stage1_fraction <= 1.0:
            raise ValueError(f"stage1_fraction: must be in [0, 1], got {self.stage1_fraction}")
        if self.device not in _DEVICES:
            raise ValueError(f"device: expected one of {_DEVICES}, got {self.device!r}")


@dataclass
class EvalConfig:
    """Evaluation settings: batch size and number of overlay images written."""

    batch_size: int = 32
    overlays: int = 8

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise ValueError(f"batch_size: must be positive, got {self.batch_size}")
        if self.overlays < 0:
            raise ValueError(f"overlays: must be >= 0, got {self.overlays}")


@dataclass
class RunConfig:
    """A whole run: one section per component (see the module docstring)."""

    model: NetworkConfig = field(default_factory=NetworkConfig)
    hand: HandConfig = field(default_factory=HandConfig)
    body: BodyConfig | None = None
    input: PipelineConfig = field(default_factory=PipelineConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    eval: EvalConfig = field(default_factory=EvalConfig)


# ----------------------------------------------------------------------------- schema walking

def _fields(cls: type) -> dict[str, Any]:
    """Settable fields of a config dataclass and their resolved types."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)
            if not f.metadata.get("derived")}


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _optional_inner(tp: Any) -> Any | None:
    """``X`` for ``X | None``, else None."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0]
    return None


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


class _ConfigError(ValueError):
    pass


def _fail(key: str, source: str, message: str) -> None:
    raise _ConfigError(f"config: {key}: {message} (from {source})")


def _check_value(tp: Any, value: Any, key: str, source: str) -> Any:
    """``value`` as plain data of type ``tp`` (dataclass nodes become dicts of defaults
    merged with ``value``), or an error naming ``key`` and ``source``."""
    inner = _optional_inner(tp)
    if inner is not None:
        return None if value is None else _check_value(inner, value, key, source)
    if _is_dataclass_type(tp):
        if not isinstance(value, dict):
            _fail(key, source, f"expected a table of {tp.__name__} settings, "
                               f"got {type(value).__name__}")
        return _merge_node(tp, to_dict(tp()), value, key, source)
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            _fail(key, source, f"expected a list, got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                _fail(key, source, f"expected {len(args)} values, got {len(value)}")
            return [_check_value(a, v, f"{key}.{i}", source)
                    for i, (a, v) in enumerate(zip(args, value, strict=True))]
        item = args[0] if args else Any
        return [_check_value(item, v, f"{key}.{i}", source) for i, v in enumerate(value)]
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            _fail(key, source, f"expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(key, source, f"expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(key, source, f"expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            _fail(key, source, f"expected a string, got {value!r}")
        return value
    raise TypeError(f"config: unsupported field type {_type_name(tp)} at {key}")


def _merge_node(cls: type, base: dict, update: dict, where: str, source: str) -> dict:
    """``update`` merged into the plain ``base`` of dataclass ``cls``, strictly."""
    fields = _fields(cls)
    out = dict(base)
    for k, v in update.items():
        key = f"{where}.{k}" if where else str(k)
        if k not in fields:
            _fail(key, source, f"unknown key; {cls.__name__} has {sorted(fields)}")
        tp = fields[k]
        sub = _optional_inner(tp) or tp
        if _is_dataclass_type(sub) and isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge_node(sub, out[k], v, key, source)
        else:
            out[k] = _check_value(tp, v, key, source)
    return out


def to_dict(obj: Any) -> Any:
    """Plain containers (dicts, lists, numbers, strings) of a config dataclass tree."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not f.metadata.get("derived")}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return copy.deepcopy(obj)


def _construct(tp: Any, value: Any, key: str, source: str) -> Any:
    """Dataclass instances from checked plain data (``__post_init__`` errors get the key)."""
    inner = _optional_inner(tp)
    if inner is not None:
        return None if value is None else _construct(inner, value, key, source)
    if _is_dataclass_type(tp):
        fields = _fields(tp)
        kwargs = {k: _construct(fields[k], v, f"{key}.{k}" if key else k, source)
                  for k, v in value.items()}
        try:
            return tp(**kwargs)
        except (ValueError, TypeError) as exc:
            if isinstance(exc, _ConfigError):
                raise
            msg = str(exc)
            name = msg.split(":", 1)[0]
            where = f"{key}.{msg}" if key and name in fields else f"{key or tp.__name__}: {msg}"
            raise _ConfigError(f"config: {where} (from {source})") from exc
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        args = typing.get_args(tp)
        if origin is tuple:
            return tuple(value)
        return [_construct(args[0], v, f"{key}.{i}", source) for i, v in enumerate(value)]
    return value


# ----------------------------------------------------------------------------- named configs

# The main job: a MobileNetV3-Small from scratch for 1700 steps on a CPU (2.4x the images/s of
# a ResNet-18 at this size, measured by benchmarks/bench_train_step.py). Hands within 90 degrees
# of a palm-to-camera view at 0.4-0.9 m, so the budget learns the relative mesh; the canonical
# focal makes the median hand about 80 px of the 128 px input (at 200 px it was 39 px and the
# network stayed at the mean hand). Perspective rectification with a zoom jitter and the
# reference-size rescale are the project's own options (labelled in docs/model.md).
_SMALL: dict = {
    "model": {"backbone": "mobilenet_v3_small", "input_size": 128,
              "mesh_channels": [64, 64, 48, 32, 16], "feature_channels": 64,
              "weight_hidden": 128, "weight_channels": 16, "kp_hidden": [128, 64],
              "focal": 400.0, "rescale": True},
    "input": {"mode": "perspective", "jitter": "zoom", "crop_first": False, "two_views": False},
    "data": {"train": [{"samples": 3200, "orientation_spread": 90.0, "depth": [0.4, 0.9]}],
             "test": {"samples": 200, "seed": 1000, "camera": "test",
                      "orientation_spread": 90.0, "depth": [0.4, 0.9]}},
    "train": {"batch_size": 16, "steps": 1700, "stage1_fraction": 0.5, "stage2_lr_factor": 0.3,
              "lr": 1e-3, "lr_decay_at": 0.85, "checkpoint_every": 50},
    "eval": {"batch_size": 32, "overlays": 6},
}

def _deep_merge(base: dict, update: dict) -> dict:
    """A named config over another: tables merge, values and lists replace."""
    out = copy.deepcopy(base)
    for k, v in update.items():
        out[k] = (_deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict)
                  else copy.deepcopy(v))
    return out


# Smoke tests: the small config's shape at toy sizes, a few steps on a handful of samples.
_TINY: dict = _deep_merge(_SMALL, {
    "model": {"input_size": 64, "mesh_channels": [16, 16, 16, 16, 8], "feature_channels": 16,
              "weight_hidden": 16, "weight_channels": 4, "kp_hidden": [16, 16], "focal": 85.0},
    "data": {"train": [{"samples": 8, "orientation_spread": 90.0, "depth": [0.4, 0.9]}],
             "test": {"samples": 4, "seed": 1000, "camera": "test",
                      "orientation_spread": 90.0, "depth": [0.4, 0.9]}},
    "train": {"batch_size": 4, "steps": 4, "checkpoint_every": 2},
    "eval": {"batch_size": 4, "overlays": 2},
})

# The paper's settings (supplement): ResNet-50, 224 px, affine rectification to f_c, crop of
# 1.3 x the box, the crop jittered before rectification, two views sharing one rotation, DSConv
# decoder, supplement loss weights, two stages. ImageNet weights: --set model.backbone_weights.
_PAPER: dict = {
    "model": {"backbone": "resnet50", "input_size": 224, "decoder": "dsconv", "rescale": False},
    "input": {"mode": "affine", "jitter": "crop", "crop_first": True, "crop_scale": 1.3,
              "two_views": True},
}


def _real(dataset: str, focal: float) -> dict:
    return _deep_merge(_PAPER, {
        "model": {"focal": focal},
        "data": {"train": [{"dataset": dataset}],
                 "test": {"dataset": dataset, "samples": None, "seed": 0}}})


def _perspective(cfg: dict) -> dict:
    return _deep_merge(cfg, {"input": {"mode": "perspective"}})


# The body variant (supplement 7.2): SMPL instead of MANO, 29 keypoints, f_c = 400, the crop
# and its augmentation centred on the annotated body box; everything else as for hands.
_H36M: dict = _deep_merge(_real("h36m", 400.0), {"body": {}})

#: Named configs (partial trees over the defaults). ``*-perspective`` variants replace the
#: paper's affine map by the project's perspective (virtual-rotation) rectification.
NAMED_CONFIGS: dict[str, dict] = {
    "paper": _PAPER,
    "freihand": _real("freihand", 1000.0),
    "ho3d": _real("ho3d", 500.0),
    "h36m": _H36M,
    "small": _SMALL,
    "tiny": _TINY,
}
NAMED_CONFIGS.update({f"{k}-perspective": _perspective(NAMED_CONFIGS[k])
                      for k in ("paper", "freihand", "ho3d", "h36m")})


# ----------------------------------------------------------------------------- public API

def _set_path(plain: dict, parts: list[str], value: Any, key: str, source: str) -> None:
    """Set ``plain[parts...] = value`` where list items are addressed by index."""
    cls: Any = RunConfig
    node: Any = plain
    where = ""
    for i, p in enumerate(parts):
        last = i == len(parts) - 1
        where = f"{where}.{p}" if where else p
        if isinstance(node, list):
            if not p.isdigit() or int(p) >= len(node):
                _fail(where, source, f"no list item {p!r} (the list has {len(node)})")
            if last:
                node[int(p)] = _check_value(cls, value, where, source)
                return
            node = node[int(p)]
            continue
        fields = _fields(cls)
        if p not in fields:
            _fail(where, source, f"unknown key; {cls.__name__} has {sorted(fields)}")
        tp = fields[p]
        if last:
            node[p] = _check_value(tp, value, where, source)
            return
        sub = _optional_inner(tp) or tp
        if typing.get_origin(sub) is list:
            cls = typing.get_args(sub)[0]
        elif _is_dataclass_type(sub):
            cls = sub
            if node.get(p) is None:
                node[p] = to_dict(sub())
        else:
            _fail(where, source, f"is a value, not a section; cannot set {key!r}")
        node = node[p]


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(config: RunConfig, overrides: list[str] | None,
                    source: str = "--set") -> RunConfig:
    """``section.key=value`` overrides (values parsed as JSON, else kept as strings).

    Raises:
        ValueError: malformed item, unknown key or a value of the wrong type, naming the key.
    """
    plain = to_dict(config)
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"{source}: expected key=value, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ValueError(f"{source}: empty key in {item!r}")
        _set_path(plain, key.split("."), _parse_value(value), key, f"{source} {item!r}")
    return config_from_dict(plain, source)


def config_from_dict(data: dict, source: str = "a dict") -> RunConfig:
    """A :class:`RunConfig` from plain containers (a checkpoint's, a file's), strictly."""
    if not isinstance(data, dict):
        raise ValueError(f"config: expected a table of sections (from {source}), "
                         f"got {type(data).__name__}")
    plain = _merge_node(RunConfig, to_dict(RunConfig()), data, "", source)
    return _construct(RunConfig, plain, "", source)


def _read_file(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            import tomllib

            return tomllib.loads(text)
        return json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"config: cannot read {path}: {exc}") from exc


def load_config(name_or_path: str | os.PathLike | None = None,
                overrides: list[str] | None = None) -> RunConfig:
    """A named config (:data:`NAMED_CONFIGS`) or a JSON/TOML file over the defaults, then
    ``overrides``.

    Raises:
        ValueError: unknown name, unreadable file, unknown key or bad value at any depth,
            naming the key and where it came from.
    """
    if name_or_path is None:
        base = RunConfig()
    elif str(name_or_path) in NAMED_CONFIGS:
        name = str(name_or_path)
        base = config_from_dict(NAMED_CONFIGS[name], f"named config {name!r}")
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise ValueError(f"config: {str(name_or_path)!r} is neither a named config "
                             f"({sorted(NAMED_CONFIGS)}) nor a file")
        base = config_from_dict(_read_file(path), str(path))
    return apply_overrides(base, overrides)
