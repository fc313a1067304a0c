"""YAML loading with inheritance and command-line overrides, and strict validation."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import os
import pathlib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from ._schema import RunConfig


class ConfigError(ValueError):
    """An invalid configuration, or one that does not fit its problem or run folder. The
    message is one line naming the file or key; the CLI prints it and exits with status 2."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).splitlines()))


# --- YAML reading --------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and reads `1e-3` as a float.

    (PyYAML follows YAML 1.1, where a float needs a dot: `1e-3` would be a string.)
    """


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor` keys may legitimately be overridden
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, typing.Hashable):
            continue  # construct_mapping reports unhashable keys itself
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _yaml_error(where: str, exc: yaml.YAMLError) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return ConfigError(
            f"{where}, line {mark.line + 1}, column {mark.column + 1}: "
            f"invalid YAML: {problem}"
        )
    return ConfigError(f"{where}: invalid YAML: {problem}")


def _read_yaml(path: pathlib.Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from None
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        raise _yaml_error(str(path), e) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping, got {_type_name(data)}"
        )
    return data


# --- inheritance and overrides -------------------------------------------------------


def _merge(base: dict, child: dict) -> dict:
    """Deep-merges `child` over `base`.

    Mappings merge key by key, except that a mapping whose `type` entry changes
    (e.g. an embedding switching from fourier to periodic) replaces the base one.
    """
    out = copy.deepcopy(base)
    for key, value in child.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict) and _same_type(old, value):
            out[key] = _merge(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _same_type(a: dict, b: dict) -> bool:
    return "type" not in a or "type" not in b or a["type"] == b["type"]


def _load_tree(path: pathlib.Path, chain: tuple[pathlib.Path, ...] = ()) -> dict:
    """Reads a config file and, recursively, the `base:` files it inherits from."""
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise ConfigError(f"config inheritance cycle: {cycle}")
    if chain and not path.is_file():
        raise ConfigError(f"config file not found: {path} (base of {chain[-1]})")
    data = _read_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ConfigError(
            f"{path}: 'base' must be a path to a YAML file, got {_type_name(base)}"
        )
    parent = _load_tree(path.parent / os.path.expanduser(base), (*chain, path))
    return _merge(parent, data)


def _apply_override(tree: dict, text: str) -> None:
    """Applies one `key.sub=value` override in place (value parsed as YAML)."""
    key, sep, raw = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(f"malformed override {text!r} (expected key.sub=value)")
    try:
        value = yaml.load(raw, Loader=_Loader)
    except yaml.YAMLError as e:
        raise _yaml_error(f"override {text!r}", e) from None
    node = tree
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):  # e.g. train.phases.1.steps=500
            node = _list_item(node, part, text)
            continue
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, (dict, list)):
            prefix = ".".join(parts[: i + 1])
            raise ConfigError(
                f"override {text!r}: key '{prefix}' is not a mapping "
                f"(got {_type_name(child)})"
            )
        node = child
    if isinstance(node, list):
        index = _list_index(node, parts[-1], text)
        node[index] = value
    else:
        node[parts[-1]] = value


def _list_index(node: list, part: str, text: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"override {text!r}: {part!r} is not an index of a list of {len(node)}")
    return int(part)


def _list_item(node: list, part: str, text: str):
    item = node[_list_index(node, part, text)]
    if not isinstance(item, (dict, list)):
        raise ConfigError(f"override {text!r}: item {part} is not a mapping (got {_type_name(item)})")
    return item


# --- validation ----------------------------------------------------------------------


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    names = {dict: "mapping", list: "list", str: "str"}
    return names.get(type(value), type(value).__name__)


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _WrongType(ConfigError):
    def __init__(self, message: str, key: str, expected: str):
        super().__init__(message)
        self.key = key
        self.expected = expected


def _type_error(key, expected, value) -> ConfigError:
    return _WrongType(
        f"key '{key}': expected {expected}, got {_type_name(value)} "
        f"({_short_repr(value)})",
        key,
        expected,
    )


def _to_float(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _type_error(key, "float", value)
    try:
        out = float(value)
    except ValueError:
        raise _type_error(key, "float", value) from None
    if not math.isfinite(out):
        raise ConfigError(f"key '{key}' must be a finite number, got {value!r}")
    return out


def _check_range(key: str, value, meta: Mapping) -> None:
    low = meta.get("min")
    if low is not None and value < low:
        if low == 1 and isinstance(value, int):
            raise ConfigError(f"key '{key}' must be positive, got {value}")
        raise ConfigError(f"key '{key}' must be >= {low}, got {value}")
    if "gt" in meta and not value > meta["gt"]:
        raise ConfigError(f"key '{key}' must be > {meta['gt']}, got {value}")
    if "max_lt" in meta and not value < meta["max_lt"]:
        raise ConfigError(f"key '{key}' must be < {meta['max_lt']}, got {value}")


def _convert(key: str, value: Any, tp: Any, meta: Mapping) -> Any:
    """Checks one value against its annotated type and metadata."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):  # `X | None`, `int | str`
        nullable = type(None) in args
        if value is None and nullable:
            return None
        expected = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(key, value, option, meta)
            except _WrongType as e:
                if e.key != key:  # a nested value is wrong, not this one
                    raise
                expected.append(e.expected)
        raise _type_error(key, " or ".join(expected + ["null"] * nullable), value)

    if dataclasses.is_dataclass(tp):
        return _build(tp, {} if value is None else value, key)
    if origin is list:  # a list of ints or floats; a single number stands for a list of one
        items = value if isinstance(value, list) else [value]
        return [_convert(f"{key}[{i}]", v, args[0], meta) for i, v in enumerate(items)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise _type_error(key, "mapping", value)
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise ConfigError(f"key '{key}': keys must be strings, got {bad[0]!r}")
        if args and args[1] is float:  # e.g. loss weights: non-negative floats
            return {
                k: _convert(f"{key}.{k}", v, float, {"min": 0})
                for k, v in value.items()
            }
        return copy.deepcopy(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise _type_error(key, "bool", value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(key, "int", value)
    elif tp is float:
        value = _to_float(key, value)
    elif tp is str:
        if not isinstance(value, str):
            raise _type_error(key, "str", value)
        choices = meta.get("choices")
        if choices and value not in choices:
            raise ConfigError(
                f"key '{key}': invalid value {value!r} "
                f"(allowed: {', '.join(choices)})"
            )
        return value
    else:  # pragma: no cover - schema uses only the types above
        raise TypeError(f"unsupported schema type {tp!r} for '{key}'")
    _check_range(key, value, meta)
    return value


def _is_required(f: dataclasses.Field) -> bool:
    missing = dataclasses.MISSING
    return f.default is missing and f.default_factory is missing


def _build(cls: type, data: Any, prefix: str = "") -> Any:
    """Builds dataclass `cls` from a mapping, rejecting unknown and missing keys."""
    if not isinstance(data, dict):
        raise _type_error(prefix or "<top level>", "mapping", data)
    fields = {f.name: f for f in dataclasses.fields(cls)}

    def dotted(name):
        return f"{prefix}.{name}" if prefix else str(name)

    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = (
                f"did you mean '{dotted(close[0])}'?"
                if close
                else f"valid keys: {', '.join(fields)}"
            )
            raise ConfigError(f"unknown key '{dotted(key)}' ({hint})")
    _check_type_keys(cls, data, dotted)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(dotted(name), data[name], hints[name], f.metadata)
        elif _is_required(f):
            raise ConfigError(f"missing required key '{dotted(name)}'")
    return cls(**kwargs)


def _check_type_keys(cls, data: dict, dotted) -> None:
    """For a config whose keys depend on its ``type`` (``cls.KEYS``): every key given must be
    one the type takes, and the type's required keys must be there."""
    per_type = getattr(cls, "KEYS", None)
    if not per_type:
        return
    kind = data.get("type", cls.DEFAULT_TYPE)
    if kind not in per_type:
        return  # the `type` field's own check reports it
    for key, value in data.items():
        owners = [t for t, keys in per_type.items() if key in keys]
        if owners and kind not in owners and value is not None:
            raise ConfigError(
                f"key '{dotted(key)}' does not apply to {dotted('type')} {kind!r} "
                f"(it is a key of {', '.join(owners)}; {kind} takes: {', '.join(per_type[kind]) or 'no extra keys'})"
            )
    for key in getattr(cls, "REQUIRED", {}).get(kind, ()):
        if data.get(key) is None:
            raise ConfigError(f"{dotted('type')} {kind!r} needs the key '{dotted(key)}'")


def _check_consistency(cfg: RunConfig) -> None:
    s = cfg.sampling
    if s.rad and s.rad_pool < s.interior:
        raise ConfigError(
            f"key 'sampling.rad_pool' ({s.rad_pool}) must be >= sampling.interior "
            f"({s.interior}) when sampling.rad is true"
        )
    # the optimisers live with the trainer
    from ..train._phases import phases_from_config

    try:
        phases_from_config(cfg.train, s)
    except ValueError as e:
        raise ConfigError(str(e)) from None


# --- public API ----------------------------------------------------------------------


def config_from_dict(data: Mapping, overrides: Iterable[str] = ()) -> RunConfig:
    """Validates a plain mapping (after applying `overrides`) into a [`RunConfig`][]."""
    if isinstance(overrides, str):
        overrides = [overrides]
    if not isinstance(data, Mapping):
        raise _type_error("<top level>", "mapping", data)
    tree = copy.deepcopy(dict(data))
    for text in overrides:
        _apply_override(tree, text)
    cfg = _build(RunConfig, tree)
    _check_consistency(cfg)
    return cfg


def load_config(path, overrides: Iterable[str] = ()) -> RunConfig:
    """Loads and validates a YAML run configuration.

    **Arguments:**

    - `path`: the YAML file. A top-level `base: other.yaml` (relative to the file)
        is loaded first and the file deep-merged over it; chains are allowed.
    - `overrides`: `key.sub=value` strings applied after inheritance; values are
        parsed as YAML (`train.steps=2000`, `model.embedding={type: fourier}`).

    **Raises:** [`ConfigError`][] with a one-line message naming the file or key.
    """
    tree = _load_tree(pathlib.Path(os.fspath(path)))
    return config_from_dict(tree, overrides)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _as_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        omit_none = bool(getattr(type(obj), "KEYS", None))  # unset per-type keys
        return {
            f.name: _as_dict(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if not (omit_none and getattr(obj, f.name) is None)
        }
    return _plain(obj)


def config_to_dict(cfg: RunConfig) -> dict:
    """The config as plain nested dicts/lists, ready for `yaml.safe_dump`."""
    return _as_dict(cfg)


def dump_config(cfg: RunConfig) -> str:
    """The config as YAML text that [`load_config`][] reads back to an equal config."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
