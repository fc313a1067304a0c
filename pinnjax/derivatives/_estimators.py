"""Randomised contractions: the random directions an estimated Laplacian is carried along,
and functions of the input (a hard constraint's ``g`` and ``D``) lifted onto those directions.

With ``Request.estimator`` the plan (``_carried.make_plan``) carries one first-derivative row
per random direction ``v`` instead of one per contracted axis; the chain rule is the same
along any direction (``a_v = A' z_v``, ``a_vv = A'' z_v^2 + A' z_vv``, seed eqs. 14 and 23 with
``e_k`` replaced by ``v``), so the contraction row sums the weighted ``v^T H v``:

    hutchinson:  L u ~ sign(c) / n  sum_j w_j^T H w_j,      w_j = sqrt|c| * v_j, E[v v^T] = I
    sparse:      L u ~ sign(c) m / n sum_j |c_i_j| H_i_j i_j, i_j uniform among the m axes with c != 0

Both are unbiased: ``E[w^T H w] = sum_k |c_k| H_kk`` and ``E[m |c_i| H_ii] = sum_k |c_k| H_kk``.
The per-direction variances (of one term, before dividing by n) on a Hessian ``H`` with
``A = diag(sqrt|c|) H diag(sqrt|c|)``: Rademacher ``2 (||A||_F^2 - sum_k A_kk^2)``, Gaussian
``2 ||A||_F^2``, sparse ``m sum_k A_kk^2 - (tr A)^2`` (the tests check all three).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._carried import C, D1, D2, N_GROUPS, Carried, Plan


def sample_directions(plan: Plan, key: jax.Array, batch: int, dtype):
    """Fresh random directions for ``batch`` points: ``(batch, n, d)`` vectors (hutchinson)
    or ``(axes, scales)`` of shape ``(batch, n)`` (sparse), ``n`` = samples x contractions."""
    est, d, n = plan.estimator, plan.dim, plan.estimator.samples
    keys = jax.random.split(key, len(plan.directions))
    if est.method == "sparse":
        axes, scales = [], []
        for k, (support, roots) in zip(keys, plan.directions):
            if not support:  # an all-zero contraction: its weights are zero too
                axes.append(jnp.zeros((batch, n), jnp.int32))
                scales.append(jnp.zeros((batch, n), dtype))
                continue
            pick = jax.random.randint(k, (batch, n), 0, len(support))
            full = support == tuple(range(d))
            axes.append(pick if full else jnp.asarray(support, jnp.int32)[pick])
            ones = all(r == 1.0 for r in roots)
            scales.append(jnp.ones((batch, n), dtype) if ones else jnp.asarray(roots, dtype)[pick])
        return jnp.concatenate(axes, axis=1), jnp.concatenate(scales, axis=1)
    vectors = []
    for k, (support, roots) in zip(keys, plan.directions):
        shape = (batch, n, len(support))
        if est.distribution == "gaussian":
            v = jax.random.normal(k, shape, dtype)
        else:
            v = jax.random.rademacher(k, shape, dtype)
        if not all(r == 1.0 for r in roots):
            v = v * jnp.asarray(roots, dtype)[None, None, :]
        if support != tuple(range(d)):
            v = jnp.zeros((batch, n, d), dtype).at[:, :, jnp.asarray(support, jnp.int32)].set(v)
        vectors.append(v)
    return vectors[0] if len(vectors) == 1 else jnp.concatenate(vectors, axis=1)


def _axis_vectors(h: Carried) -> jax.Array:
    """Every a1 axis of the plan as an input-space vector, ``(batch, len(a1), d)``."""
    plan, xs = h.plan, h.value
    batch, d = xs.shape
    eye = jnp.eye(d, dtype=xs.dtype)
    parts = [jnp.broadcast_to(eye[jnp.asarray(plan.real_a1, jnp.int32)][None], (batch, len(plan.real_a1), d))]
    if plan.n_directions:
        if isinstance(h.directions, tuple):
            axes, scales = h.directions
            parts.append(jax.nn.one_hot(axes, d, dtype=xs.dtype) * scales[:, :, None].astype(xs.dtype))
        else:
            parts.append(h.directions.astype(xs.dtype))
    return jnp.concatenate(parts, axis=1)


def lift(fn, h: Carried, width: int) -> Carried:
    """``fn(x)`` (one point in, ``(k,)`` out, k = 1 or ``width``) as a Carried with the groups
    of ``h``'s plan (first derivatives along a1 and its directions, the contraction rows, the
    pure second derivatives), by nested ``jax.jvp`` along each vector. ``h`` is the engine's
    input state. Second order only: what the estimated Laplacian's Leibniz rule reads."""
    plan = h.plan
    if plan.order > 2 or plan.mixed or h.input_scale is not None or h.input_shift is not None:
        raise NotImplementedError("lifting a function onto the carried directions supports first and "
                                  "pure second derivatives and contractions of the raw input only")
    xs = h.value

    def at_point(x, vectors):
        f = lambda p: jnp.broadcast_to(jnp.atleast_1d(fn(p)).astype(x.dtype), (width,))  # noqa: E731

        def along(v):
            first = lambda p: jax.jvp(f, (p,), (v,))[1]  # noqa: E731
            return jax.jvp(first, (x,), (v,))

        d1, d2 = jax.vmap(along)(vectors)
        return f(x), d1, d2

    value, d1, d2 = jax.vmap(at_point)(xs, _axis_vectors(h))  # (b, w), (b, r, w), (b, r, w)
    groups = [None] * N_GROUPS
    one = lambda g: g[:, 0] if g.shape[1] == 1 else g  # noqa: E731  (one-row group storage)
    groups[D1] = one(d1)
    if plan.a2:
        groups[D2] = one(d2[:, jnp.asarray(plan.pos_in("a1", "a2"), jnp.int32)])
    if plan.weights:
        w = jnp.asarray(plan.weights, xs.dtype)  # (n_contractions, len(a1))
        groups[C] = one(jnp.einsum("ca,baw->bcw", w, d2))
    return h.replace(value, groups)
