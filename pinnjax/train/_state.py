"""Everything a run carries from one step to the next, as one pytree."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ..config import ConfigError
from ..nn import AbstractNetwork, trainable_filter
from ..problem import Problem, unknowns_filter
from ._model import build_model
from ._sampling import draw_points, rad_pool
from ._spec import TrainSpec, adam

ADAM, LBFGS = 0, 1


class TrainState(eqx.Module):
    """The whole training state; checkpoints hold exactly this.

    - ``model``, ``problem``: the network and the problem, whose inexact array fields are
      trained beside it (inverse problems)
    - ``opt_state``: Adam's state; ``lbfgs_state``: L-BFGS's (None without an L-BFGS phase)
    - ``key``: the run's PRNG key; step ``s`` uses ``fold_in(key, s)``
    - ``weights``: per-term balancing multipliers (times the fixed weights)
    - ``step``: steps done; ``phase``: 0 Adam, 1 L-BFGS
    - ``points``: the current samples of every term (held between resamples)
    - ``pool``, ``pool_prob``: RAD candidates and their probabilities (None without RAD)
    - ``lbfgs_points``: the fixed batch of the L-BFGS phase
    """

    model: AbstractNetwork
    problem: Problem
    opt_state: tuple
    lbfgs_state: tuple | None
    key: jax.Array
    weights: jax.Array
    step: jax.Array
    phase: jax.Array
    points: tuple[jax.Array, ...]
    pool: jax.Array | None
    pool_prob: jax.Array | None
    lbfgs_points: tuple[jax.Array, ...] | None


def trainable(tree):
    """Filter spec of what the optimiser trains in ``(model, problem)``: the model's own
    filter (every inexact array but those its modules mark fixed, e.g. Fourier matrices), and
    the problem's fields marked ``unknown`` (its other arrays are fixed data)."""
    model, problem = tree
    return trainable_filter(model), unknowns_filter(problem)


def split_params(state: TrainState):
    """``(params, rest)`` of ``(model, problem)``: combine them back with ``eqx.combine``."""
    tree = (state.model, state.problem)
    return eqx.partition(tree, trainable(tree))


def _cast(tree, dtype):
    return jax.tree.map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, tree)


# --- checkpoints -------------------------------------------------------------------------


def structure(spec: TrainSpec) -> dict:
    """What fixes the shapes in a TrainState (stored in every checkpoint's header)."""
    has_lbfgs = spec.lbfgs_steps > 0
    return {
        "terms": list(spec.term_names),
        "counts": list(spec.counts),
        "dtype": spec.dtype,
        "rad_pool": spec.rad_pool if spec.rad else None,
        "lbfgs_memory": spec.lbfgs_memory if has_lbfgs else None,
    }


def load_state(path, problem: Problem, spec: TrainSpec, model_cfg, *, seed: int) -> TrainState:
    """The TrainState in checkpoint `path`, for a run now configured as `spec`.

    The numbers of steps may change between runs (train longer). Adding, removing or resizing
    the L-BFGS phase is allowed too: its state is then rebuilt (L-BFGS restarts from the
    current parameters). Anything else that changes the state's shapes is an error."""
    import dataclasses

    from ..io import load_checkpoint, read_checkpoint_info

    saved = read_checkpoint_info(path)["metadata"].get("structure")
    mine = structure(spec)
    old = spec
    if saved is not None:
        changed = [k for k in mine if k != "lbfgs_memory" and saved.get(k) != mine[k]]
        if changed:
            diff = "; ".join(f"{k}: {saved.get(k)} then, {mine[k]} now" for k in changed)
            raise ConfigError(f"{path} was written by a run with other settings ({diff}): start a new run folder")
        if saved.get("lbfgs_memory") != mine["lbfgs_memory"]:
            m = saved.get("lbfgs_memory")
            old = dataclasses.replace(spec, lbfgs_steps=1 if m else 0, lbfgs_memory=m or spec.lbfgs_memory)
    like = eqx.filter_eval_shape(init_state, problem, old, model_cfg, seed=seed)
    state = load_checkpoint(path, like)
    if old is not spec:  # L-BFGS settings changed: a fresh L-BFGS state, switched to again
        fresh = eqx.filter_eval_shape(init_state, problem, spec, model_cfg, seed=seed)
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), (fresh.lbfgs_state, fresh.lbfgs_points))
        state = eqx.tree_at(
            lambda s: (s.lbfgs_state, s.lbfgs_points, s.phase),
            state,
            (*zeros, jnp.asarray(ADAM, jnp.int32)),
            is_leaf=lambda x: x is None,
        )
    return state


def normalise(tree, dtype):
    """Floats in the run's dtype, integers int32, no weak types: a fresh state and one read
    from a checkpoint compile the same, with or without jax_enable_x64."""

    def one(a):
        if not eqx.is_array(a) or _is_key(a):
            return a
        if jnp.issubdtype(a.dtype, jnp.inexact):
            return jnp.asarray(a, dtype)
        if jnp.issubdtype(a.dtype, jnp.integer):
            return jnp.asarray(a, jnp.int32)
        return jnp.asarray(a, a.dtype)

    return jax.tree.map(one, tree)


def _is_key(a):
    return jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)


def _zeros_like_output(fn, *args):
    shapes = eqx.filter_eval_shape(fn, *args)
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def init_state(problem: Problem, spec: TrainSpec, model_cfg, *, seed: int) -> TrainState:
    """A fresh state: model from `seed`, problem unknowns cast to the run's dtype."""
    from ._spec import lbfgs

    mkey, tkey = jax.random.split(jax.random.key(seed))
    model = build_model(problem, model_cfg, key=mkey)
    dtype = spec.jnp_dtype
    problem = _cast(problem, dtype)
    tree = (model, problem)
    params = eqx.filter(tree, trainable(tree))
    opt_state = adam(spec).init(params)
    lbfgs_state = lbfgs(spec).init(params) if spec.lbfgs_steps > 0 else None
    # placeholders of the right shapes: step 0 always draws (and builds the RAD pool)
    pool = prob = None
    if spec.rad:
        pool, prob = _zeros_like_output(lambda p, m, k: rad_pool(spec, p, m, k), problem, model, tkey)
    points = _zeros_like_output(lambda p, k: draw_points(spec, p, k), problem, tkey)
    state = TrainState(
        model=model,
        problem=problem,
        opt_state=opt_state,
        lbfgs_state=lbfgs_state,
        key=tkey,
        weights=jnp.ones((spec.n_terms,), dtype),
        step=jnp.asarray(0, jnp.int32),
        phase=jnp.asarray(ADAM, jnp.int32),
        points=points,
        pool=pool,
        pool_prob=prob,
        lbfgs_points=points if spec.lbfgs_steps > 0 else None,
    )
    return normalise(state, dtype)
