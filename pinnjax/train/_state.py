"""Everything a run carries from one step to the next, as one pytree."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ..config import ConfigError
from ..nn import AbstractNetwork, trainable_filter
from ..problem import Problem, unknowns_filter
from ._model import build_model
from ._phases import optimiser_from_signature
from ._sampling import draw_points, rad_pool
from ._spec import TrainSpec


class TrainState(eqx.Module):
    """The whole training state; checkpoints hold exactly this.

    - ``model``, ``problem``: the network and the problem, whose inexact array fields are
      trained beside it (inverse problems)
    - ``opt_state``: the state of the current phase's optimiser
    - ``key``: the run's PRNG key; step ``s`` uses ``fold_in(key, s)``
    - ``weights``: per-term balancing multipliers (times the fixed weights)
    - ``step``: steps done; ``phase``: the index of the phase in ``spec.phases``
    - ``points``: the current samples of every term (held between redraws)
    - ``pool``, ``pool_prob``: RAD candidates and their probabilities (None without RAD)
    """

    model: AbstractNetwork
    problem: Problem
    opt_state: object
    key: jax.Array
    weights: jax.Array
    step: jax.Array
    phase: jax.Array
    points: tuple[jax.Array, ...]
    pool: jax.Array | None
    pool_prob: jax.Array | None


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
    return {
        "terms": list(spec.term_names),
        "counts": list(spec.counts),
        "dtype": spec.dtype,
        "rad_pool": spec.rad_pool if spec.rad else None,
        "phases": [ph.signature() for ph in spec.phases],
    }


def load_state(path, problem: Problem, spec: TrainSpec, model_cfg, *, seed: int) -> TrainState:
    """The TrainState in checkpoint `path`, for a run now configured as `spec`.

    Step budgets may change between runs (train longer), and phases may be added, removed or
    changed: the checkpoint is read with the optimiser that wrote it, and when the phase it
    was taken in is not the same now, that phase's optimiser starts afresh from the saved
    parameters. Anything else that changes the state's shapes is an error."""
    from ..io import load_checkpoint, read_checkpoint_info

    meta = read_checkpoint_info(path)["metadata"]
    saved, mine = meta.get("structure") or {}, structure(spec)
    if "phases" not in saved:
        raise ConfigError(f"{path} was written by an older pinnjax (no phase record): start a new run folder")
    changed = [k for k in mine if k != "phases" and saved.get(k) != mine[k]]
    if changed:
        diff = "; ".join(f"{k}: {saved.get(k)} then, {mine[k]} now" for k in changed)
        raise ConfigError(f"{path} was written by a run with other settings ({diff}): start a new run folder")
    index = int(meta.get("phase", 0))
    signature = saved["phases"][index]
    optimiser = optimiser_from_signature(signature)
    like = eqx.filter_eval_shape(init_state, problem, spec, model_cfg, seed=seed, optimiser=optimiser)
    state = load_checkpoint(path, like)
    same = index < len(spec.phases) and spec.phases[index].signature() == signature
    if not same:  # that phase is different now: mark the state as between phases
        state = eqx.tree_at(lambda s: s.phase, state, jnp.asarray(-1, jnp.int32))
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


def init_state(problem: Problem, spec: TrainSpec, model_cfg, *, seed: int, optimiser=None) -> TrainState:
    """A fresh state: model from `seed`, problem unknowns cast to the run's dtype, the first
    phase's optimiser state (or `optimiser`'s, with phase -1)."""
    mkey, tkey = jax.random.split(jax.random.key(seed))
    model = build_model(problem, model_cfg, key=mkey)
    dtype = spec.jnp_dtype
    problem = _cast(problem, dtype)
    tree = (model, problem)
    params = eqx.filter(tree, trainable(tree))
    phase = 0 if optimiser is None else -1
    optimiser = spec.phases[0].optimiser if optimiser is None else optimiser
    # placeholders of the right shapes: a phase's first step always draws
    pool = prob = None
    if spec.rad:
        pool, prob = _zeros_like_output(lambda p, m, k: rad_pool(spec, p, m, k), problem, model, tkey)
    points = _zeros_like_output(lambda p, k: draw_points(spec, p, k), problem, tkey)
    state = TrainState(
        model=model,
        problem=problem,
        opt_state=optimiser.init(params),
        key=tkey,
        weights=jnp.ones((spec.n_terms,), dtype),
        step=jnp.asarray(0, jnp.int32),
        phase=jnp.asarray(phase, jnp.int32),
        points=points,
        pool=pool,
        pool_prob=prob,
    )
    return normalise(state, dtype)
