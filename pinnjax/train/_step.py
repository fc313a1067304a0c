"""The compiled training step, and chunks of steps run inside one ``lax.scan``.

A chunk is compiled once per (spec, state structure): its length is the static
``scan_steps`` and the number of steps it actually runs is a traced argument, so chunks of
any length reuse one executable and a step computes the same bits wherever a chunk starts."""

from __future__ import annotations

import collections

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax import lax

from ._loss import gradnorm_weights, term_grad_norms, term_losses
from ._sampling import draw_points, rad_pool, rad_select
from ._spec import TrainSpec, adam, lbfgs
from ._state import LBFGS, TrainState, normalise, split_params

# how many times each compiled function was traced (a retrace means a recompile)
TRACE_COUNTS: collections.Counter = collections.Counter()


def _weighted(spec: TrainSpec, weights, losses):
    return jnp.sum(jnp.asarray(spec.fixed_weights, losses.dtype) * weights * losses)


def _sample(spec: TrainSpec, state: TrainState, key):
    """Points for this step: RAD pool refresh and resampling on their schedules."""
    step, problem = state.step, state.problem
    k_pool, k_draw, k_pick = jax.random.split(key, 3)
    pool, prob = state.pool, state.pool_prob
    refresh = jnp.asarray(False)
    if spec.rad:
        refresh = step % spec.rad_every == 0
        pool, prob = lax.cond(
            refresh, lambda: rad_pool(spec, problem, state.model, k_pool), lambda: (pool, prob)
        )

    def draw():
        interior = None
        if spec.rad:
            interior = rad_select(k_pick, pool, prob, spec.counts[spec.interior_index])
        return draw_points(spec, problem, k_draw, interior=interior)

    if spec.resample_every == 1:
        points = draw()
    else:
        points = lax.cond((step % spec.resample_every == 0) | refresh, draw, lambda: state.points)
    return points, pool, prob


def adam_step(spec: TrainSpec, state: TrainState):
    """One Adam step: sample, (re)balance, value and gradient, update.
    Returns the new state and the (total, per-term) losses at the old parameters."""
    key = jax.random.fold_in(state.key, state.step)
    points, pool, prob = _sample(spec, state, key)
    params, rest = split_params(state)

    def losses_at(p):
        model, problem = eqx.combine(p, rest)
        return term_losses(spec, problem, model, points)

    weights = state.weights
    if spec.balancing == "gradnorm":
        weights = lax.cond(
            state.step % spec.balance_every == 0,
            lambda: gradnorm_weights(term_grad_norms(losses_at, params), weights, spec.balance_momentum),
            lambda: weights,
        )

    def loss_fn(p):
        losses = losses_at(p)
        return _weighted(spec, weights, losses), losses

    (total, losses), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = adam(spec).update(grads, state.opt_state, params)
    model, problem = eqx.combine(optax.apply_updates(params, updates), rest)
    new = eqx.tree_at(
        lambda s: (s.model, s.problem, s.opt_state, s.weights, s.step, s.points, s.pool, s.pool_prob),
        state,
        (model, problem, opt_state, weights, state.step + 1, points, pool, prob),
        is_leaf=lambda x: x is None,
    )
    return new, (total, losses)


def _lbfgs_objective(spec: TrainSpec, state: TrainState, rest):
    """The fixed L-BFGS objective: weights frozen, no causal weighting (its stop-gradient
    would make the gradient disagree with the value the line search checks)."""

    def losses_at(p):
        model, problem = eqx.combine(p, rest)
        return term_losses(spec, problem, model, state.lbfgs_points, causal=False)

    return losses_at, lambda p: _weighted(spec, state.weights, losses_at(p))


def lbfgs_step(spec: TrainSpec, state: TrainState):
    """One L-BFGS step (zoom line search) on the fixed batch. Returns the new state and the
    loss terms at the old parameters (computed only on log steps and when the loss is not
    finite; NaN otherwise, the total is always there)."""
    params, rest = split_params(state)
    losses_at, objective = _lbfgs_objective(spec, state, rest)
    value, grad = optax.value_and_grad_from_state(objective)(params, state=state.lbfgs_state)
    updates, lstate = lbfgs(spec).update(
        grad, state.lbfgs_state, params, value=value, grad=grad, value_fn=objective
    )
    new_params = optax.apply_updates(params, updates)
    # a finished search (zero step, or a non-finite trial) leaves the parameters as they were
    good = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(u)) for u in jax.tree.leaves(new_params)]))
    new_params = jax.tree.map(lambda a, b: jnp.where(good, a, b), new_params, params)
    model, problem = eqx.combine(new_params, rest)
    log = ((state.step + 1) % spec.log_every == 0) | (state.step + 1 == spec.total_steps) | ~jnp.isfinite(value)
    nan = jnp.full((spec.n_terms,), jnp.nan, value.dtype)
    losses = lax.cond(log, lambda: losses_at(params), lambda: nan)
    new = eqx.tree_at(
        lambda s: (s.model, s.problem, s.lbfgs_state, s.step),
        state,
        (model, problem, lstate, state.step + 1),
    )
    return new, (value, losses)


@eqx.filter_jit
def start_lbfgs(spec: TrainSpec, state: TrainState) -> TrainState:
    """Switch to L-BFGS: draw the fixed batch once (from the RAD distribution when RAD is
    on) and start the L-BFGS state at the current parameters."""
    TRACE_COUNTS["start_lbfgs"] += 1
    key = jax.random.fold_in(jax.random.fold_in(state.key, state.step), 1)
    k_pool, k_draw, k_pick = jax.random.split(key, 3)
    interior = None
    if spec.rad:
        pool, prob = rad_pool(spec, state.problem, state.model, k_pool)
        interior = rad_select(k_pick, pool, prob, spec.counts[spec.interior_index])
    points = draw_points(spec, state.problem, k_draw, interior=interior)
    params, _ = split_params(state)
    return eqx.tree_at(
        lambda s: (s.lbfgs_state, s.lbfgs_points, s.phase),
        state,
        (normalise(lbfgs(spec).init(params), spec.jnp_dtype), points, jnp.asarray(LBFGS, jnp.int32)),
    )


def _same_dtype(new, old):
    if new.dtype == old.dtype or jax.dtypes.issubdtype(old.dtype, jax.dtypes.prng_key):
        return new
    return new.astype(old.dtype)


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
            new = jax.tree.map(_same_dtype, eqx.filter(new, eqx.is_array), d)
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
def adam_chunk(spec: TrainSpec, state: TrainState, n_active):
    TRACE_COUNTS["adam_chunk"] += 1
    return _chunk(spec, state, n_active, adam_step)


@eqx.filter_jit
def lbfgs_chunk(spec: TrainSpec, state: TrainState, n_active):
    TRACE_COUNTS["lbfgs_chunk"] += 1
    return _chunk(spec, state, n_active, lbfgs_step)
