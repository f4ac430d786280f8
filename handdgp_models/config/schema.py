"""Strict walking of the config dataclass tree: plain containers checked against the field
types, merged over defaults and turned into (frozen) section objects.

Every failure is a :class:`ConfigError` (a ``ValueError``) naming the full key and where the
value came from: ``config: data.train.0.depth: ... (from --set 'data.train.0.depth=[1]')``.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from typing import Any

__all__ = ["ConfigError", "check_value", "construct", "fail", "fields_of", "is_dataclass_type",
           "merge_node", "optional_inner", "to_dict"]


class ConfigError(ValueError):
    """A configuration value that does not fit the schema; the message names the key.

    Attributes:
        key: the dotted key at fault, when one is known.
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def fail(key: str, source: str, message: str) -> typing.NoReturn:
    raise ConfigError(f"config: {key}: {message} (from {source})", key)


def fields_of(cls: type) -> dict[str, Any]:
    """Fields of a config dataclass and their resolved types."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def optional_inner(tp: Any) -> Any | None:
    """``X`` for ``X | None``, else None."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0]
    return None


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _check_scalar(tp: Any, value: Any, key: str, source: str) -> Any:
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            fail(key, source, f"expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail(key, source, f"expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(key, source, f"expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            fail(key, source, f"expected a string, got {value!r}")
        return value
    raise TypeError(f"config: unsupported field type {_type_name(tp)} at {key}")


def check_value(tp: Any, value: Any, key: str, source: str) -> Any:
    """``value`` as plain data of type ``tp`` (dataclass nodes become dicts of defaults
    merged with ``value``), or an error naming ``key`` and ``source``."""
    inner = optional_inner(tp)
    if inner is not None:
        return None if value is None else check_value(inner, value, key, source)
    if is_dataclass_type(tp):
        if not isinstance(value, dict):
            fail(key, source, f"expected a table of {tp.__name__} settings, "
                              f"got {type(value).__name__}")
        return merge_node(tp, to_dict(tp()), value, key, source)
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            fail(key, source, f"expected a list, got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                fail(key, source, f"expected {len(args)} values, got {len(value)}")
            return [check_value(a, v, f"{key}.{i}", source)
                    for i, (a, v) in enumerate(zip(args, value, strict=True))]
        item = args[0] if args else Any
        return [check_value(item, v, f"{key}.{i}", source) for i, v in enumerate(value)]
    return _check_scalar(tp, value, key, source)


def merge_node(cls: type, base: dict, update: dict, where: str, source: str) -> dict:
    """``update`` merged into the plain ``base`` of dataclass ``cls``, strictly."""
    fields = fields_of(cls)
    out = dict(base)
    for k, v in update.items():
        key = f"{where}.{k}" if where else str(k)
        if k not in fields:
            fail(key, source, f"unknown key; {cls.__name__} has {sorted(fields)}")
        tp = fields[k]
        sub = optional_inner(tp) or tp
        if is_dataclass_type(sub) and isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_node(sub, out[k], v, key, source)
        else:
            out[k] = check_value(tp, v, key, source)
    return out


def to_dict(obj: Any) -> Any:
    """Plain containers (dicts, lists, numbers, strings) of a config dataclass tree."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return copy.deepcopy(obj)


def _section_error(exc: Exception, key: str, fields: dict, cls: type, source: str) -> ConfigError:
    """A section's own check (``"name: message"``) as an error naming the full key."""
    msg = str(exc)
    name, _, detail = msg.partition(":")
    if name.split(".")[0] in fields:
        full = f"{key}.{name}" if key else name
        return ConfigError(f"config: {full}:{detail} (from {source})", full)
    return ConfigError(f"config: {key or cls.__name__}: {msg} (from {source})", key or None)


def construct(tp: Any, value: Any, key: str, source: str) -> Any:
    """Section objects from checked plain data (their own checks' errors get the key)."""
    inner = optional_inner(tp)
    if inner is not None:
        return None if value is None else construct(inner, value, key, source)
    if is_dataclass_type(tp):
        fields = fields_of(tp)
        kwargs = {k: construct(fields[k], v, f"{key}.{k}" if key else k, source)
                  for k, v in value.items()}
        try:
            return tp(**kwargs)
        except ConfigError:
            raise
        except (ValueError, TypeError) as exc:
            raise _section_error(exc, key, fields, tp, source) from exc
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        args = typing.get_args(tp)
        if origin is tuple:
            return tuple(value)
        return [construct(args[0], v, f"{key}.{i}", source) for i, v in enumerate(value)]
    return value
