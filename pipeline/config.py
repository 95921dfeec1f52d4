"""Strict loading of nested plain dicts into frozen dataclasses.

Every component owns a frozen dataclass of its parameters beside its code, with no defaults: every
value lives once, in params.yaml. This module fills one from a dict, refusing unknown, missing and
wrong-typed keys with the dotted key named; `load_sections` reads only the sections a stage uses,
and `apply_overrides` is the one way a variant (a round, an ablation, a method variant) changes a
section. The composition of the whole file lives in `pipeline.params` (the parameter gate).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from pipeline.errors import ConfigError

T = TypeVar("T")

# A mapping of overrides of some section, checked when applied (`apply_overrides`)
Overrides = dict[str, Any]


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    if origin is tuple:
        return f"list of {_type_name(get_args(tp)[0])}"
    if origin is dict:
        return f"mapping of {_type_name(get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Return `value` as type `tp` or raise ConfigError naming `key`."""
    if tp is Any:
        return value
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(exc)
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{key}: must be one of {_type_name(tp)}, got {value!r}")
        return value
    if origin is tuple:
        (item_tp, *_rest) = get_args(tp)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list of {_type_name(item_tp)}, got {value!r}")
        return tuple(_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        key_tp, val_tp = get_args(tp)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {
            _coerce(k, key_tp, f"{key}.{k}"): _coerce(v, val_tp, f"{key}.{k}")
            for k, v in value.items()
        }
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):  # YAML's .nan/.inf: every check written `x <= 0` passes NaN
            raise ConfigError(f"{key}: must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported parameter type {tp!r} at {key}")


def from_dict(cls: type[T], data: Any, prefix: str = "") -> T:
    """Build dataclass `cls` from `data`, strictly. `prefix` is the dotted key of `data`."""
    where = prefix or "top level"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        allowed = ", ".join(sorted(fields))
        dotted = ".".join(filter(None, [prefix, str(unknown[0])]))
        raise ConfigError(f"{dotted}: unknown key; allowed here: {allowed}")
    values = {}
    for name, field in fields.items():
        dotted = f"{prefix}.{name}" if prefix else name
        if name in data:
            values[name] = _coerce(data[name], hints[name], dotted)
        elif (
            field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING  # type: ignore[misc]
        ):
            raise ConfigError(f"{dotted}: missing key ({_type_name(hints[name])})")
    obj = cls(**values)
    check = getattr(obj, "validate", None)
    if check is not None:
        try:
            check()
        except ConfigError as exc:
            raise ConfigError(f"{prefix}.{exc}" if prefix else str(exc)) from None
    return obj


def to_dict(obj: Any) -> Any:
    """Plain-dict form of a (nested) config dataclass, for logging and checkpoints."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


class Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading exponent floats as YAML 1.2 does and DVC writes them:
    `1e-08` (no dot) is a number, where YAML 1.1 reads a string (`dvc exp run -S` writes it)."""


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(path: Path) -> dict:
    """Read a YAML mapping, turning every read/parse problem into a one-line ConfigError."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.load(text, Loader=Loader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{where}: malformed YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return data


def section(data: Mapping, dotted: str, where: str = "params") -> Any:
    """The value at dotted key `dotted` of a nested mapping (ConfigError when absent)."""
    node: Any = data
    for i, part in enumerate(dotted.split(".")):
        if not isinstance(node, Mapping) or part not in node:
            missing = ".".join(dotted.split(".")[: i + 1])
            raise ConfigError(f"{missing}: missing section in {where}")
        node = node[part]
    return node


def load_sections(path: Path, sections: Mapping[str, Any]) -> dict[str, Any]:
    """Read `path` once and build each requested section {dotted key: type} strictly (a
    dataclass, or a plain type such as a Literal for a one-value section).

    A stage reads only its sections: a typo elsewhere is the parameter gate's to refuse.
    Errors name the file and the dotted key."""
    data = read_yaml(path)
    try:
        return {key: _coerce(section(data, key), tp, key) for key, tp in sections.items()}
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def apply_overrides(cls: type[T], base: Any, overrides: Mapping | None, prefix: str) -> T:
    """`base` (a `cls`) with a mapping of overrides deep-merged in, rebuilt strictly: an unknown
    or wrong-typed override is refused naming `prefix` and its dotted key."""
    if not overrides:
        return base
    return from_dict(cls, merge(to_dict(base), overrides), prefix)


def variant(
    cls: type[T],
    base: Any,
    variants: Mapping[str, Any],
    name: str,
    key: str,
    section: str | None = None,
) -> T:
    """Variant `name` of the method at params key `key`: `base` (a `cls`) with the overrides
    `variants[name]` applied (`apply_overrides`), or with its `section` of them when a variant
    overrides several sections (AC-GAN's model, train, sample); a name not listed is refused.
    Every method with variants (AC-GAN, Wang & Torr, Attentive-STIC) resolves them here."""
    if name not in variants:
        known = ", ".join(variants) or "none"
        raise ConfigError(f"{key}.variants.{name}: not a listed variant ({known})")
    overrides, prefix = variants[name], f"{key}.variants.{name}"
    if section is not None:
        overrides, prefix = getattr(overrides, section), f"{prefix}.{section}"
    return apply_overrides(cls, base, overrides, prefix)


def merge(base: dict, override: Mapping) -> dict:
    """Deep-merge `override` into a copy of `base` (mappings merge, other values replace)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
