"""The host loop: compiled chunks of steps, and between them logging, evaluation,
checkpoints and the progress bar."""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import statistics
import sys
import time

import equinox as eqx
import jax
import numpy as np

from ..config import RunConfig, dump_config
from ..derivatives import chunking
from ..problem import unknowns_filter
from ..io import (
    ProgressBar,
    atomic_write_text,
    checkpoint_path,
    latest_checkpoint,
    prune_checkpoints,
    read_checkpoint_info,
    save_checkpoint,
    write_csv_rows,
    write_json,
)
from ._evaluate import errors, eval_set, read_history
from ._loss import laplacian_variance
from ._mesh import describe, initialize_distributed, local, make_mesh, place, to_host, warn_unsplit
from ._model import precision, resolve_matmul_precision
from ._phases import phase_index
from ._plots import make_plots
from ._resume import load_newest_state
from ._spec import TrainSpec, constrained_problem, learning_rate, make_spec
from ._state import TrainState, init_state, load_state, split_params, structure
from ._step import phase_chunk, start_phase
from .optimisers._gauss_newton import damping_record


class NonFiniteLossError(FloatingPointError):
    """The loss went NaN/inf; training stopped and no checkpoint was written after it."""

    def __init__(self, message, *, step: int, terms: tuple[str, ...]):
        super().__init__(message)
        self.step = step
        self.terms = terms


def chunk_boundaries(spec: TrainSpec, checkpoint_every: int, eval_every: int, start: int, end: int,
                     diagnostics_every: int = 0) -> list[int]:
    """Steps in (start, end] where a chunk ends: multiples of scan_steps, checkpoint_every,
    eval.every and diagnostics.every (when not 0), the ends of the phases and the end. They
    depend only on the step, never on where a run started, so a resumed run takes the same
    chunks as an unbroken one."""
    marks = set(spec.phase_ends)
    for every in (spec.scan_steps, checkpoint_every, eval_every, diagnostics_every or spec.scan_steps):
        marks.update(range(every * (start // every + 1), end + 1, every))
    return sorted(m for m in marks if start < m <= end)


def _unknowns(problem) -> dict:
    """The problem's unknowns by path (small ones as values, others by shape)."""
    out = {}
    trained = eqx.filter(problem, unknowns_filter(problem))
    for path, leaf in jax.tree_util.tree_leaves_with_path(trained):
        if eqx.is_inexact_array(leaf):
            name = jax.tree_util.keystr(path).lstrip(".")
            out[name] = np.asarray(leaf).tolist() if leaf.size <= 64 else f"array{tuple(leaf.shape)}"
    return out


def _check_finite_params(state: TrainState, step: int):
    params, _ = split_params(state)
    for leaf in jax.tree.leaves(params):
        if not np.all(np.isfinite(np.asarray(leaf))):
            raise NonFiniteLossError(f"parameters are not finite at step {step}", step=step, terms=())


def _git_revision() -> str | None:
    import subprocess

    here = pathlib.Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def run_info() -> dict:
    """Versions, machine and revision recorded in every run's metrics."""
    import platform

    import equinox
    import jaxlib
    import optax

    from .. import __version__

    return {
        "git_revision": _git_revision(),
        "versions": {
            "pinnjax": __version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "equinox": equinox.__version__, "optax": optax.__version__, "python": platform.python_version(),
            "backend": jax.default_backend(),
        },
        "device": str(jax.devices()[0]),
        "device_kind": jax.devices()[0].device_kind,  # the model, e.g. "NVIDIA H100 80GB HBM3"
        "platform": platform.platform(),
        "x64": bool(jax.config.jax_enable_x64),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),  # as set when the run started (pinnjax/_cpu_flags.py)
    }


def _make_bar(progress, total, start):
    if progress is None:
        progress = bool(getattr(sys.stderr, "isatty", lambda: False)())
    return ProgressBar(total, start_step=start, desc="train") if progress else None


def fit(problem, cfg: RunConfig, run_dir, *, resume: bool = False, progress: bool | None = None) -> dict:
    """Train `problem` as `cfg` says and write the run folder `run_dir` (None: train in
    memory and write nothing):

    - ``checkpoints/step_XXXXXXXX.eqx``: the whole TrainState, every ``train.checkpoint_every``
      steps and at the end (the newest ``output.keep_checkpoints`` are kept)
    - ``history.csv``: every ``train.log_every`` steps (and where evaluated): step, phase,
      loss, ``loss_<term>``, ``weight_<term>`` (gradnorm), l2re (when evaluated), lr and
      ``elapsed`` (training seconds: compilation and evaluation excluded). A row's losses are
      those of the step that ended there, on that step's batch; ``phase`` names the optimiser.
    - ``metrics.json`` (also returned) and, with ``output.plots``, ``plots/*.png``
    - ``config.yaml``: the resolved config

    The phases of ``train.phases`` run in order (without it: Adam for ``train.steps`` steps,
    then L-BFGS for ``train.lbfgs_steps`` on a batch drawn once at the switch). `resume`
    continues from the newest checkpoint in ``run_dir/checkpoints`` that verifies (from
    scratch if there is none; a corrupted newer one is named on stderr and renamed
    ``*.eqx.corrupt``) to the configured number of steps, which may be larger
    than before; the history is kept. Without `resume`, a folder that already holds
    checkpoints is an error. `progress`: a progress bar on stderr (None: only when stderr is a
    terminal).

    Raises ``NonFiniteLossError`` naming the step, the phase and the term(s) when the loss
    goes NaN/inf in any phase; checkpoints written before it are left untouched.

    The run works inside ``precision(model.dtype)``: 64-bit JAX on for a float64 run, off for
    a float32 one, while it runs; the caller's JAX settings are left as they were.
    """
    return fit_state(problem, cfg, run_dir, resume=resume, progress=progress)[0]


def fit_state(problem, cfg: RunConfig, run_dir=None, *, resume: bool = False, progress: bool | None = None):
    """`fit`, returning ``(metrics, final TrainState, history rows)`` (the state's arrays on
    this process's first device).

    With several devices (``distributed.devices``) or processes (``distributed.num_processes``)
    the points are split over a 1-D device mesh (``_mesh.py``); only process 0 writes the
    run folder."""
    initialize_distributed(cfg.distributed)  # before anything starts a backend in a multi-process run
    with precision(cfg.model.dtype, cfg.model.matmul_precision), chunking(cfg.derivatives.chunk):
        if cfg.march.window is not None:  # window by window: _march.py
            from ._march import march

            return march(problem, cfg, run_dir, resume=resume, progress=progress)
        return _fit(problem, cfg, run_dir, resume, progress)


def _fit(problem, cfg, run_dir, resume, progress):
    from ..diagnostics._diagnose import curvature_row, uncertainty  # diagnostics builds on train
    from ..diagnostics._plots import plot_extremes, plot_uncertainty

    problem.check()
    problem = constrained_problem(problem, cfg)
    mesh = make_mesh(cfg.distributed)
    spec = dataclasses.replace(make_spec(problem, cfg), mesh=mesh,
                               matmul_precision=resolve_matmul_precision(cfg.model.matmul_precision))
    if run_dir is not None:
        run_dir = pathlib.Path(os.fspath(run_dir))
    ckpt_dir = None if run_dir is None else run_dir / "checkpoints"
    writes = run_dir is not None and jax.process_index() == 0  # one process writes the folder
    t, ev = cfg.train, cfg.eval

    run = {"train_seconds": 0.0, "phase_seconds": [0.0] * len(spec.phases), "best_l2re": None}
    history: list[dict] = []
    curvature: list[dict] = []  # diagnostics.every rows
    latest = None if ckpt_dir is None else latest_checkpoint(ckpt_dir)
    if latest is not None and not resume:
        raise FileExistsError(
            f"{run_dir} already holds checkpoints (latest {latest.name}): pass resume=True to "
            "continue it, or use a new run folder"
        )
    state, latest, skipped = None, None, []
    if ckpt_dir is not None:
        state, latest, skipped = load_newest_state(
            ckpt_dir, lambda path: load_state(path, problem, spec, cfg.model, seed=cfg.seed)
        )
    if latest is not None:
        run.update(read_checkpoint_info(latest)["metadata"].get("run", {}))
        secs = list(run.get("phase_seconds", []))[: len(spec.phases)]
        run["phase_seconds"] = secs + [0.0] * (len(spec.phases) - len(secs))  # phases may have changed
        history = [r for r in read_history(run_dir) if r["step"] <= int(state.step)]
        curvature = [r for r in read_history(run_dir, "diagnostics.csv") if r["step"] <= int(state.step)]
    else:
        state = init_state(problem, spec, cfg.model, seed=cfg.seed)
    warn_unsplit(mesh, spec, state)
    state = place(mesh, state)
    data = eval_set(problem, ev.points, dtype=spec.jnp_dtype)  # may raise: before any write
    if writes:
        run_dir.mkdir(parents=True, exist_ok=True)
        for path, _ in skipped:  # set aside, so later checkpoints at those steps are not shadowed
            path.replace(path.with_name(path.name + ".corrupt"))
        atomic_write_text(run_dir / "config.yaml", dump_config(cfg))

    step = int(state.step)
    bar = _make_bar(progress, spec.total_steps, step) if jax.process_index() == 0 else None
    compile_seconds, rates, compiled = 0.0, [[] for _ in spec.phases], set()
    last_eval = {}
    try:
        every = cfg.diagnostics.every
        for end in chunk_boundaries(spec, t.checkpoint_every, ev.every, step, spec.total_steps, every):
            index = phase_index(spec.phases, step)
            phase = spec.phases[index].name
            if int(state.phase) != index:  # a new phase (or a resumed run whose phase changed)
                t0 = time.perf_counter()
                state = jax.block_until_ready(start_phase(spec, index, state))
                compile_seconds += time.perf_counter() - t0
            if index not in compiled:
                # zero steps: compiles (or finds the cached executable) and changes nothing
                t0 = time.perf_counter()
                jax.block_until_ready(phase_chunk(spec, index, state, np.asarray(0, np.int32)))
                compile_seconds += time.perf_counter() - t0
                compiled.add(index)

            n = end - step
            t0 = time.perf_counter()
            new_state, out = phase_chunk(spec, index, state, np.asarray(n, np.int32))
            totals, terms, weights = (np.asarray(a)[:n] for a in jax.block_until_ready(out))
            dt = time.perf_counter() - t0
            _raise_if_not_finite(spec, totals, terms, step, phase, ckpt_dir)
            state = new_state

            evaluate_now = end % ev.every == 0 or end == spec.total_steps
            elapsed0 = run["train_seconds"]
            for j in range(n):
                s = step + j + 1
                if s % t.log_every == 0 or s in spec.phase_ends or (s == end and evaluate_now):
                    history.append(_row(spec, s, phase, totals[j], terms[j], weights[j], elapsed0 + dt * (j + 1) / n))
            if history and history[-1]["step"] == end:  # LM / ENGD: the damping and rejected steps
                history[-1].update(damping_record(state.opt_state))
            run["train_seconds"] += dt
            run["phase_seconds"][index] += dt
            if n == spec.scan_steps:
                rates[index].append(n / dt)
            step = end

            if spec.laplacian is not None and spec.interior_index is not None and history and history[-1]["step"] == end:
                history[-1]["laplacian_variance"] = float(laplacian_variance(
                    spec, state.problem, state.model, state.points, jax.random.fold_in(jax.random.fold_in(state.key, end), 0x7A5)))
            if evaluate_now:
                last_eval = errors(*local((state.problem, state.model)), data)
                if last_eval["l2re"] is not None:
                    history[-1]["l2re"] = last_eval["l2re"]
                    best = run["best_l2re"]
                    run["best_l2re"] = last_eval["l2re"] if best is None else min(best, last_eval["l2re"])
            if writes:
                write_csv_rows(run_dir / "history.csv", history)
            if every and end % every == 0:
                curvature.append(curvature_row(spec, state, cfg.diagnostics))
                if writes:
                    write_csv_rows(run_dir / "diagnostics.csv", curvature)

            if run_dir is not None and (end % t.checkpoint_every == 0 or end == spec.total_steps):
                _check_finite_params(state, end)
                saved = to_host(state)  # every process takes part in gathering the points
                if writes:
                    meta = {"run": run, "phase": int(saved.phase), "structure": structure(spec)}
                    save_checkpoint(checkpoint_path(ckpt_dir, end), saved, step=end, metadata=meta)
                    prune_checkpoints(ckpt_dir, keep=cfg.output.keep_checkpoints)

            if bar is not None:
                shown = {"loss": float(totals[-1])}
                shown.update({nm: float(v) for nm, v in zip(spec.term_names, terms[-1]) if np.isfinite(v)})
                if last_eval.get("l2re") is not None:
                    shown["l2re"] = last_eval["l2re"]
                bar.update(end, **shown)
    finally:
        if bar is not None:
            bar.close()

    state = to_host(state)
    if not last_eval:  # nothing ran (already finished): evaluate the loaded state
        last_eval = errors(state.problem, state.model, data)
    metrics = _metrics(spec, state, history, run, last_eval, compile_seconds, rates, cfg, data)
    if curvature:
        metrics["curvature"] = curvature[-1]
    unc = uncertainty(spec, state, cfg)
    if unc is not None:
        metrics["uncertainty"] = unc
    if writes:
        write_json(run_dir / "metrics.json", metrics)
        if cfg.output.plots:
            make_plots(state.problem, state.model, history, run_dir, eval_points=ev.points)
            if unc is not None:
                plot_uncertainty(unc, run_dir / "plots" / "unknowns.png")
            if curvature:
                plot_extremes(curvature, run_dir / "plots" / "curvature_history.png")
    return metrics, state, history


def _row(spec, step, phase, total, terms, weights, elapsed) -> dict:
    """One history.csv row (term losses the L-BFGS phase did not compute are left out)."""
    row = {"step": step, "phase": phase, "loss": float(total)}
    row.update({f"loss_{nm}": float(v) for nm, v in zip(spec.term_names, terms) if np.isfinite(v)})
    if spec.balancing != "none":
        row.update({f"weight_{nm}": float(w) for nm, w in zip(spec.term_names, weights)})
    lr = learning_rate(spec, step - 1)
    if math.isfinite(lr):
        row["lr"] = lr
    row["elapsed"] = elapsed
    return row


def _raise_if_not_finite(spec, totals, terms, start, phase, ckpt_dir):
    bad = np.flatnonzero(~np.isfinite(totals))
    if not bad.size:
        return
    i = int(bad[0])
    names = tuple(nm for nm, v in zip(spec.term_names, terms[i]) if not np.isfinite(v)) or spec.term_names
    vals = ", ".join(f"{nm}={v:.3g}" for nm, v in zip(spec.term_names, terms[i]))
    good = None if ckpt_dir is None else latest_checkpoint(ckpt_dir)
    raise NonFiniteLossError(
        f"loss is not finite at step {start + i + 1} ({phase}): term(s) {', '.join(names)} went "
        f"non-finite ({vals}); training stopped, "
        + (f"the last good checkpoint is {good}" if good else "no checkpoint was written"),
        step=start + i + 1,
        terms=names,
    )


def _metrics(spec, state, history, run, ev, compile_seconds, rates, cfg, data) -> dict:
    last = history[-1] if history else {}
    phases = []
    for i, ph in enumerate(spec.phases):
        done = min(max(int(state.step) - ph.start, 0), ph.steps)
        secs = run["phase_seconds"][i] if i < len(run["phase_seconds"]) else 0.0
        rate = statistics.median(rates[i]) if rates[i] else (done / secs if secs > 0 and done else None)
        phases.append({"optimiser": ph.name, "steps": done, "seconds": secs, "rate": rate})

    def total(key, adam):  # the first phase vs the later ones (the Adam -> L-BFGS shorthand)
        picked = phases[:1] if adam else phases[1:]
        return sum(p[key] for p in picked)

    def rate(adam):
        picked = [p for p in (phases[:1] if adam else phases[1:]) if p["steps"]]
        return picked[-1]["rate"] if picked else None

    m = {
        "l2re": ev.get("l2re"),
        "best_l2re": run["best_l2re"],
        "max_error": ev.get("max_error"),
        "eval_points": 0 if data is None else int(data.points.shape[0]),
        "steps": int(state.step),
        "adam_steps": total("steps", True),
        "lbfgs_steps": total("steps", False),
        "train_seconds": run["train_seconds"],
        "adam_seconds": total("seconds", True),
        "lbfgs_seconds": total("seconds", False),
        "compile_seconds": compile_seconds,
        "steps_per_second": rate(True),
        "lbfgs_steps_per_second": rate(False),
        "phases": [{"optimiser": p["optimiser"], "steps": p["steps"]} for p in phases],
        "phase_seconds": [p["seconds"] for p in phases],
        "phase_steps_per_second": [p["rate"] for p in phases],
        "final_loss": last.get("loss"),
    }
    for nm in spec.term_names:
        m[f"loss_{nm}"] = last.get(f"loss_{nm}")
    w = np.asarray(state.weights) * np.asarray(spec.fixed_weights)
    m["weights"] = {nm: float(v) for nm, v in zip(spec.term_names, w)}
    unknowns = _unknowns(state.problem)
    if unknowns:
        m["unknowns"] = unknowns
    m["dtype"] = spec.dtype
    m["seed"] = cfg.seed
    m.update(run_info())
    m["matmul_precision"] = spec.matmul_precision or "default"
    m["mesh"] = describe(spec.mesh)
    return m
