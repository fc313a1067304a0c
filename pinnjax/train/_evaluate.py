"""Errors against the problem's evaluation set, and re-evaluating a finished run folder."""

from __future__ import annotations

import csv
import json
import math
import os
import pathlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..data import l2_relative_error, max_abs_error
from ..io import read_checkpoint_info, write_json
from ._model import precision
from ._resume import load_newest_state
from ._spec import constrained_problem, make_spec
from ._state import TrainState, load_state

EVAL_SEED = 20240101  # the fixed key of the evaluation points (problems with exact solutions)


class EvalSet(eqx.Module):
    points: jax.Array  # (N, dim)
    values: jax.Array  # (N, k): the first k outputs are compared


def eval_set(problem, n_points: int = 10000, *, dtype=None, reference=None) -> EvalSet | None:
    """The problem's evaluation set: ``problem.reference()`` (or `reference`, if given) when
    there is one, else `n_points` points drawn in the domain with a fixed key and
    ``problem.exact`` there; None if neither."""
    dtype = dtype or jnp.zeros(()).dtype
    ref = reference if reference is not None else problem.reference()
    if ref is not None:
        pts, vals = np.asarray(ref.points), np.asarray(ref.values)
        vals = vals[:, None] if vals.ndim == 1 else vals
        if pts.ndim != 2 or pts.shape[1] != problem.domain.dim:
            raise ValueError(
                f"{type(problem).__name__}.reference() points have shape {pts.shape}; the domain has "
                f"{problem.domain.dim} coordinates"
                + (" (load time-dependent data with time_coord=True)" if getattr(ref, "times", None) is not None else "")
            )
        if vals.shape[0] != pts.shape[0] or vals.shape[1] > len(problem.outputs):
            raise ValueError(
                f"{type(problem).__name__}.reference() values {vals.shape} do not match its points "
                f"{pts.shape} row for row (at most {len(problem.outputs)} columns)"
            )
        return EvalSet(jnp.asarray(pts, dtype), jnp.asarray(vals, dtype))
    if not problem.has_exact:
        return None
    pts = jnp.asarray(problem.domain.sample_interior(jax.random.key(EVAL_SEED), n_points), dtype)
    return EvalSet(pts, jnp.asarray(problem.exact_batch(pts), dtype))


@eqx.filter_jit
def _errors(problem, model, data: EvalSet):
    pred = problem.predict(model, data.points)[:, : data.values.shape[1]].astype(data.values.dtype)
    return l2_relative_error(pred, data.values), max_abs_error(pred, data.values)


def errors(problem, model, data: EvalSet | None) -> dict:
    """``{"l2re", "max_error"}`` on `data` (None values when there is nothing to compare to)."""
    if data is None:
        return {"l2re": None, "max_error": None}
    l2, mx = _errors(problem, model, data)
    return {"l2re": float(l2), "max_error": float(mx)}


def model_dtype(model):
    """The float type of a network's parameters."""
    leaves = jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))
    return leaves[0].dtype if leaves else jnp.zeros(()).dtype


def evaluate(problem, model, *, points: int = 10000, matmul_precision: str = "auto") -> dict:
    """L2 relative error and max error of `model` on the problem's evaluation set (reference
    data, or `points` points with the exact solution); also ``eval_points``.
    `matmul_precision`: as ``model.matmul_precision`` (``auto``: ``highest`` on GPUs)."""
    dtype = model_dtype(model)
    # the evaluation points a run of this dtype uses, with the run's matmul precision
    with precision(jnp.dtype(dtype).name, matmul_precision):
        data = eval_set(problem, points, dtype=dtype)
        out = errors(problem, model, data)
    out["eval_points"] = 0 if data is None else int(data.points.shape[0])
    return out


# --- run folders -----------------------------------------------------------------------


def read_history(run_dir, name: str = "history.csv") -> list[dict]:
    """Rows of ``run_dir/history.csv`` (or another CSV `name` there) with numbers parsed
    (empty cells dropped)."""
    path = pathlib.Path(os.fspath(run_dir)) / name
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="") as f:
        for raw in csv.DictReader(f):
            row = {}
            for k, v in raw.items():
                if v in ("", None):
                    continue
                try:
                    row[k] = int(v) if k == "step" else float(v)
                except ValueError:
                    row[k] = v
            rows.append(row)
    return rows


def load_run_state(problem, cfg, run_dir, *, checkpoint=None) -> tuple[TrainState, dict]:
    """The TrainState in the latest checkpoint of ``run_dir/checkpoints`` (or `checkpoint`)
    and its header. `problem` and `cfg` must be the ones the run was made with."""
    ckpt_dir = pathlib.Path(os.fspath(run_dir)) / "checkpoints"
    if cfg.march.window is not None:  # a marched run's checkpoints hold a MarchState
        from ._march import load_marched_state

        with precision(cfg.model.dtype):
            load = lambda p: load_marched_state(problem, cfg, p)  # noqa: E731
            state, path = (load(checkpoint), checkpoint) if checkpoint is not None else load_newest_state(ckpt_dir, load)[:2]
            if path is None:
                raise FileNotFoundError(f"{run_dir}: no checkpoints in {ckpt_dir}")
            return state, read_checkpoint_info(path)
    problem = constrained_problem(problem, cfg)
    with precision(cfg.model.dtype):
        spec = make_spec(problem, cfg)
        load = lambda p: load_state(p, problem, spec, cfg.model, seed=cfg.seed)  # noqa: E731
        if checkpoint is not None:
            state, path = load(checkpoint), checkpoint
        else:
            state, path, _ = load_newest_state(ckpt_dir, load)
        if path is None:
            raise FileNotFoundError(f"{run_dir}: no checkpoints in {ckpt_dir}")
        return state, read_checkpoint_info(path)


def evaluate_run(problem, cfg, run_dir) -> dict:
    """Recompute a run's metrics (and plots, if ``output.plots``) from its last checkpoint;
    rewrites ``metrics.json`` (other entries kept) and ``plots/``. Returns the metrics."""
    from ._plots import make_plots

    run_dir = pathlib.Path(os.fspath(run_dir))
    state, header = load_run_state(problem, cfg, run_dir)
    out = evaluate(state.problem, state.model, points=cfg.eval.points, matmul_precision=cfg.model.matmul_precision)
    path = run_dir / "metrics.json"
    metrics = json.loads(path.read_text()) if path.is_file() else {}
    metrics.update(out)
    best = metrics.get("best_l2re")
    if out["l2re"] is not None and (best is None or not math.isfinite(best) or out["l2re"] < best):
        metrics["best_l2re"] = out["l2re"]
    metrics["evaluated_step"] = header.get("step")
    write_json(path, metrics)
    if cfg.output.plots:
        with precision(cfg.model.dtype, cfg.model.matmul_precision):
            make_plots(state.problem, state.model, read_history(run_dir), run_dir, eval_points=cfg.eval.points)
    return metrics
