"""Time marching: a long time interval in windows of length ``h``, one network per window,
each starting exactly where the one before it ended (``march.window`` in the config).

One network over a long interval has to represent every swing of the solution at once, and
a residual loss lets it settle on a wrong trajectory early (for ``u_t = f(u)`` with
``f(0) = 0``, ``u = 0`` satisfies the PDE and the boundary, and only a soft initial condition
stands against it). Marching trains window ``k`` (``t_k <= t <= t_k + h``, ``s = t - t_k``) on

    u(x, t) = u_k(x) + (s / h) B(x) N_k(x, s)

where ``u_k`` is where the windows before it left the solution (``u_0``: the initial data)
and ``B`` is the harmonic conjunction of the distances to the Dirichlet parts of the spatial
boundary (`pinnjax/problem/_exact_dirichlet.py`). So the initial data and constant Dirichlet
data hold exactly, and the only loss is the PDE residual. ``N_k`` starts from ``N_{k-1}``.

``u_k`` is a chain of all earlier windows, too costly to differentiate at every step, so the
collocation points' spatial coordinates are fixed for the whole run (a regular grid on a
box, a low-discrepancy set otherwise) and ``u_k`` is carried there as data: its value and
every spatial derivative the residual reads (the jet of the request's closure, with every
column that involves time set to zero: ``u_k`` does not depend on t), updated after each
window by the jet of ``B N_k`` at ``s = h``. Only the times are drawn afresh each step.
Because the points are fixed, each window is also scored on a held-out set of spatial points
drawn once (carried the same way): its mean squared residual there is the number that says
whether the window generalises between the grid points, and it needs no reference solution.

Each window runs Adam (``march.first_steps`` for the first, ``march.steps`` for the others,
at ``train.lr``), then L-BFGS (``march.lbfgs_steps``) on one fixed draw of times. A
checkpoint is written after every window; ``resume`` continues after the last one written.
"""

from __future__ import annotations

import math
import pathlib
import sys
import time
import types
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..derivatives import Jet, Request, closure, jet_add, jet_autodiff, jet_batch, jet_mul, restrict
from ..geometry import Box, SpaceTime, TimeInterval
from ..io import ProgressBar, atomic_write_text, checkpoint_path, prune_checkpoints, save_checkpoint
from ..io import write_csv_rows, write_json
from ..nn._filter import trainable_filter
from ..problem import Dirichlet, Initial, exact_dirichlet, unknowns_filter
from ..problem._conditions import _value_at
from ..problem._names import Fields
from ._evaluate import errors, eval_set, read_history
from ._model import build_model


class MarchError(ValueError):
    """A problem or config that time marching cannot take (named in the message)."""


# --- the solution of a marched run -----------------------------------------------------------


class MarchedModel(eqx.Module):
    """``u(x, t)`` of a marched run, callable on one point ``(x..., t)`` -> ``(n_outputs,)``:
    window ``k = floor((t - t0) / h)`` (clipped to the windows there are) gives
    ``u = u0(x) + B(x) (sum_{j<k} N_j(x, h) + (s / h) N_k(x, s))``. The earlier windows are
    summed with a scan, so a point costs one network call per window before its own."""

    template: eqx.Module  # one window network: the structure the stacked arrays fill
    stacked: object  # every window's arrays, leading axis = window
    initial: Callable = eqx.field(static=True)  # point -> initial data (n_outputs,)
    factor: Callable = eqx.field(static=True)  # spatial point -> B (n_outputs,)
    t0: float = eqx.field(static=True)
    length: float = eqx.field(static=True)
    count: int = eqx.field(static=True)
    # training sends each window network through the engine; the assembled chain (evaluation,
    # predictions) is differentiated by autodiff, so the engine need not warn about it
    autodiff_expected = True

    @property
    def in_size(self) -> int:
        return self.template.in_size

    @property
    def out_size(self) -> int:
        return self.template.out_size

    def window(self, k) -> eqx.Module:
        """The network of window `k` (an int or a traced index)."""
        arrays = jax.tree.map(lambda a: a[k], self.stacked)
        return eqx.combine(arrays, eqx.partition(self.template, eqx.is_array)[1])

    def __call__(self, x):
        space, elapsed = x[:-1], x[-1] - self.t0
        k = jnp.clip(jnp.floor(elapsed / self.length), 0, self.count - 1).astype(jnp.int32)
        s = elapsed - k * self.length
        end = jnp.concatenate([space, jnp.full((1,), self.length, x.dtype)])
        static = eqx.partition(self.template, eqx.is_array)[1]

        def earlier(total, item):
            j, arrays = item
            value = eqx.combine(arrays, static)(end)
            return total + jnp.where(j < k, value, 0.0), None

        zero = jnp.zeros((self.out_size,), x.dtype)
        total, _ = jax.lax.scan(earlier, zero, (jnp.arange(self.count), self.stacked))
        current = self.window(k)(jnp.concatenate([space, s[None]]))
        start = self.initial(x.at[-1].set(self.t0))
        return start + self.factor(space) * (total + (s / self.length) * current)


class MarchState(eqx.Module):
    """Everything a marched run carries from one window to the next: what a checkpoint holds."""

    problem: eqx.Module
    model: MarchedModel
    done: jax.Array  # windows finished
    carried: Jet  # u_k and its spatial derivatives at the grid points
    carried_heldout: Jet  # the same at the held-out points
    key: jax.Array

    @property
    def step(self):
        return self.done

    @property
    def phase(self):
        return 0


# --- what marching needs from a problem ---------------------------------------------------------


class _Setup(eqx.Module):
    """The parts of a problem a marched run is built from."""

    space: eqx.Module  # the spatial domain
    t0: float = eqx.field(static=True)
    count: int = eqx.field(static=True)  # windows
    length: float = eqx.field(static=True)  # window length h
    initial: Callable = eqx.field(static=True)  # point -> (n_outputs,)
    factor: Callable = eqx.field(static=True)  # spatial point -> (n_outputs,)
    request: Request = eqx.field(static=True)  # what the residual reads
    full: Request = eqx.field(static=True)  # its closure (what the product rule needs)
    table: object = eqx.field(static=True)


_SETUPS: dict = {}


def _setup(problem, cfg) -> _Setup:
    """Check that `problem` can be marched and collect what marching needs; a MarchError
    names the first thing that stands in the way. The same problem and window give the same
    _Setup (its functions are part of the compiled steps' cache key, so a second run of the
    same problem in one process compiles nothing again); a problem holding arrays is not
    hashable and gets a fresh one."""
    key = (problem, cfg.march.window, cfg.model.hard_constraint)
    try:
        return _SETUPS[key]
    except TypeError:
        return _build_setup(problem, cfg)
    except KeyError:
        _SETUPS[key] = setup = _build_setup(problem, cfg)
        return setup


def _build_setup(problem, cfg) -> _Setup:
    name = type(problem).__name__
    domain = problem.domain
    if not isinstance(domain, SpaceTime):
        raise MarchError(f"march.window needs a time-dependent problem (space * TimeInterval); {name} is steady")
    if cfg.model.hard_constraint:
        raise MarchError("march.window imposes the initial and Dirichlet data itself: leave model.hard_constraint off")
    if problem.has_constraint:
        raise MarchError(f"march.window imposes the initial and Dirichlet data itself; {name} defines a constraint()")
    if jax.tree_util.tree_leaves(eqx.filter(problem, unknowns_filter(problem))):
        raise MarchError(f"march.window does not learn unknowns; {name} has some (train it without marching)")
    t0, t1 = float(domain.time.t0), float(domain.time.t1)
    count = max(1, math.ceil((t1 - t0) / cfg.march.window - 1e-9))
    length = (t1 - t0) / count  # windows of equal length that tile [t0, t1]

    initial, dirichlet = {}, {}
    for c in problem.get_conditions():
        if isinstance(c, Initial):
            initial[c.output] = c.value
        elif isinstance(c, Dirichlet):
            if callable(c.value):
                raise MarchError(
                    f"march.window takes Dirichlet data that are numbers (constant in time); {name}'s "
                    f"condition on {c.part or 'the boundary'} is a function"
                )
            dirichlet.setdefault(c.output, {})[c.part or "boundary"] = float(c.value)
        else:
            raise MarchError(f"march.window takes Initial and Dirichlet conditions only; {name} has {type(c).__name__}")
    missing = [o for o in problem.outputs if o not in initial]
    if missing:
        raise MarchError(f"march.window needs initial data for every output; {name} has none for {missing[0]!r}")

    table = problem.namespace.table(tuple(problem.needs))
    request = table.request
    t = domain.dim - 1
    if any(t in axes for axes in (request.second, request.third, request.fourth)) or any(
        t in pair for pair in tuple(request.mixed) + tuple(request.multi)
    ):
        raise MarchError(f"march.window needs an equation of first order in time; {name} reads a higher time derivative")
    if any(w[t] != 0.0 for w in request.contractions) or (request.bilaplacian and request.bilaplacian[t] != 0.0):
        raise MarchError(f"march.window needs spatial contractions (a Laplacian over x only); {name} contracts over t")

    outputs = list(problem.outputs)

    def initial_fn(x):
        return jnp.stack([jnp.asarray(_value_at(initial[o], x), x.dtype).reshape(()) for o in outputs])

    distances = {o: exact_dirichlet(domain.space, parts) for o, parts in dirichlet.items()}

    def factor_fn(space):
        return jnp.stack([distances[o](space)[1] if o in distances else jnp.ones((), space.dtype) for o in outputs])

    return _Setup(domain.space, t0, count, length, initial_fn, factor_fn, request, closure(request), table)


def grid_points(space, per_side: int, *, key, dtype) -> jax.Array:
    """The fixed spatial collocation points: the cell centres of a ``per_side``-per-axis grid
    on a box, else ``per_side ** dim`` Halton points of the domain."""
    if isinstance(space, Box):
        lo, hi = (np.asarray(b, np.float64) for b in space.bbox())
        axes = [lo[i] + (np.arange(per_side) + 0.5) / per_side * (hi[i] - lo[i]) for i in range(space.dim)]
        mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, space.dim)
        return jnp.asarray(mesh, dtype)
    return space.sample_interior(key, per_side**space.dim, method="halton").astype(dtype)


# --- the jets of one window ------------------------------------------------------------------------


def _without_time(jet: Jet, request: Request, t: int) -> Jet:
    """`jet` with every column that involves the time axis `t` set to zero (what ``u_k``, a
    function of space only, has). The contractions and the bilaplacian carry no time weight
    (`_setup` checks it)."""

    def keep(arr, flags):
        if not flags:
            return arr
        mask = jnp.asarray([0.0 if f else 1.0 for f in flags], arr.dtype)
        return arr * mask.reshape((1,) * (arr.ndim - 1) + (-1,))

    return Jet(
        jet.value,
        keep(jet.first, [k == t for k in request.first]),
        keep(jet.second, [k == t for k in request.second]),
        keep(jet.mixed, [t in p for p in request.mixed]),
        jet.contractions,
        keep(jet.third, [k == t for k in request.third]),
        keep(jet.fourth, [k == t for k in request.fourth]),
        keep(jet.multi, [t in p for p in request.multi]),
        jet.bilaplacian,
    )


def _with_time(space, s):
    return jnp.concatenate([space, s[:, None]], axis=1)


def _correction(setup: _Setup, net, space, s) -> Jet:
    """Jet (the closure request) of ``(s / h) B(x) N(x, s)`` at the points ``(space, s)``."""
    local = _with_time(space, s)
    n = jet_batch(net, local, setup.full)
    fn = lambda p: (p[-1] / setup.length) * setup.factor(p[:-1])  # noqa: E731
    D = jax.vmap(lambda p: jet_autodiff(fn, p, setup.full))(local)
    return jet_mul(D, n, setup.full)


def _residuals(setup: _Setup, problem, net, space, s, carried: Jet, start: float) -> jax.Array:
    """PDE residuals (N, k) of ``u = u_k + (s / h) B N`` at the points ``(space, start + s)``."""
    u = restrict(jet_add(carried, _correction(setup, net, space, s)), setup.full, setup.request)
    points = _with_time(space, start + s)

    def one(x, j):
        r = problem.residual(x, Fields(j, setup.table))
        if isinstance(r, (tuple, list)):
            r = jnp.stack([jnp.asarray(c) for c in r])
        return jnp.atleast_1d(r)

    return jax.vmap(one)(points, u)


def _loss(params, static, setup, problem, space, s, carried, start):
    r = _residuals(setup, problem, eqx.combine(params, static), space, s, carried, start)
    return jnp.mean(r**2)


def carry_forward(setup: _Setup, net, space, carried: Jet) -> Jet:
    """``u_{k+1}`` at `space`: ``u_k`` plus the window's correction at its end, time columns
    dropped."""
    s = jnp.full((space.shape[0],), setup.length, space.dtype)
    step = _without_time(_correction(setup, net, space, s), setup.full, space.shape[1])
    return jet_add(carried, step)


def initial_jets(setup: _Setup, space) -> Jet:
    """``u_0`` (the initial data) and its spatial derivatives at `space`."""
    points = _with_time(space, jnp.full((space.shape[0],), setup.t0, space.dtype))
    jets = jax.vmap(lambda p: jet_autodiff(setup.initial, p, setup.full))(points)
    return _without_time(jets, setup.full, space.shape[1])


# --- training -------------------------------------------------------------------------------


def _window_problem_stub(problem, setup):
    """A stand-in with the window's domain (space * [0, h]), from which `build_model` takes
    the window network's input box and sizes."""
    return types.SimpleNamespace(domain=SpaceTime(setup.space, TimeInterval(0.0, setup.length)),
                                 outputs=tuple(problem.outputs))


def init_march_state(problem, cfg, setup: _Setup, grid, heldout) -> MarchState:
    key = jax.random.PRNGKey(cfg.seed)
    net = build_model(_window_problem_stub(problem, setup), cfg.model, key=jax.random.fold_in(key, 1))
    arrays = eqx.filter(net, eqx.is_array)
    stacked = jax.tree.map(lambda a: jnp.broadcast_to(a, (setup.count,) + a.shape), arrays)
    model = MarchedModel(net, stacked, setup.initial, setup.factor, setup.t0, setup.length, setup.count)
    return MarchState(problem, model, jnp.asarray(0, jnp.int32), initial_jets(setup, grid),
                      initial_jets(setup, heldout), jax.random.fold_in(key, 2))


def _points(cfg, setup: _Setup, dtype):
    key = jax.random.fold_in(jax.random.PRNGKey(cfg.seed), 3)
    grid = grid_points(setup.space, cfg.march.grid, key=key, dtype=dtype)
    heldout = setup.space.sample_interior(jax.random.fold_in(key, 1), cfg.march.heldout).astype(dtype)
    return grid, heldout


@eqx.filter_jit
def _adam_window(params, static, setup, problem, space, carried, start, key, lr, steps: int):
    opt = optax.adam(lr)
    trained, fixed = eqx.partition(params, trainable_filter(params))

    def step(carry, k):
        p, st = carry
        s = jax.random.uniform(k, (space.shape[0],), space.dtype, 0.0, setup.length)
        loss, g = jax.value_and_grad(lambda q: _loss(eqx.combine(q, fixed), static, setup, problem, space, s, carried, start))(p)
        updates, st = opt.update(g, st, p)
        return (optax.apply_updates(p, updates), st), loss

    (trained, _), losses = jax.lax.scan(step, (trained, opt.init(trained)), jax.random.split(key, steps))
    return eqx.combine(trained, fixed), losses


@eqx.filter_jit
def _lbfgs_window(params, static, setup, problem, space, carried, start, key, steps: int):
    opt = optax.lbfgs()
    trained, fixed = eqx.partition(params, trainable_filter(params))
    s = jax.random.uniform(key, (space.shape[0],), space.dtype, 0.0, setup.length)
    f = lambda q: _loss(eqx.combine(q, fixed), static, setup, problem, space, s, carried, start)  # noqa: E731
    value_and_grad = optax.value_and_grad_from_state(f)

    def step(carry, _):
        p, st = carry
        value, g = value_and_grad(p, state=st)
        updates, st = opt.update(g, st, p, value=value, grad=g, value_fn=f)
        return (optax.apply_updates(p, updates), st), value

    (trained, _), losses = jax.lax.scan(step, (trained, opt.init(trained)), None, length=steps)
    return eqx.combine(trained, fixed), jnp.append(losses, f(trained))


@eqx.filter_jit
def _heldout_loss(params, static, setup, problem, space, carried, start, key):
    s = jax.random.uniform(key, (space.shape[0],), space.dtype, 0.0, setup.length)
    return _loss(params, static, setup, problem, space, s, carried, start)


@eqx.filter_jit
def _advance(state: MarchState, params, static, setup, grid, heldout):
    net = eqx.combine(params, static)
    k = state.done
    stacked = jax.tree.map(lambda all_, one: all_.at[k].set(one), state.model.stacked, params)
    # the next window starts from this one's network
    stacked = jax.tree.map(lambda all_, one: all_.at[jnp.minimum(k + 1, setup.count - 1)].set(one), stacked, params)
    model = eqx.tree_at(lambda m: m.stacked, state.model, stacked)
    return MarchState(state.problem, model, k + 1, carry_forward(setup, net, grid, state.carried),
                      carry_forward(setup, net, heldout, state.carried_heldout), state.key)


def march(problem, cfg, run_dir, *, resume: bool, progress: bool):
    """Train `problem` window by window (module docs) and write the run folder `run_dir`
    (None: in memory). Returns ``(metrics, MarchState, history rows)``; runs inside the
    caller's ``precision`` context."""
    from ..io import latest_checkpoint
    from ..io._checkpoint import load_checkpoint
    from ..config import dump_config
    from ._fit import NonFiniteLossError, run_info
    from ._model import set_precision
    from ._plots import make_plots
    from ._resume import load_newest_state

    problem.check()
    setup = _setup(problem, cfg)
    dtype = set_precision(cfg.model.dtype)
    grid, heldout = _points(cfg, setup, dtype)
    run_dir = None if run_dir is None else pathlib.Path(run_dir)
    ckpt_dir = None if run_dir is None else run_dir / "checkpoints"
    if ckpt_dir is not None and latest_checkpoint(ckpt_dir) is not None and not resume:
        raise FileExistsError(f"{run_dir} already holds checkpoints: pass resume=True to continue it, or use a new run folder")
    fresh = init_march_state(problem, cfg, setup, grid, heldout)
    state, history, skipped = fresh, [], []
    if ckpt_dir is not None:
        loaded, path, skipped = load_newest_state(ckpt_dir, lambda p: load_checkpoint(p, fresh))
        if loaded is not None:
            state = loaded
            history = [r for r in read_history(run_dir) if r["step"] <= int(state.done)]
    data = eval_set(problem, cfg.eval.points, dtype=dtype)  # may raise: before any write
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        for p, _ in skipped:
            p.replace(p.with_name(p.name + ".corrupt"))
        atomic_write_text(run_dir / "config.yaml", dump_config(cfg))

    m = cfg.march
    if progress is None:
        progress = bool(getattr(sys.stderr, "isatty", lambda: False)())
    static = eqx.partition(state.model.template, eqx.is_array)[1]
    train_seconds = sum(float(r.get("seconds", 0.0)) for r in history)
    bar = ProgressBar(setup.count, start_step=int(state.done), desc="march") if progress and int(state.done) < setup.count else None
    try:
        while int(state.done) < setup.count:
            k = int(state.done)
            start = setup.t0 + k * setup.length
            start_arr = jnp.asarray(start, dtype)
            params = jax.tree.map(lambda a: a[k], state.model.stacked)
            key = jax.random.fold_in(state.key, k)
            t_start = time.perf_counter()
            adam_steps = m.first_steps if k == 0 else m.steps
            losses = []
            if adam_steps:
                params, out = _adam_window(params, static, setup, problem, grid, state.carried, start_arr,
                                           jax.random.fold_in(key, 0), cfg.train.lr, adam_steps)
                losses.append(np.asarray(out))
            if m.lbfgs_steps:
                params, out = _lbfgs_window(params, static, setup, problem, grid, state.carried, start_arr,
                                            jax.random.fold_in(key, 1), m.lbfgs_steps)
                losses.append(np.asarray(out))
            final = float(losses[-1][-1]) if losses else float("nan")
            held = float(_heldout_loss(params, static, setup, problem, heldout, state.carried_heldout, start_arr,
                                       jax.random.fold_in(key, 2)))
            if not (math.isfinite(final) and math.isfinite(held)):
                raise NonFiniteLossError(
                    f"loss is not finite in window {k + 1} of {setup.count} (t = {start:g} to "
                    f"{start + setup.length:g}); marching stopped, the windows before it are in the last checkpoint",
                    step=k + 1, terms=("residual",))
            state = jax.block_until_ready(_advance(state, params, static, setup, grid, heldout))
            seconds = time.perf_counter() - t_start
            train_seconds += seconds
            history.append({"step": k + 1, "phase": "march", "loss": final, "loss_heldout": held,
                            "window_start": start, "seconds": seconds, "elapsed": train_seconds})
            if run_dir is not None:
                write_csv_rows(run_dir / "history.csv", history)
                save_checkpoint(checkpoint_path(ckpt_dir, k + 1), state, step=k + 1,
                                metadata={"windows": setup.count, "window_length": setup.length})
                prune_checkpoints(ckpt_dir, keep=cfg.output.keep_checkpoints)
            if bar is not None:
                bar.update(k + 1, loss=final, heldout=held)
    finally:
        if bar is not None:
            bar.close()

    ev = errors(problem, state.model, data)
    held = [r["loss_heldout"] for r in history]
    metrics = {
        "l2re": ev.get("l2re"),
        "best_l2re": ev.get("l2re"),
        "max_error": ev.get("max_error"),
        "eval_points": 0 if data is None else int(data.points.shape[0]),
        "steps": int(state.done),
        "windows": setup.count,
        "window_length": setup.length,
        "grid_points": int(grid.shape[0]),
        "train_seconds": train_seconds,
        # compilation happens inside the first two windows (the first and the later Adam
        # budgets), so it is not timed apart; the rate is optimiser steps per second of the
        # later windows
        "compile_seconds": None,
        "steps_per_second": _rate(history, m),
        "final_loss": history[-1]["loss"] if history else None,
        "heldout_loss_mean": float(np.mean(held)) if held else None,
        "heldout_loss_max": float(np.max(held)) if held else None,
        "dtype": cfg.model.dtype,
        "seed": cfg.seed,
    }
    metrics.update(run_info())
    if run_dir is not None:
        write_json(run_dir / "metrics.json", metrics)
        if cfg.output.plots:
            make_plots(problem, state.model, history, run_dir, eval_points=cfg.eval.points)
    return metrics, state, history


def _rate(history, m) -> float | None:
    """Median Adam + L-BFGS steps per second of the windows after the first two."""
    later = [r["seconds"] for r in history[2:] if r["seconds"] > 0]
    return float(np.median([(m.steps + m.lbfgs_steps) / t for t in later])) if later else None


def load_marched_state(problem, cfg, path) -> MarchState:
    """The MarchState in checkpoint `path` of a marched run made with `problem` and `cfg`."""
    from ..io._checkpoint import load_checkpoint
    from ._model import set_precision

    setup = _setup(problem, cfg)
    grid, heldout = _points(cfg, setup, set_precision(cfg.model.dtype))
    return load_checkpoint(path, init_march_state(problem, cfg, setup, grid, heldout))
