"""The compiled training step of a phase, and chunks of steps run inside one ``lax.scan``.

A chunk is compiled once per (spec, phase, state structure): its length is the static
``scan_steps`` and the number of steps it actually runs is a traced argument, so chunks of
any length reuse one executable and a step computes the same bits wherever a chunk starts."""

from __future__ import annotations

import collections
import contextlib
import functools

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import NamedSharding, PartitionSpec

from ._loss import (
    gradnorm_weights,
    ntk_weights,
    term_ntk_traces,
    term_grad_norms,
    term_losses,
    weighted_normal_equations,
    weighted_residual_jacobian,
    weighted_residuals,
)
from ._mesh import constrain, state_shardings
from ._phases import Phase
from ._sampling import draw_points, rad_pool, rad_select
from ._spec import TrainSpec
from ._state import TrainState, normalise, split_params
from .optimisers import AbstractOptimiser, Objective

# how many times each compiled function was traced (a retrace means a recompile)
TRACE_COUNTS: collections.Counter = collections.Counter()


def _weighted(spec: TrainSpec, weights, losses):
    return jnp.sum(jnp.asarray(spec.fixed_weights, losses.dtype) * weights * losses)


def _sample(spec: TrainSpec, phase: Phase, state: TrainState, key):
    """Points for this step: a draw when the phase starts, every ``resample_every`` steps
    and at each RAD pool refresh. Returns (points, pool, prob, redrawn)."""
    k = state.step - phase.start
    problem = state.problem
    k_pool, k_draw, k_pick = jax.random.split(key, 3)
    pool, prob = state.pool, state.pool_prob
    refresh = jnp.asarray(False)
    if phase.rad:
        refresh = (k % phase.rad_every == 0) if phase.rad_every > 0 else (k == 0)
        pool, prob = lax.cond(
            refresh, lambda: rad_pool(spec, problem, state.model, k_pool), lambda: (pool, prob)
        )

    def draw():
        interior = None
        if phase.rad:
            interior = rad_select(k_pick, pool, prob, spec.counts[spec.interior_index])
        return draw_points(spec, problem, k_draw, interior=interior)

    if phase.resample_every == 1:
        points, redrawn = draw(), jnp.asarray(True)
    else:
        redrawn = (k == 0) | refresh
        if phase.resample_every > 1:
            redrawn = redrawn | (k % phase.resample_every == 0)
        points = lax.cond(redrawn, draw, lambda: state.points)
    # several devices: each holds (and computes on) its share of the points
    points, pool, prob = constrain(spec.mesh, (points, pool, prob))
    return points, pool, prob, redrawn


def _same_dtype(new, old):
    if new.dtype == old.dtype or jax.dtypes.issubdtype(old.dtype, jax.dtypes.prng_key):
        return new
    return new.astype(old.dtype)


def _keep_dtypes(new, old):
    return jax.tree.map(_same_dtype, new, old)


def phase_step(spec: TrainSpec, state: TrainState, *, index: int):
    """One step of phase `index`: sample, build the objective, let the optimiser step.
    Returns the new state and the (total, per-term) losses at the old parameters."""
    phase = spec.phases[index]
    opt = phase.optimiser
    key = jax.random.fold_in(state.key, state.step)
    points, pool, prob, redrawn = _sample(spec, phase, state, key)
    params, rest = split_params(state)

    opt_state = state.opt_state
    if type(opt).redrawn is not AbstractOptimiser.redrawn:
        again = redrawn & (state.step > phase.start)
        opt_state = lax.cond(
            again,
            lambda: _keep_dtypes(normalise(opt.redrawn(opt_state, params), spec.jnp_dtype), opt_state),
            lambda: opt_state,
        )

    directions = jax.random.fold_in(key, 0x5EED)  # randomised Laplacian: fresh directions each step

    def losses_at(p, causal):
        model, problem = eqx.combine(p, rest)
        return term_losses(spec, problem, model, points, causal=causal, key=directions)

    def jacobian_at(p, method):
        return weighted_residual_jacobian(spec, p, rest, points, state.weights, method)

    def residuals_at(p):
        model, problem = eqx.combine(p, rest)
        return weighted_residuals(spec, problem, model, points, state.weights)

    def normal_at(p, method):
        return weighted_normal_equations(spec, p, rest, points, state.weights, method)

    balance = None
    if spec.balancing == "gradnorm":

        def balance(p, weights):
            return lax.cond(
                state.step % spec.balance_every == 0,
                lambda: gradnorm_weights(term_grad_norms(lambda q: losses_at(q, None), p), weights,
                                         spec.balance_momentum),
                lambda: weights,
            )

    elif spec.balancing == "ntk":

        def balance(p, weights):
            return lax.cond(
                state.step % spec.balance_every == 0,
                lambda: ntk_weights(term_ntk_traces(spec, p, rest, points), weights, spec.balance_momentum),
                lambda: weights,
            )

    nxt = state.step + 1
    log = (nxt % spec.log_every == 0) | jnp.any(nxt == jnp.asarray(spec.phase_ends))
    objective = Objective(losses_at, functools.partial(_weighted, spec), jacobian_at, state.weights, log, balance,
                          residuals_at, normal_at)
    out = opt.step(objective, params, opt_state, state.step - phase.start)
    model, problem = eqx.combine(out.params, rest)
    new = eqx.tree_at(
        lambda s: (s.model, s.problem, s.opt_state, s.weights, s.step, s.points, s.pool, s.pool_prob),
        state,
        (model, problem, out.opt_state, out.weights, nxt, points, pool, prob),
        is_leaf=lambda x: x is None,
    )
    return new, (out.total, out.losses)


def _matmul_precision(spec: TrainSpec):
    """The context the compiled programs are traced in: ``model.matmul_precision`` reaches
    every dot of the step (JAX reads it when each matmul is traced)."""
    if spec.matmul_precision is None:
        return contextlib.nullcontext()
    return jax.default_matmul_precision(spec.matmul_precision)


def _laid_out(spec: TrainSpec, state: TrainState) -> TrainState:
    """The arrays of `state` in their sharding on the mesh (a no-op on one device)."""
    if spec.mesh is None:
        return state
    dynamic, static = eqx.partition(state, eqx.is_array)
    dynamic = constrain(spec.mesh, dynamic, state_shardings(spec.mesh, dynamic))
    return eqx.combine(dynamic, static)


@eqx.filter_jit
def start_phase(spec: TrainSpec, index: int, state: TrainState) -> TrainState:
    """Enter phase `index`: its optimiser's state at the current parameters (its first step
    draws the batch)."""
    TRACE_COUNTS["start_phase"] += 1
    with _matmul_precision(spec):
        params, _ = split_params(state)
        opt_state = normalise(spec.phases[index].optimiser.init(params), spec.jnp_dtype)
        new = eqx.tree_at(
            lambda s: (s.opt_state, s.phase), state, (opt_state, jnp.asarray(index, jnp.int32))
        )
        return _laid_out(spec, new)


def _chunk(spec: TrainSpec, state: TrainState, n_active, step_fn):
    """Run `n_active` (<= scan_steps) steps of `step_fn` in one scan. Steps stop after the
    first non-finite loss. Returns the state and per-step (total loss, term losses, weights)."""
    dynamic, static = eqx.partition(state, eqx.is_array)

    def body(carry, i):
        dyn, ok = carry
        active = (i < n_active) & ok

        def run(d):
            new, (total, losses) = step_fn(spec, eqx.combine(d, static))
            # the carry keeps its dtypes (optax may build int64 counters under x64)
            new = _keep_dtypes(eqx.filter(_laid_out(spec, new), eqx.is_array), d)
            return new, total.astype(spec.jnp_dtype), losses.astype(spec.jnp_dtype)

        def skip(d):
            nan = jnp.full((spec.n_terms,), jnp.nan, spec.jnp_dtype)
            return d, nan[0], nan

        dyn, total, losses = lax.cond(active, run, skip, dyn)
        ok = ok & (~active | jnp.isfinite(total))
        return (dyn, ok), (total, losses, dyn.weights)

    (dynamic, _), out = lax.scan(body, (dynamic, jnp.asarray(True)), jnp.arange(spec.scan_steps))
    return eqx.combine(dynamic, static), out


@eqx.filter_jit
def phase_chunk(spec: TrainSpec, index: int, state: TrainState, n_active):
    """Up to ``scan_steps`` steps of phase `index` (its optimiser's name + ``_chunk`` counts
    the traces in TRACE_COUNTS)."""
    TRACE_COUNTS[f"{spec.phases[index].name}_chunk"] += 1
    with _matmul_precision(spec):
        state, out = _chunk(spec, state, n_active, functools.partial(phase_step, index=index))
    if spec.mesh is not None:  # the per-step losses on every device, for the host loop
        out = constrain(spec.mesh, out, jax.tree.map(lambda _: NamedSharding(spec.mesh, PartitionSpec()), out))
    return state, out


def adam_chunk(spec: TrainSpec, state: TrainState, n_active):
    """The first phase's chunk (Adam in the shorthand config)."""
    return phase_chunk(spec, 0, state, n_active)
