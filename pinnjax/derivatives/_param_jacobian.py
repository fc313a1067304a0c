"""The Jacobian of a batch of per-point residuals with respect to the network parameters, in
Kronecker form (seed ``matrix-calculus-neural-models-lecture.txt``).

A dense layer ``z = W a + b`` is applied by the engine to the value and to every carried
derivative group of its input: ``z_g = W a_g`` (+ ``b`` for the value group only). With
``delta_g = d r / d z_g`` the back-propagated sensitivity of one residual component ``r``,

    d r / d vec(W) = sum_g delta_g^T (a_g^T (x) I)      i.e.  d r / dW = sum_g outer(delta_g, a_g)
    d r / d b      = delta_value

(the seed's ``d z / d vec(W) = a^T (x) I``; a row-major ``W`` flattens the outer product row
by row). So one row of the Jacobian per residual component and point is built layer by layer
from the carried inputs ``a_g`` (recorded at every ``linear`` call during the jet pass) and
the sensitivities ``delta_g``, which come from one backward pass of the batched residual per
residual component: a zero perturbation ``eps_g`` is added to every layer output group and
``d r / d eps_g = delta_g``. Residuals are local (point ``n`` reads only point ``n``, the
assumption the per-point ``jax.jacrev`` makes too), so one backward pass gives every point's
sensitivities at once: no per-point parameter gradient is formed by generic autodiff.

Which parameters get the Kronecker form: every array passed to ``linear`` as a weight or bias
that is itself a parameter leaf (the layers of MLP, ModifiedMLP, PirateNet, ResNet and
``eqx.nn.MLP``). Everything else falls back to autodiff over just those leaves (``jax.jacfwd``
of the batched residual when they are few scalars, else a per-point ``jax.jacrev``):
PirateNet's ``alpha``, problem unknowns, and the ``V`` / ``log_scale`` of a factorised layer
(its ``weight`` is computed, not a leaf). A leaf that a network applies in a plain-array
``linear`` (the nested-jvp fallback for networks the engine cannot read) also falls back, as
the perturbation would miss its effect on the derivatives. Assumed: a dense layer's weight or
bias leaf is used only through ``linear`` (true of every network in ``pinnjax.nn``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._carried import LINEAR_RECORDERS, Carried

_FORWARD_LIMIT = 64  # at most this many fallback scalars: jacfwd of the batch, else per-point jacrev


class _Recorder:
    """Sees every ``linear`` call (``LINEAR_RECORDERS``): notes which parameter leaves are the
    weight and bias, keeps the layer's carried input and adds the call's perturbations."""

    def __init__(self, leaf_position: dict, perturbations=None):
        self.leaf_position = leaf_position  # id(leaf array) -> position among the leaves
        self.perturbations = perturbations  # per call: None or (value, group_0, ...) arrays / None
        self.calls = []  # per call: (weight position, bias position, inputs, output shapes)
        self.plain = set()  # leaf positions used by a plain-array linear

    def __call__(self, h, weight, bias, out):
        w = self.leaf_position.get(id(weight))
        b = None if bias is None else self.leaf_position.get(id(bias))
        if not isinstance(h, Carried):
            self.plain |= {w, b} - {None}
            self.calls.append((None, None, None, None))
            return out
        a = h.materialize()  # the first layer's input state written out: a = s x + t, D1 = diag(s)
        shapes = tuple(None if g is None else g.shape for g in (out.value,) + out.groups)
        self.calls.append((w, b, (a.value,) + tuple(a.groups), shapes))
        eps = None if self.perturbations is None else self.perturbations[len(self.calls) - 1]
        if eps is None:
            return out
        parts = [g if e is None else g + e for g, e in zip((out.value,) + out.groups, eps)]
        return out.replace(parts[0], parts[1:])


def _traced(residual, treedef, leaves, points, perturbations):
    recorder = _Recorder({id(leaf): i for i, leaf in enumerate(leaves)}, perturbations)
    LINEAR_RECORDERS.append(recorder)
    try:
        r = residual(jax.tree.unflatten(treedef, leaves), points)
    finally:
        LINEAR_RECORDERS.remove(recorder)
    return r.reshape(r.shape[0], -1), recorder


def _discover(residual, params, points):
    """Trace the residual once (no computation): its output shape, the ``linear`` calls
    (weight and bias positions, inputs, output shapes) and the leaf positions in Kronecker
    form."""
    leaves, treedef = jax.tree.flatten(params)
    found = {}

    def run(leaf_list):
        r, rec = _traced(residual, treedef, leaf_list, points, None)
        found["calls"], found["plain"] = rec.calls, rec.plain
        return r

    out_shape = jax.eval_shape(run, leaves).shape
    calls = found["calls"]
    covered = {p for w, b, _, _ in calls for p in (w, b) if p is not None} - found["plain"]
    return out_shape, calls, covered


def kronecker_leaves(residual, params, points) -> list[bool]:
    """Per leaf of ``params`` (``jax.tree.leaves`` order): whether :func:`kronecker_jacobian`
    builds its columns in Kronecker form (True) or by the autodiff fallback (False)."""
    covered = _discover(residual, params, points)[2]
    return [i in covered for i in range(len(jax.tree.leaves(params)))]


def kronecker_jacobian(residual, params, points) -> jax.Array:
    """``d r / d params`` of shape ``(N * k, P)`` for ``r = residual(params, points)`` of shape
    ``(N, k)`` (or ``(N,)``), the columns in ``ravel_pytree(params)`` order: the same matrix
    as a per-point ``jax.jacrev`` stacked over the points (module docs)."""
    leaves, treedef = jax.tree.flatten(params)
    n_points = points.shape[0]
    out_shape, calls, covered = _discover(residual, params, points)
    fallback = [i for i in range(len(leaves)) if i not in covered]
    dtype = jnp.result_type(*leaves) if leaves else points.dtype

    def zeros_for(w, b, shapes):
        if w not in covered and b not in covered:
            return None
        return tuple(None if s is None else jnp.zeros((n_points,) + s[1:], dtype) for s in shapes)

    eps0 = [zeros_for(w, b, shapes) for w, b, _, shapes in calls]

    def with_fallback(values):
        out = list(leaves)
        for i, v in zip(fallback, values):
            out[i] = v
        return out

    def of_eps(eps):
        r, rec = _traced(residual, treedef, leaves, points, eps)
        return r, [c[2] for c in rec.calls]

    r, pullback, inputs = jax.vjp(of_eps, eps0, has_aux=True)
    k = r.shape[1]
    assert r.shape == (n_points, k) and out_shape == r.shape
    # one backward pass per residual component, every point at once: (k, N, ...) sensitivities
    cotangents = jnp.broadcast_to(jnp.eye(k, dtype=r.dtype)[:, None, :], (k, n_points, k))
    (sens,) = jax.vmap(pullback)(cotangents)

    blocks = [None] * len(leaves)

    def accumulate(i, block):  # block (N, k, *leaf.shape)
        blocks[i] = block if blocks[i] is None else blocks[i] + block

    for (w, b, _, _), a_groups, s_groups in zip(calls, inputs, sens):
        if s_groups is None:
            continue
        if w in covered:
            for a, s in zip(a_groups, s_groups):
                if a is None or s is None:
                    continue
                lead = s.shape[2:-1]  # the group's rows (empty for a one-row group)
                L = int(np.prod(lead, dtype=int))
                s2 = s.reshape(k, n_points, L, s.shape[-1])
                a2 = jnp.broadcast_to(a, (n_points,) + lead + a.shape[-1:]).reshape(n_points, L, a.shape[-1])
                accumulate(w, jnp.einsum("knlo,nli->nkoi", s2, a2))  # outer(delta_g, a_g)
        if b in covered:
            accumulate(b, jnp.swapaxes(s_groups[0], 0, 1))  # the value group only

    if fallback:
        start = [leaves[i] for i in fallback]
        if sum(leaf.size for leaf in start) <= _FORWARD_LIMIT:
            cols = jax.jacfwd(lambda v: _traced(residual, treedef, with_fallback(v), points, None)[0])(start)
        else:

            def one(v, x):
                return _traced(residual, treedef, with_fallback(v), x[None], None)[0][0]

            cols = jax.vmap(jax.jacrev(one), in_axes=(None, 0))(start, points)
        for i, c in zip(fallback, cols):
            accumulate(i, c)

    flat = [
        jnp.zeros((n_points, k, leaf.size), dtype) if blk is None else blk.reshape(n_points, k, -1)
        for leaf, blk in zip(leaves, blocks)
    ]
    return jnp.concatenate(flat, axis=-1).reshape(n_points * k, -1)
