"""The library entry points: ``solve`` a problem object, ``load`` a run folder, and the
``Solution`` both return."""

from __future__ import annotations

import dataclasses
import os
import sys
import pathlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .config import RunConfig, config_from_dict, config_to_dict, load_config


class Solution:
    """A trained network with its problem, config and record.

    - ``solution(points)``: the outputs at a batch of points, shape ``(N, n_outputs)``
    - ``solution.jet(points, "u_xx", "lap_u")``: derivatives by name (one array for one name,
      else a dict), through the same engine as training
    - ``.problem`` (unknowns learned), ``.model``, ``.config``, ``.metrics``, ``.history``
      (the rows of ``history.csv``), ``.run_dir`` (None for an in-memory run)
    - ``.save(dir)``: a run folder that ``pinnjax.load`` and the CLI (``eval``, ``predict``,
      ``export``) read
    """

    def __init__(self, state, config: RunConfig, metrics: dict, history: list[dict], run_dir=None):
        self._state = state
        self.config = config
        self.metrics = metrics
        self.history = history
        self.run_dir = None if run_dir is None else pathlib.Path(run_dir)

    @property
    def problem(self):
        return self._state.problem

    @property
    def model(self):
        return self._state.model

    @property
    def dtype(self):
        return jnp.float64 if self.config.model.dtype == "float64" else jnp.float32

    def _points(self, points):
        pts = np.asarray(points, dtype=np.float64)
        dim = self.problem.domain.dim
        if pts.ndim == 1 and dim == 1:
            pts = pts[:, None]
        if pts.ndim != 2 or pts.shape[1] != dim:
            raise ValueError(f"points must have shape (N, {dim}) for {type(self.problem).__name__}, got {pts.shape}")
        return jnp.asarray(pts, self.dtype)

    def __call__(self, points) -> jax.Array:
        from .train import precision

        with precision(self.config.model.dtype, self.config.model.matmul_precision):
            return _predict(self.problem, self.model, self._points(points))

    def jet(self, points, *names):
        """Derivatives by name at a batch of points (``"u"``, ``"u_x"``, ``"u_xy"``,
        ``"lap_u"``, ``"grad_u"``, ...), each with the batch axis first."""
        from .train import precision

        if not names:
            raise ValueError("jet needs at least one derivative name, e.g. solution.jet(points, 'u_xx')")
        with precision(self.config.model.dtype, self.config.model.matmul_precision):
            table = self.problem.namespace.table(names)
            fields = _fields(self.problem, self.model, self._points(points), table)
            out = {name: fields[name] for name in names}
        return out[names[0]] if len(names) == 1 else out

    def save(self, run_dir) -> pathlib.Path:
        """Write a run folder: ``config.yaml``, ``metrics.json``, ``history.csv`` and the
        final state as ``checkpoints/step_XXXXXXXX.eqx``."""
        from .config import dump_config
        from .io import atomic_write_text, checkpoint_path, save_checkpoint, write_csv_rows, write_json
        from .train import make_spec
        from .train._state import structure

        run_dir = pathlib.Path(os.fspath(run_dir))
        step = int(self._state.step)
        ckpt = checkpoint_path(run_dir / "checkpoints", step)
        if ckpt.exists():
            raise FileExistsError(f"{ckpt} exists: save to a new folder")
        run_dir.mkdir(parents=True, exist_ok=True)
        if self.config.march.window is not None:  # a MarchState (pinnjax/train/_march.py)
            meta = {"windows": self.model.count, "window_length": self.model.length}
        else:
            spec = make_spec(self.problem, self.config)
            meta = {"run": {k: self.metrics.get(k) for k in ("train_seconds", "adam_seconds", "lbfgs_seconds", "best_l2re")},
                    "phase": int(self._state.phase), "structure": structure(spec)}
        save_checkpoint(ckpt, self._state, step=step, metadata=meta)
        atomic_write_text(run_dir / "config.yaml", dump_config(self.config))
        write_json(run_dir / "metrics.json", self.metrics)
        if self.history:
            write_csv_rows(run_dir / "history.csv", self.history)
        self.run_dir = run_dir
        return run_dir

    def __repr__(self):
        l2 = self.metrics.get("l2re")
        return (f"Solution({type(self.problem).__name__}, steps={self.metrics.get('steps')}"
                + (f", l2re={l2:.3e}" if l2 is not None else "") + ")")


@eqx.filter_jit
def _predict(problem, model, xs):
    return problem.predict(model, xs)


@eqx.filter_jit
def _fields(problem, model, xs, table):
    return problem.fields(model, xs, table)


# --- solve -----------------------------------------------------------------------------


def _problem_entry(problem) -> dict:
    """The config's ``problem`` section for a problem object: its shipped name, or
    ``file.py:Class`` for a class defined in a file, and its plain constructor arguments."""
    from .problems import PROBLEMS

    cls = type(problem)
    shipped = [name for name, c in PROBLEMS.items() if c is cls]
    if shipped:
        name = shipped[0]
    else:
        path = getattr(sys.modules.get(cls.__module__), "__file__", None)
        top_level = "." not in cls.__module__ and cls.__module__ != "__main__"
        if top_level and path:  # a user's module file (e.g. heat.py): by path, from any folder
            name = f"{os.path.abspath(path)}:{cls.__qualname__}"
        else:  # a package's module by name; a script's __main__ needs load(run_dir, problem=...)
            name = f"{cls.__module__}:{cls.__qualname__}"
    params = {}
    for f in dataclasses.fields(problem):
        value = getattr(problem, f.name, None)
        if f.init and isinstance(value, (bool, int, float, str)) and not isinstance(value, np.ndarray):
            params[f.name] = value
    return {"name": name, "params": params}


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def make_config(problem, config=None, **overrides) -> RunConfig:
    """A validated RunConfig from `config` (None, a RunConfig, a mapping, or a YAML path)
    with `overrides` merged in section by section (``train={"steps": 2000}``, ``seed=1``).
    The ``problem`` section is written from the problem object (see ``load``)."""
    if config is None:
        tree = {}
    elif isinstance(config, RunConfig):
        tree = config_to_dict(config)
    elif isinstance(config, (str, os.PathLike)):
        tree = config_to_dict(load_config_lenient(config))
    elif isinstance(config, dict):
        tree = dict(config)
    else:
        raise TypeError(f"config must be None, a RunConfig, a dict or a YAML path, got {type(config).__name__}")
    tree = _merge(tree, overrides)
    tree["problem"] = _problem_entry(problem)  # the object in hand is the problem
    return config_from_dict(tree)


def load_config_lenient(path) -> RunConfig:
    """A YAML config whose ``problem`` section may be left out (the problem is an object)."""
    from .config._load import _load_tree

    tree = _load_tree(pathlib.Path(os.fspath(path)))
    tree.setdefault("problem", {"name": "<object>"})
    return config_from_dict(tree)


def solve(problem, config=None, *, run_dir=None, progress: bool = False, **overrides) -> Solution:
    """Train `problem` and return its ``Solution``.

    `config`: None (the defaults), a ``RunConfig``, a mapping or a YAML path; `overrides`
    merge into it by section, e.g. ``solve(p, train={"steps": 2000}, model={"width": 32})``.
    Trains in memory unless `run_dir` is given (then that folder is written as by
    ``pinnjax run``). Precision is decided here, from ``model.dtype``, for this call only."""
    from .train import fit_state

    cfg = make_config(problem, config, **overrides)
    metrics, state, history = fit_state(problem, cfg, run_dir, progress=progress)
    return Solution(state, cfg, metrics, history, run_dir)


# --- load ------------------------------------------------------------------------------


def load(run_dir, *, problem=None) -> Solution:
    """The ``Solution`` of a run folder (``pinnjax run``, ``solve(run_dir=...)`` or
    ``Solution.save``): problem and config read from the folder, the newest checkpoint that
    verifies. Pass `problem` for a problem class that is not in a file (e.g. ``__main__``)."""
    import json

    from .cli._resolve import make_problem, resolve_problem_class
    from .train import load_run_state, precision, read_history

    run_dir = pathlib.Path(os.fspath(run_dir))
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{run_dir} has no config.yaml: not a pinnjax run folder")
    cfg = load_config(run_dir / "config.yaml")
    if problem is None:
        cls, _ = resolve_problem_class(cfg.problem.name, run_dir)
        with precision(cfg.model.dtype):
            problem = make_problem(cls, dict(cfg.problem.params))
    state, header = load_run_state(problem, cfg, run_dir)
    path = run_dir / "metrics.json"
    metrics = json.loads(path.read_text()) if path.is_file() else {}
    metrics.setdefault("steps", header.get("step"))
    return Solution(state, cfg, metrics, read_history(run_dir), run_dir)
