"""The forward derivative engine: value, Jacobian and the requested higher derivatives of an
MLP at one point, propagated layer by layer in a single pass.

For a layer ``z = W a + b``, ``a' = A(z)``, and one input axis ``k``, write ``z1, z2, z3, z4``
for the first four derivatives of ``z`` along ``x_k`` (each is ``W`` times the carried
derivative of ``a``; the bias drops out). The chain rule (Faa di Bruno) gives

    a1 = A' z1                                          seed eq. (14)
    a2 = A'' z1^2 + A' z2                               seed eq. (23), stable form
    a3 = A''' z1^3 + 3 A'' z1 z2 + A' z3                seed eqs. (27)-(31) with k = m
    a4 = A'''' z1^4 + 6 A''' z1^2 z2 + A'' (3 z2^2 + 4 z1 z3) + A' z4

(The seed's eq. (31) writes ``2 A'' sum_q w H_qkm`` for the second term; differentiating
``A''(z) z1_k^2`` gives ``2 A'' z1_k z2_km``: the factor ``z1_k`` is missing there. The form
above is checked against ``jax.jacfwd`` in the tests.) A mixed pair ``(i, j)`` carries
``a_ij = A'' z1_i z1_j + A' z2_ij`` (seed eq. 22), and a contraction ``c`` carries
``a_c = A'' sum_k c_k z1_k^2 + A' z_c`` (eq. 23 summed over ``k``), one column instead of d.

Each carried group is a ``(rows, width)`` matrix, so a layer is one matmul per group. At the
first layer the input Jacobian is the identity and every higher
derivative is zero, so ``z1 = W[:, k]`` is the same for all points and the matmul is skipped.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap

from ._activations import AbstractActivation, Identity, get_activation
from ._request import Jet, Request


class Stage(eqx.Module):
    """One dense layer followed by an elementwise activation: ``A(W a + b)``."""

    weight: jax.Array  # (out, in)
    bias: jax.Array | None  # (out,) or None
    activation: AbstractActivation


@dataclasses.dataclass(frozen=True)
class _Plan:
    """Static layout of the carried groups, derived from a Request:
    ``[value, D1 (axes a1), D2 (axes a2), contractions, mixed, D3 (a3), D4 (a4)]``, where
    ``D_n`` holds the n-th derivative along each axis of its group, one row per axis."""

    a1: tuple[int, ...]
    a2: tuple[int, ...]
    a3: tuple[int, ...]
    a4: tuple[int, ...]
    weights: tuple[tuple[float, ...], ...]  # contraction weights over a1
    mixed: tuple[tuple[int, int], ...]  # positions within a1
    order: int

    def pos_in(self, src: str, dst: str) -> tuple[int, ...]:
        """Positions within axis group ``src`` of each axis of group ``dst``."""
        a, b = getattr(self, src), getattr(self, dst)
        return tuple(a.index(k) for k in b)


@functools.lru_cache(maxsize=256)
def _make_plan(request: Request) -> _Plan:
    a4 = tuple(sorted(request.fourth))
    a3 = tuple(sorted(set(request.third) | set(a4)))
    a2 = tuple(sorted(set(request.second) | set(a3)))
    contracted = {k for w in request.contractions for k, c in enumerate(w) if c != 0.0}
    mixed_axes = {k for pair in request.mixed for k in pair}
    a1 = tuple(sorted(set(request.first) | set(a2) | contracted | mixed_axes))
    weights = tuple(tuple(w[k] for k in a1) for w in request.contractions)
    mixed = tuple((a1.index(i), a1.index(j)) for i, j in request.mixed)
    return _Plan(a1, a2, a3, a4, weights, mixed, request.max_order)


# The recursion runs on a batch of points at once. A group is ``(batch, rows, width)``, or
# ``(batch, width)`` when it has exactly one row: a unit axis costs broadcasts, reductions and
# layout copies in the backward pass (measured: a 1.4x slower step for the Laplacian alone).
# Each group's matmul is one 2-D GEMM ``(batch * rows, width) @ W.T``: with the batch folded
# into the rows, the weight gradient in the backward pass is a plain GEMM too, with no
# transposed copy of the carried Jacobian (measured: 1.35x faster than vmapping a per-point
# pass at d = 50). At the first layer a group may have batch size 1 (shared by all points).


def _rows(g: jax.Array) -> jax.Array:
    """The group as a ``(batch, rows, width)`` array."""
    return g[:, None, :] if g.ndim == 2 else g


def _take(g: jax.Array, positions: tuple[int, ...]) -> jax.Array:
    """Rows ``positions`` of group ``g``, in group storage. Contiguous positions are a static
    slice (a gather and its scatter-add transpose are slow on CPU; a slice is free)."""
    if g.ndim == 2:  # one-row group: every position is 0
        return g if len(positions) == 1 else jnp.stack([g] * len(positions), axis=1)
    if len(positions) == 1:
        return g[:, positions[0]]
    lo = positions[0]
    if positions == tuple(range(lo, lo + len(positions))):
        return g if (lo == 0 and len(positions) == g.shape[1]) else g[:, lo : lo + len(positions)]
    return g[:, np.asarray(positions, dtype=np.int32)]


def _contract(weights: tuple[tuple[float, ...], ...], sq: jax.Array) -> jax.Array:
    """``sum_k c_k sq[:, k]`` for each weight vector ``c``, in group storage."""
    sq = _rows(sq)
    out = []
    for w in weights:
        if all(c == 1.0 for c in w):
            out.append(jnp.sum(sq, axis=1))
        else:
            out.append(jnp.einsum("k,bkw->bw", jnp.asarray(w, sq.dtype), sq))
    return out[0] if len(out) == 1 else jnp.stack(out, axis=1)


def _add(zero, *terms):
    """Sum of the terms that are not None (None stands for an exact zero); ``zero()`` when
    all are None."""
    terms = [t for t in terms if t is not None]
    if not terms:
        return zero()
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def _scale(sk: jax.Array, g: jax.Array) -> jax.Array:
    """``sk * g`` for an activation derivative ``sk`` (batch, width) and a group ``g``,
    broadcast explicitly over the rows (works under ``jax_numpy_rank_promotion="raise"``)."""
    return sk * g if g.ndim == 2 else sk[:, None, :] * g


def _combine(plan: _Plan, z: list, s: list, act: AbstractActivation) -> list:
    """Apply the activation to the pre-activation groups ``z = [z0, Z1, Z2, ZC, ZM, Z3, Z4]``
    (``z0`` is ``(batch, width)``, the others groups, None for an exact zero, as at the first
    layer). ``s = [A, A', ...]`` evaluated at ``z0``."""
    z0, Z1, Z2, ZC, ZM, Z3, Z4 = z
    out = [s[0]] + [None] * 6
    if not plan.a1:
        return out
    out[1] = _scale(s[1], Z1)
    if plan.order < 2:
        return out
    curved = not act.is_linear  # A'' != 0

    def zero(n):
        return lambda: jnp.zeros(z0.shape[:1] + ((n,) if n > 1 else ()) + z0.shape[1:], z0.dtype)

    if plan.a2:
        z1 = _take(Z1, plan.pos_in("a1", "a2"))
        out[2] = _add(zero(len(plan.a2)), _scale(s[2], z1 * z1) if curved else None, None if Z2 is None else _scale(s[1], Z2))
    if plan.weights:
        out[3] = _add(zero(len(plan.weights)), _scale(s[2], _contract(plan.weights, Z1 * Z1)) if curved else None, None if ZC is None else _scale(s[1], ZC))
    if plan.mixed:
        ii = tuple(p[0] for p in plan.mixed)
        jj = tuple(p[1] for p in plan.mixed)
        out[4] = _add(zero(len(plan.mixed)), _scale(s[2], _take(Z1, ii) * _take(Z1, jj)) if curved else None, None if ZM is None else _scale(s[1], ZM))
    if plan.a3:
        z1 = _take(Z1, plan.pos_in("a1", "a3"))
        z2 = None if Z2 is None else _take(Z2, plan.pos_in("a2", "a3"))
        out[5] = _add(
            zero(len(plan.a3)),
            None if Z3 is None else _scale(s[1], Z3),
            _scale(s[3], z1**3) if curved else None,
            _scale(3 * s[2], z1 * z2) if (curved and z2 is not None) else None,
        )
    if plan.a4:
        z1 = _take(Z1, plan.pos_in("a1", "a4"))
        z2 = None if Z2 is None else _take(Z2, plan.pos_in("a2", "a4"))
        z3 = None if Z3 is None else _take(Z3, plan.pos_in("a3", "a4"))
        out[6] = _add(
            zero(len(plan.a4)),
            None if Z4 is None else _scale(s[1], Z4),
            _scale(s[4], z1**4) if curved else None,
            (_scale(6 * s[3], z1 * z1) + _scale(3 * s[2], z2)) * z2 if (curved and z2 is not None) else None,
            _scale(4 * s[2], z1 * z3) if (curved and z3 is not None) else None,
        )
    return out


def _first_stage(plan: _Plan, stage: Stage, xs: jax.Array) -> list:
    """The layer that sees the input: ``J0 = I`` and higher derivatives are zero, so the
    derivative rows of ``z`` are columns of ``W``, shared by every point (no matmul)."""
    W = stage.weight
    z0 = xs @ W.T
    if stage.bias is not None:
        z0 = z0 + stage.bias[None, :]
    Z1 = _take(W.T[None], plan.a1) if plan.a1 else None  # batch 1: the same for every point
    table = stage.activation.table(z0, plan.order)
    return _combine(plan, [z0, Z1, None, None, None, None, None], table, stage.activation)


def _matmul(g: jax.Array, W: jax.Array, fold: bool) -> jax.Array:
    """``g @ W.T`` for a group: with ``fold``, one 2-D GEMM over batch and rows. Without it
    (a single point, which a caller may vmap), a dot_general that vmap batches well: folding
    a batch of one would make vmap's batch a transposed axis of every matmul."""
    if g.ndim == 2:
        return g @ W.T
    if not fold:
        return jnp.einsum("brw,ow->bro", g, W)
    b, r, w = g.shape
    return (g.reshape(b * r, w) @ W.T).reshape(b, r, W.shape[0])


def _next_stage(plan: _Plan, stage: Stage, carried: list, fold: bool) -> list:
    """A hidden or output layer: each carried group times ``W.T``, then the activation.
    (Separate matmuls beat one matmul of the concatenated groups: the concatenation and its
    transpose in the backward pass cost more memory traffic than they save.)"""
    W = stage.weight
    z = [None if g is None else _matmul(g, W, fold) for g in carried]
    if stage.bias is not None:
        z[0] = z[0] + stage.bias[None, :]
    if isinstance(stage.activation, Identity):
        return z
    table = stage.activation.table(z[0], plan.order)
    return _combine(plan, z, table, stage.activation)


def _to_jet(plan: _Plan, request: Request, groups: list) -> Jet:
    value, D1, D2, C, M, D3, D4 = groups
    batch, n_out = value.shape
    empty = jnp.zeros((batch, n_out, 0), value.dtype)

    def columns(D):  # (batch, rows, n_out) -> (batch, n_out, rows)
        return jnp.swapaxes(_rows(D), 1, 2)

    def pick(D, axes_from, axes_to):
        if not axes_to:
            return empty
        return columns(_take(D, tuple(axes_from.index(k) for k in axes_to)))

    return Jet(
        value=value,
        first=pick(D1, plan.a1, request.first),
        second=pick(D2, plan.a2, request.second),
        mixed=columns(M) if plan.mixed else empty,
        contractions=(
            empty if not plan.weights
            # every weight zero: nothing was propagated and the contraction is exactly zero
            else jnp.zeros((batch, n_out, len(plan.weights)), value.dtype) if C is None
            else columns(C)
        ),
        third=pick(D3, plan.a3, request.third),
        fourth=pick(D4, plan.a4, request.fourth),
    )


def propagate_stages(stages: Sequence[Stage], xs: jax.Array, request: Request, *, fold: bool = True) -> Jet:
    """Push value and requested derivatives through ``stages`` at a batch of points ``xs``
    of shape (batch, d); every array of the returned Jet has the batch axis first."""
    plan = _make_plan(request)
    carried = _first_stage(plan, stages[0], xs)
    for stage in stages[1:]:
        carried = _next_stage(plan, stage, carried, fold)
    return _to_jet(plan, request, carried)


# ---------------------------------------------------------------------------------------------
# Recognising networks


def _eqx_linear_stage(layer: eqx.nn.Linear, activation) -> Stage:
    return Stage(layer.weight, layer.bias, activation)


def network_stages(model) -> list[Stage] | None:
    """The stage list of a network the engine knows, or ``None`` (then use the fallback)."""
    stages = getattr(model, "stages", None)
    if callable(stages):
        return list(stages())
    if isinstance(model, eqx.nn.MLP):
        if jax.tree_util.tree_leaves(eqx.filter((model.activation, model.final_activation), eqx.is_array)):
            return None  # learnt activations (arrays, one copy per neuron, e.g. PReLU): fallback
        act = get_activation(model.activation)
        final = get_activation(model.final_activation)
        if model.depth == 0 and not isinstance(final, Identity):
            return None  # equinox (0.13) skips final_activation at depth 0, older versions not: fallback
        layers = model.layers
        if getattr(model, "scan", False) and len(layers) == 3 and layers[1].weight.ndim == 3:
            # scan=True stores the hidden layers as one Linear with a leading layer axis
            first, hidden, last = layers
            inner = [
                Stage(hidden.weight[i], None if hidden.bias is None else hidden.bias[i], act)
                for i in range(hidden.weight.shape[0])
            ]
            return [_eqx_linear_stage(first, act)] + inner + [_eqx_linear_stage(last, final)]
        return [_eqx_linear_stage(l, act) for l in layers[:-1]] + [_eqx_linear_stage(layers[-1], final)]
    if isinstance(model, eqx.nn.Linear):
        return [_eqx_linear_stage(model, Identity())]
    return None


def _model_output_is_scalar(model) -> bool:
    return getattr(model, "out_size", None) == "scalar"


def _model_in_size(model):
    size = getattr(model, "in_size", None)
    return 1 if size == "scalar" else size


def _check_points(model, xs, batched: bool) -> None:
    """Raise a named error when ``xs`` is not one point (or a batch of points) of the shape
    the model takes."""
    want = 2 if batched else 1
    if not hasattr(xs, "shape") or xs.ndim != want:
        what = "a batch of points of shape (batch, d)" if batched else "one point of shape (d,)"
        hint = "" if batched else "; for a batch use jet_batch (or jax.vmap)"
        raise ValueError(f"the derivative engine takes {what}, got shape {getattr(xs, 'shape', type(xs))}{hint}")
    expected = _model_in_size(model)
    if isinstance(expected, int) and xs.shape[-1] != expected:
        raise ValueError(f"point has {xs.shape[-1]} coordinate(s) but the network takes {expected}")
    if not jnp.issubdtype(xs.dtype, jnp.floating):
        raise TypeError(f"point must be a floating-point array, got dtype {xs.dtype}")


def check_point(model, x) -> None:
    """Raise a named error when ``x`` is not one point of the shape the model takes."""
    _check_points(model, x, batched=False)


def jet(model: Callable, x: jax.Array, request: Request, *, fallback: bool | None = None) -> Jet:
    """Value and requested derivatives of ``model`` at one point ``x`` (shape ``(d,)``).

    Known networks (``pinnjax.nn.MLP``, ``eqx.nn.MLP``, ``eqx.nn.Linear``) go through the
    layer-by-layer recursion; anything else through nested ``jax.jvp`` (exact, slower).
    ``fallback=True`` forces the nested-jvp path (used by the tests as the reference).
    Under ``jax.vmap`` over points this runs as :func:`jet_batch` (one batched pass).
    """
    x = jnp.asarray(x)
    check_point(model, x)
    request.check(x.shape[0])
    params, static = eqx.partition(model, eqx.is_array)

    def one(p, point):
        out = _jet_batch(eqx.combine(p, static), point[None], request, fallback, fold=False)
        return jax.tree.map(lambda a: a[0], out)

    @custom_vmap
    def point_jet(p, point):
        return one(p, point)

    @point_jet.def_vmap
    def batched(axis_size, in_batched, p, points):
        p_batched, x_batched = in_batched
        if x_batched and not any(jax.tree.leaves(p_batched)):
            out = _jet_batch(eqx.combine(p, static), points, request, fallback, fold=True)
        else:  # an ensemble of networks, or one point for many networks: plain vmap
            axes = (jax.tree.map(lambda b: 0 if b else None, p_batched), 0 if x_batched else None)
            out = jax.vmap(one, in_axes=axes, axis_size=axis_size)(p, points)
        return out, jax.tree.map(lambda _: True, out)

    return point_jet(params, x)


def jet_batch(model: Callable, xs: jax.Array, request: Request, *, fallback: bool | None = None) -> Jet:
    """:func:`jet` at a batch of points ``xs`` (shape ``(batch, d)``); every array of the
    returned Jet has the batch axis first. The recursion runs on the whole batch at once, so
    each layer is a few large matmuls; this is what the trainer uses."""
    xs = jnp.asarray(xs)
    _check_points(model, xs, batched=True)
    return _jet_batch(model, xs, request, fallback)


def _jet_batch(model, xs, request, fallback, fold=True):
    request.check(xs.shape[-1])
    stages = None if fallback else network_stages(model)
    if stages is None:
        from ._fallback import jet_autodiff

        fn = model
        if getattr(model, "in_size", None) == "scalar":
            fn = lambda p: model(p[0])  # noqa: E731
        return jax.vmap(lambda p: jet_autodiff(_as_vector_fn(fn), p, request))(xs)
    return propagate_stages(stages, xs, request, fold=fold)


def _as_vector_fn(fn):
    def vector_fn(p):
        return jnp.atleast_1d(fn(p))

    return vector_fn
