"""Typed configuration: dataclass defaults, TOML files and ``--set`` overrides.

Each task defines one dataclass whose fields carry their default and a help
text (``field(metadata={"help": ...})``). A configuration is resolved in this
order: the dataclass defaults, then a TOML file, then ``--set key=value``
overrides. Unknown keys and values of the wrong type raise
:class:`~lstmtext.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path
from typing import Any, TypeVar

from lstmtext.errors import ConfigError, DataError

C = TypeVar("C")


def option(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    """A dataclass field with a help text and optional allowed values."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(key: str, value: Any, annotation: Any, from_string: bool) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None or (from_string and str(value).lower() in ("none", "null", "")):
            return None
        return _coerce(key, value, args[0], from_string)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if from_string and str(value).lower() in ("true", "1", "yes", "on"):
            return True
        if from_string and str(value).lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"expected true or false, got {value!r}", key)
    if annotation is int:
        if isinstance(value, bool):
            raise ConfigError(f"expected an integer, got {value!r}", key)
        if isinstance(value, int):
            return value
        if from_string:
            try:
                return int(str(value))
            except ValueError:
                pass
        raise ConfigError(f"expected an integer, got {value!r}", key)
    if annotation is float:
        if isinstance(value, bool):
            raise ConfigError(f"expected a number, got {value!r}", key)
        if isinstance(value, (int, float)):
            return float(value)
        if from_string:
            try:
                return float(str(value))
            except ValueError:
                pass
        raise ConfigError(f"expected a number, got {value!r}", key)
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"expected a string, got {value!r}", key)
    raise ConfigError(f"unsupported type {annotation!r}", key)


def _check_choices(cls: type, key: str, value: Any) -> None:
    for f in dataclasses.fields(cls):
        if f.name == key:
            choices = f.metadata.get("choices")
            if choices and value not in choices:
                raise ConfigError(f"must be one of {', '.join(choices)}; got {value!r}", key)


def from_dict(cls: type[C], values: dict[str, Any], base: C | None = None, from_string: bool = False) -> C:
    """Build a config of type ``cls`` from ``values`` on top of ``base``."""
    types = _field_types(cls)
    current = dataclasses.asdict(base) if base is not None else {}
    for key, value in values.items():
        if key not in types:
            raise ConfigError(f"unknown key (known keys: {', '.join(sorted(types))})", key)
        coerced = _coerce(key, value, types[key], from_string)
        _check_choices(cls, key, coerced)
        current[key] = coerced
    config = cls(**current)
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate()
    return config


def parse_sets(sets: list[str] | None) -> dict[str, str]:
    """Parse ``["key=value", ...]`` into a dict; reject malformed items."""
    out: dict[str, str] = {}
    for item in sets or []:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        out[key] = value.strip()
    return out


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file into a flat dict (a single ``[section]`` table is flattened)."""
    p = Path(path)
    if not p.is_file():
        raise DataError("config file not found", p)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"invalid TOML: {exc}", p) from None
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def resolve(
    cls: type[C],
    config_file: str | Path | None = None,
    sets: list[str] | None = None,
    extra: dict[str, Any] | None = None,
    base: C | None = None,
) -> C:
    """Resolve a config: defaults (or ``base``), then TOML, then ``--set``, then ``extra``."""
    config = base if base is not None else from_dict(cls, {})
    if config_file is not None:
        config = from_dict(cls, load_toml(config_file), base=config)
    if sets:
        config = from_dict(cls, parse_sets(sets), base=config, from_string=True)
    if extra:
        config = from_dict(cls, {k: v for k, v in extra.items() if v is not None}, base=config)
    return config


def describe(cls: type) -> list[tuple[str, str, Any, str]]:
    """``(key, type, default, help)`` for each field: used by ``lstmtext config``."""
    types = _field_types(cls)
    rows = []
    for f in dataclasses.fields(cls):
        t = types[f.name]
        tname = getattr(t, "__name__", str(t).replace("typing.", ""))
        rows.append((f.name, tname, f.default, f.metadata.get("help", "")))
    return rows
