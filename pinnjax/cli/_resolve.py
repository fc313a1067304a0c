"""Turning a config's ``problem`` section into a Problem instance."""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import pathlib
import sys

from ..config import ConfigError


def _load_file_class(spec: str, base_dir: pathlib.Path | None):
    path_text, _, cls_name = spec.rpartition(":")
    candidates = [pathlib.Path(path_text)]
    if base_dir is not None and not pathlib.Path(path_text).is_absolute():
        candidates.append(base_dir / path_text)
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise ConfigError(f"problem.name: file not found: {path_text}")
    module_name = f"pinnjax_user_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # the user's file raised on import
        raise ConfigError(f"problem.name: importing {path} failed: {type(exc).__name__}: {exc}") from None
    from ..problem import Problem

    classes = {n: c for n, c in vars(module).items() if inspect.isclass(c) and issubclass(c, Problem) and c is not Problem}
    if cls_name not in classes:
        hint = difflib.get_close_matches(cls_name, list(classes), n=1)
        raise ConfigError(
            f"problem.name: {path} has no Problem class {cls_name!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else f"; it defines {sorted(classes) or 'none'}")
        )
    return classes[cls_name], str(path.resolve()) + ":" + cls_name


def _load_module_class(spec: str):
    """``package.module:ClassName``: a problem class in an importable module."""
    import importlib

    module_name, _, cls_name = spec.rpartition(":")
    if module_name == "__main__":
        raise ConfigError(
            f"problem.name: {spec} was defined in a script's __main__: pass the problem object "
            "(pinnjax.load(run_dir, problem=...)), or define it in a file"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the module is missing or raised on import
        raise ConfigError(f"problem.name: importing module {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    cls = getattr(module, cls_name, None)
    from ..problem import Problem

    if not (inspect.isclass(cls) and issubclass(cls, Problem)):
        raise ConfigError(f"problem.name: module {module_name!r} has no Problem class {cls_name!r}")
    return cls


def resolve_problem_class(name: str, base_dir: pathlib.Path | None = None):
    """``(class, canonical name)`` for a shipped name, ``path/to/file.py:ClassName`` or
    ``package.module:ClassName``."""
    if ":" in name and name.split(":")[0].endswith(".py"):
        return _load_file_class(name, base_dir)
    if ":" in name:
        return _load_module_class(name), name
    from ..problems import PROBLEMS

    if name not in PROBLEMS:
        hint = difflib.get_close_matches(name, list(PROBLEMS), n=1)
        raise ConfigError(
            f"problem.name: unknown problem {name!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; shipped problems: {', '.join(sorted(PROBLEMS))}, or give path/to/file.py:ClassName"
        )
    return PROBLEMS[name], name


def make_problem(cls, params: dict):
    """Instantiate with ``params``, naming an unknown parameter."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    for key in params:
        if key not in fields:
            hint = difflib.get_close_matches(key, sorted(fields), n=1)
            raise ConfigError(
                f"unknown key 'problem.params.{key}' for {cls.__name__}"
                + (f" (did you mean 'problem.params.{hint[0]}'?)" if hint else "")
                + f"; its parameters: {', '.join(sorted(fields)) or 'none'}"
            )
    try:
        problem = cls(**params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"problem.params: {cls.__name__}: {exc}") from None
    try:
        problem.check()
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"problem {cls.__name__} is invalid: {exc}") from None
    return problem
