"""Typed configuration: dataclass defaults, TOML files and ``--set`` overrides.

Each task defines one dataclass whose fields carry their default and a help
text (``field(metadata={"help": ...})``). A configuration is resolved in this
order: the dataclass defaults, then a TOML file, then ``--set key=value``
overrides. Unknown keys and values of the wrong type raise
:class:`~lstmtext.errors.ConfigError` naming the key.

Keys whose best value depends on the training data are annotated
``int | Auto`` (or ``float | Auto``, ``str | Auto``) and default to
``"auto"``; the task replaces every ``"auto"`` with a concrete value once it
has read the data (:mod:`lstmtext.training.auto`), so the config saved in a
bundle holds no ``"auto"``.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

from lstmtext.errors import ConfigError, DataError

C = TypeVar("C")

AUTO = "auto"
# A key that may be left to the data: ``vocab_size: int | Auto = option(AUTO, ...)``.
Auto = Literal["auto"]


def is_auto(value: Any) -> bool:
    """Whether ``value`` is the ``"auto"`` placeholder."""
    return isinstance(value, str) and value == AUTO


def auto_keys(config: Any) -> list[str]:
    """The keys of a config dataclass instance left to the data (annotated ``| Auto``, set to ``"auto"``).

    A plain ``str`` key whose own value happens to be ``"auto"`` (the tagger's
    ``scheme``: detect it) is not one of them.
    """
    types = _field_types(type(config))
    return [f.name for f in dataclasses.fields(config)
            if is_auto(getattr(config, f.name)) and _allows_auto(types[f.name])]


def require_concrete(config: Any) -> None:
    """Raise if ``config`` still has auto keys (a network cannot be built from ``"auto"``).

    Raises:
        ConfigError: naming the first auto key.
    """
    keys = auto_keys(config) if dataclasses.is_dataclass(config) else []
    if keys:
        raise ConfigError("is still 'auto': resolve it from training data first (lstmtext.training.auto."
                          "resolve, or auto.fill for a config built in code)", keys[0])


def _allows_auto(annotation: Any) -> bool:
    return any(typing.get_origin(a) is Literal for a in typing.get_args(annotation))


def option(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    """A dataclass field with a help text and optional allowed values."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(key: str, value: Any, annotation: Any, from_string: bool) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(annotation) if a is not type(None) and typing.get_origin(a) is not Literal]
        if _allows_auto(annotation):
            if isinstance(value, str) and value.strip().lower() == AUTO:
                return AUTO
            try:
                return _coerce(key, value, args[0], from_string)
            except ConfigError as exc:
                message = str(exc).split(": ", 1)[-1].replace(", got", " or 'auto', got", 1)
                raise ConfigError(message, key) from None
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
            left_to_data = is_auto(value) and _allows_auto(_field_types(cls)[key])
            if choices and value not in choices and not left_to_data:
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
        if _allows_auto(t):
            plain = [a for a in typing.get_args(t) if typing.get_origin(a) is not Literal]
            tname = f"{plain[0].__name__} or auto"
        else:
            tname = getattr(t, "__name__", str(t).replace("typing.", ""))
        rows.append((f.name, tname, f.default, f.metadata.get("help", "")))
    return rows
