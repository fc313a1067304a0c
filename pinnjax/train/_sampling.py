"""Collocation points drawn inside the compiled step, and residual-based adaptive
distribution (RAD, Wu et al. 2023)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._spec import TrainSpec, active_terms


def draw_points(spec: TrainSpec, problem, key, *, interior=None) -> tuple[jax.Array, ...]:
    """Fresh samples for every term (term i from `fold_in(key, i)`), in the run's dtype.
    `interior` replaces the interior term's draw (RAD)."""
    out = []
    for i, (term, n) in enumerate(zip(active_terms(problem, spec), spec.counts)):
        if term.kind == "interior" and interior is not None:
            out.append(interior)
            continue
        pts = term.sample(problem, jax.random.fold_in(key, i), n, spec.method)
        out.append(jnp.asarray(pts, spec.jnp_dtype))
    return tuple(out)


def rad_probabilities(residual_abs, k: float, c: float) -> jax.Array:
    """Sampling probabilities ``p ~ |r|^k / mean(|r|^k) + c`` over a pool, normalised."""
    e = residual_abs**k
    p = e / jnp.maximum(jnp.mean(e), jnp.finfo(e.dtype).tiny) + c
    p = jnp.where(jnp.isfinite(p), p, 0.0)
    total = jnp.sum(p)
    # an all-zero pool (k > 0, c = 0, zero residual) falls back to uniform
    return jnp.where(total > 0, p / jnp.where(total > 0, total, 1.0), 1.0 / p.shape[0])


def rad_pool(spec: TrainSpec, problem, model, key) -> tuple[jax.Array, jax.Array]:
    """A fresh pool of `rad_pool` candidates and their RAD probabilities under `model`."""
    term = active_terms(problem, spec)[spec.interior_index]
    pool = jnp.asarray(term.sample(problem, key, spec.rad_pool, spec.method), spec.jnp_dtype)
    r = term.residuals(problem, model, pool)
    return pool, rad_probabilities(jnp.sqrt(jnp.sum(r**2, axis=-1)), spec.rad_k, spec.rad_c)


def rad_select(key, pool, prob, n: int) -> jax.Array:
    """`n` distinct pool points drawn with probabilities `prob` (Gumbel top-k)."""
    idx = jax.random.choice(key, pool.shape[0], (n,), replace=False, p=prob)
    return pool[idx]
