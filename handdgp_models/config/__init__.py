"""Run configuration: one typed tree of frozen dataclasses, named configs, files and overrides.

A run is configured once: the defaults (:mod:`.sections`), then a named config
(:data:`NAMED_CONFIGS`) or a JSON/TOML file, then ``section.key=value`` overrides (``--set``;
JSON values; list items by index, ``data.train.0.root=...``), then the command-line options
(:class:`RunOptions`: ``--data-root``, ``--mano``, ...), which become overrides of their own
and go through the same strict path. Every layer is checked as it is applied: an unknown key,
a value of the wrong type or out of range anywhere is a ``ValueError`` naming the key and
where it came from, before anything is built. The sections are frozen: a resolved config is
never patched afterwards.

:func:`to_dict` gives plain containers (stored in checkpoints, loadable with
``torch.load(weights_only=True)``) and :func:`config_from_dict` reads them back with the same
checks. This package imports only the standard library.
"""

from __future__ import annotations

import json
import os
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .named import DEFAULT_CONFIG, NAMED_CONFIGS
from .schema import (
    ConfigError,
    check_value,
    construct,
    fail,
    fields_of,
    is_dataclass_type,
    merge_node,
    optional_inner,
    to_dict,
)
from .sections import (
    BACKBONES,
    BODY_DATASETS,
    CAMERAS,
    DATASETS,
    DECODERS,
    MESH_SOURCES,
    METHODS,
    TIP_ID_SETS,
    VARIANTS,
    BodyConfig,
    DataConfig,
    EvalConfig,
    HandConfig,
    LossWeights,
    NetworkConfig,
    PhotometricConfig,
    PipelineConfig,
    RunConfig,
    SourceConfig,
    TrainConfig,
)

__all__ = ["BACKBONES", "BODY_DATASETS", "CAMERAS", "DATASETS", "DECODERS", "DEFAULT_CONFIG",
           "MESH_SOURCES", "METHODS", "NAMED_CONFIGS", "TIP_ID_SETS", "VARIANTS", "BodyConfig",
           "ConfigError", "DataConfig", "EvalConfig", "HandConfig", "LossWeights", "NetworkConfig",
           "Override", "PhotometricConfig", "PipelineConfig", "RunConfig", "RunOptions",
           "SourceConfig", "TrainConfig", "apply_overrides", "config_from_dict", "load_config",
           "resolve_config", "section_from_dict", "to_dict", "with_overrides"]


@dataclass(frozen=True)
class Override:
    """One setting: ``key`` (dotted, list items by index) = ``value`` (plain data), and where
    it came from (``--set 'train.steps=5'``, ``--mano``), for errors."""

    key: str
    value: Any
    source: str


def _set_path(plain: dict, item: Override) -> None:
    """Set ``plain[parts...] = value`` where list items are addressed by index."""
    cls: Any = RunConfig
    node: Any = plain
    where = ""
    parts = item.key.split(".")
    for i, p in enumerate(parts):
        last = i == len(parts) - 1
        where = f"{where}.{p}" if where else p
        if isinstance(node, list):
            if not p.isdigit() or int(p) >= len(node):
                fail(where, item.source, f"no list item {p!r} (the list has {len(node)})")
            if last:
                node[int(p)] = check_value(cls, item.value, where, item.source)
                return
            node = node[int(p)]
            continue
        fields = fields_of(cls)
        if p not in fields:
            fail(where, item.source, f"unknown key; {cls.__name__} has {sorted(fields)}")
        tp = fields[p]
        if last:
            node[p] = check_value(tp, item.value, where, item.source)
            return
        sub = optional_inner(tp) or tp
        if typing.get_origin(sub) is list:
            cls = typing.get_args(sub)[0]
        elif is_dataclass_type(sub):
            cls = sub
            if node.get(p) is None:
                node[p] = to_dict(sub())
        else:
            fail(where, item.source, f"is a value, not a section; cannot set {item.key!r}")
        node = node[p]


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(items: Iterable[str], source: str = "--set") -> list[Override]:
    """``section.key=value`` strings as :class:`Override` (values parsed as JSON, else kept as
    strings)."""
    out = []
    for item in items:
        if "=" not in item:
            raise ConfigError(f"{source}: expected key=value, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"{source}: empty key in {item!r}")
        out.append(Override(key, _parse_value(value), f"{source} {item!r}"))
    return out


def _culprit(overrides: list[Override], key: str | None) -> str:
    """The source of the last override that set ``key`` or a section holding it."""
    for item in reversed(overrides):
        if key is not None and (key == item.key or key.startswith(item.key + ".")
                                or item.key.startswith(key + ".")):
            return item.source
    return ", ".join(dict.fromkeys(o.source.split(" ", 1)[0] for o in overrides))


def with_overrides(config: RunConfig, overrides: Iterable[Override]) -> RunConfig:
    """A new config: ``config`` with ``overrides`` applied in order, each key and type
    checked as it is set, and the sections' value checks run on the result (an error names
    the key and the override that set it)."""
    overrides = list(overrides)
    if not overrides:
        return config
    plain = to_dict(config)
    for item in overrides:
        _set_path(plain, item)
    try:
        return construct(RunConfig, plain, "", "overrides")
    except ConfigError as exc:
        source = _culprit(overrides, exc.key)
        raise ConfigError(str(exc).replace("(from overrides)", f"(from {source})"),
                          exc.key) from None


def apply_overrides(config: RunConfig, overrides: Sequence[str] | None,
                    source: str = "--set") -> RunConfig:
    """``section.key=value`` overrides (values parsed as JSON, else kept as strings).

    Raises:
        ValueError: malformed item, unknown key or a value of the wrong type, naming the key.
    """
    return with_overrides(config, parse_overrides(overrides or [], source))


#: Keys that configs stored by earlier versions (in checkpoints) may hold and that are dropped
#: when such a config is read: cache locations of the machine that trained, now decided by
#: the one cache policy (``cache_dir``, :mod:`handdgp_models.cache`).
RETIRED_KEYS = (("data", "cache_dir"), ("train", "hierarchy_cache"))


def _without_retired(data: dict) -> dict:
    data = dict(data)
    for section, key in RETIRED_KEYS:
        if isinstance(data.get(section), dict) and key in data[section]:
            data[section] = {k: v for k, v in data[section].items() if k != key}
    return data


def config_from_dict(data: dict, source: str = "a dict", *, stored: bool = False) -> RunConfig:
    """A :class:`RunConfig` from plain containers (a checkpoint's, a file's), strictly.

    Args:
        stored: ``data`` was stored by this project (a checkpoint's config): keys that earlier
            versions wrote and this one retired (:data:`RETIRED_KEYS`) are dropped.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"config: expected a table of sections (from {source}), "
                          f"got {type(data).__name__}")
    if stored:
        data = _without_retired(data)
    plain = merge_node(RunConfig, to_dict(RunConfig()), data, "", source)
    return construct(RunConfig, plain, "", source)


def section_from_dict(cls: type, data: Any, key: str, source: str):
    """One section (e.g. :class:`PipelineConfig`) from plain containers, strictly (its defaults
    under ``data``; errors name ``key`` and ``source``)."""
    return construct(cls, check_value(cls, data, key, source), key, source)


def _read_file(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            import tomllib

            return tomllib.loads(text)
        return json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"config: cannot read {path}: {exc}") from exc


def _base_config(name_or_path: str | os.PathLike | None) -> RunConfig:
    if name_or_path is None:
        return RunConfig()
    if str(name_or_path) in NAMED_CONFIGS:
        name = str(name_or_path)
        return config_from_dict(NAMED_CONFIGS[name], f"named config {name!r}")
    path = Path(name_or_path)
    if not path.is_file():
        raise ConfigError(f"config: {str(name_or_path)!r} is neither a named config "
                          f"({sorted(NAMED_CONFIGS)}) nor a file")
    return config_from_dict(_read_file(path), str(path))


def load_config(name_or_path: str | os.PathLike | None = None,
                overrides: Sequence[str] | None = None) -> RunConfig:
    """A named config (:data:`NAMED_CONFIGS`) or a JSON/TOML file over the defaults, then
    ``overrides``.

    Raises:
        ValueError: unknown name, unreadable file, unknown key or bad value at any depth,
            naming the key and where it came from.
    """
    return apply_overrides(_base_config(name_or_path), overrides)


@dataclass(frozen=True)
class RunOptions:
    """The command line's options that set config keys (None: not given).

    Attributes:
        data_root: ``--data-root``: the root of every real data source.
        mano: ``--mano``: ``hand.mano``.
        smpl: ``--smpl``: ``body.smpl`` (body configs only).
        h36m_regressor: ``--h36m-regressor``: ``body.h36m_regressor`` (body configs only).
        backbone_weights: ``--backbone-weights``: ``model.backbone_weights``.
        test_dataset: ``--dataset``: the evaluation source (its defaults; the synthetic test
            set for ``"synthetic"``) when it differs from the config's.
        test_split: ``--split``: ``data.test.split``.
    """

    data_root: str | None = None
    mano: str | None = None
    smpl: str | None = None
    h36m_regressor: str | None = None
    backbone_weights: str | None = None
    test_dataset: str | None = None
    test_split: str | None = None


def _test_source_overrides(cfg: RunConfig, options: RunOptions) -> list[Override]:
    out = []
    dataset = options.test_dataset
    if dataset is not None and dataset != cfg.data.test.dataset:
        src = (to_dict(RunConfig().data.test) if dataset == "synthetic"
               else {"dataset": dataset})
        out.append(Override("data.test", src, "--dataset"))
    if options.test_split is not None:
        out.append(Override("data.test.split", options.test_split, "--split"))
    return out


def _option_overrides(cfg: RunConfig, options: RunOptions) -> list[Override]:
    """The overrides that ``options`` stand for, given the config they apply to."""
    out = _test_source_overrides(cfg, options)
    if options.data_root is not None:
        cfg = with_overrides(cfg, out)  # the roots of the (possibly new) test source too
        out += [Override(f"{key}.root", options.data_root, "--data-root")
                for key, src in cfg.data.sources() if src.dataset != "synthetic"]
    for flag, key in (("smpl", "body.smpl"), ("h36m_regressor", "body.h36m_regressor")):
        value = getattr(options, flag)
        if value is None:
            continue
        if cfg.body is None:
            raise ConfigError(f"--{flag.replace('_', '-')}: the config has no body section "
                              "(use --config h36m for the full-body variant)")
        out.append(Override(key, value, f"--{flag.replace('_', '-')}"))
    if options.mano is not None:
        out.append(Override("hand.mano", options.mano, "--mano"))
    if options.backbone_weights is not None:
        out.append(Override("model.backbone_weights", options.backbone_weights,
                            "--backbone-weights"))
    return out


def resolve_config(base: str | os.PathLike | RunConfig | None, overrides: Sequence[str] = (),
                   options: RunOptions | None = None) -> RunConfig:
    """The run's configuration, resolved once: ``base`` (a config, a named config or a file;
    None: the defaults), then the ``--set`` ``overrides``, then the command-line ``options``,
    each through the strict path.

    Raises:
        ValueError: naming the key and the option or override it came from.
    """
    cfg = base if isinstance(base, RunConfig) else _base_config(base)
    cfg = apply_overrides(cfg, overrides)
    return with_overrides(cfg, _option_overrides(cfg, options or RunOptions()))
