"""Typed stage configs loaded from ``params.yaml`` and validated at load time.

Every stage's parameters are a section of ``params.yaml`` and a dataclass in the library
module that uses them. :func:`load_section` checks the section against the dataclass:
unknown keys, missing keys, wrong types and out-of-range values raise :class:`ConfigError`
with the full key path (``params.yaml: pseudo4d.zoom_max: ...``) so the user knows what to edit.

A config class that several sections hold a block of (the optimizer settings of every
training run) names a section of shared defaults in its ``DEFAULTS_SECTION`` class
attribute: a block takes every key it does not set from that section, so the file writes
each shared value once and each block only what differs (:func:`block_data`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from fourreal.running.errors import UserError

T = TypeVar("T")


class ConfigError(UserError, ValueError):
    """A parameter is missing, unknown, of the wrong type or out of range.

    ``key`` is set while the error still needs the key path and value added by
    :func:`from_dict` (an error of a config's ``__post_init__``); the final message names the
    whole key path, the value and what is allowed, on one line."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key, self.message = key, message


def require(ok: bool, key: str, message: str) -> None:
    """Raise :class:`ConfigError` for field ``key`` unless ``ok``; used in configs'
    ``__post_init__``. ``message`` says what is allowed (``"must be >= 1"``); the key path and
    the value are added when the config is loaded from a params file."""
    if not ok:
        raise ConfigError(message, key)


def _lookup(data: Any, dotted: str) -> Any:
    """The value at ``dotted`` (``a.b``) in nested mappings, or ``"?"`` if absent."""
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return "?"
        data = data[part]
    return data


def block_data(cls: type, data: dict, params: dict | None) -> dict:
    """A block of config class ``cls`` as it is loaded: ``data`` over the keys of the shared
    section ``cls.DEFAULTS_SECTION`` of the whole params file ``params`` (the block's own
    keys win); ``data`` itself for a class without one, or without ``params``."""
    section = getattr(cls, "DEFAULTS_SECTION", None)
    shared = params.get(section) if section and params else None
    return {**shared, **data} if isinstance(shared, dict) else data


def _check_type(value: Any, tp: Any, key: str, params: dict | None = None) -> Any:
    """Return ``value`` converted to the annotated type ``tp``, or raise naming ``key``;
    nested config blocks are filled from ``params``' shared sections (:func:`block_data`)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, key, params)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: must not be null")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: must be one of {list(args)}, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__} {value!r}")
        key_tp, value_tp = args if args else (str, Any)
        return {_check_type(k, key_tp, f"{key}"): _check_type(v, value_tp, f"{key}.{k}", params)
                for k, v in value.items()}
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
            items = [_check_type(v, a, f"{key}[{i}]", params) for i, (v, a) in enumerate(zip(value, args))]
        else:
            item_tp = args[0] if args else Any
            items = [_check_type(v, item_tp, f"{key}[{i}]", params) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key, params)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config annotation {tp!r} for {key}")


def from_dict(cls: type[T], data: Any, where: str, params: dict | None = None) -> T:
    """Build dataclass ``cls`` from a mapping, validating keys, types and ranges.

    ``where`` is the key path used in error messages (e.g. ``"params.yaml: videos"``);
    ``params``, the whole params file, fills the blocks of classes with shared defaults
    (:func:`block_data`).
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    data = block_data(cls, data, params)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; known keys are {sorted(fields)}")
    kwargs = {}
    for name, field in fields.items():
        key = f"{where}.{name}"
        if name not in data:
            no_default = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
            if no_default:
                raise ConfigError(f"{key}: missing")
            continue
        kwargs[name] = _check_type(data[name], hints[name], key, params)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        if exc.key is None:
            raise
        value = kwargs[exc.key] if exc.key in kwargs else _lookup(data, exc.key)
        shown = yaml.safe_dump(_plain(value), default_flow_style=True, width=10**6).strip().removesuffix("...").strip()
        raise ConfigError(f"{where}.{exc.key} = {shown}: {exc.message}") from None


def _plain(value: Any) -> Any:
    """``value`` with dataclasses turned into mappings, for showing it as YAML."""
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def read_params(path: str | Path = "params.yaml") -> dict:
    """Read the whole params file as a mapping; a clear error if it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: not found; run from the repository root or pass --params")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML ({getattr(exc, 'problem', None) or exc}{where})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of stage sections")
    return data


def load_section(cls: type[T], section: str, path: str | Path = "params.yaml") -> T:
    """Load and validate section ``section`` of the params file as dataclass ``cls``, its
    blocks filled from the file's shared sections (:func:`block_data`)."""
    params = read_params(path)
    if section not in params:
        raise ConfigError(f"{path}: section '{section}' missing")
    return from_dict(cls, params[section], f"{Path(path).name}: {section}", params)


def to_dict(cfg: Any) -> dict:
    """A config dataclass as a plain mapping (for metadata and logs)."""
    return dataclasses.asdict(cfg)
