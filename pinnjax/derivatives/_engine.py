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


# A group with exactly one row is stored as a (width,) vector, not (1, width): under vmap a
# (batch, 1, width) array costs broadcasts, reductions over the unit axis and layout copies in
# the backward pass (measured: a 1.4x slower training step for the Laplacian alone).


def _rows(g: jax.Array) -> jax.Array:
    """The group as a (rows, width) matrix."""
    return g[None] if g.ndim == 1 else g


def _group(rows: jax.Array) -> jax.Array:
    """A (rows, width) matrix in group storage (a vector when there is one row)."""
    return rows[0] if rows.shape[0] == 1 else rows


def _take(g: jax.Array, positions: tuple[int, ...]) -> jax.Array:
    """Rows ``positions`` of group ``g``, in group storage. Contiguous positions are a static
    slice (a gather and its scatter-add transpose are slow on CPU; a slice is free)."""
    if g.ndim == 1:  # one-row group: every position is 0
        return g if len(positions) == 1 else jnp.stack([g] * len(positions))
    if len(positions) == 1:
        return g[positions[0]]
    lo = positions[0]
    if positions == tuple(range(lo, lo + len(positions))):
        return g if (lo == 0 and len(positions) == g.shape[0]) else g[lo : lo + len(positions)]
    return g[np.asarray(positions, dtype=np.int32)]


def _contract(weights: tuple[tuple[float, ...], ...], sq: jax.Array) -> jax.Array:
    """``sum_k c_k sq[k]`` for each weight vector ``c``, in group storage."""
    sq = _rows(sq)
    out = []
    for w in weights:
        if all(c == 1.0 for c in w):
            out.append(jnp.sum(sq, axis=0))
        else:
            out.append(jnp.tensordot(jnp.asarray(w, sq.dtype), sq, axes=1))
    return out[0] if len(out) == 1 else jnp.stack(out)


def _add(zero, *terms):
    """Sum of the terms that are not None (None stands for an exact zero); ``zero`` when
    all are None."""
    terms = [t for t in terms if t is not None]
    if not terms:
        return zero
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def _scale(sk: jax.Array, g: jax.Array) -> jax.Array:
    """``sk * g`` for an activation derivative ``sk`` (width,) and a group ``g`` in group
    storage, broadcast explicitly over the rows (works under ``jax_numpy_rank_promotion="raise"``)."""
    return sk * g if g.ndim == 1 else sk[None, :] * g


def _combine(plan: _Plan, z: list, s: list, act: AbstractActivation) -> list:
    """Apply the activation to the pre-activation groups ``z = [z0, Z1, Z2, ZC, ZM, Z3, Z4]``
    (``z0`` is ``(width,)``, the others ``(rows, width)``, None for an exact zero, as at the
    first layer). ``s = [A, A', ...]`` evaluated at ``z0``."""
    z0, Z1, Z2, ZC, ZM, Z3, Z4 = z
    out = [s[0]] + [None] * 6
    if not plan.a1:
        return out
    out[1] = _scale(s[1], Z1)
    if plan.order < 2:
        return out
    curved = not act.is_linear  # A'' != 0

    def zero(n):
        return jnp.zeros(((n,) if n > 1 else ()) + z0.shape, z0.dtype)

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


def _first_stage(plan: _Plan, stage: Stage, x: jax.Array) -> list:
    """The layer that sees the input: ``J0 = I`` and higher derivatives are zero, so the
    derivative rows of ``z`` are columns of ``W``, shared by every point (no matmul)."""
    W = stage.weight
    z0 = W @ x
    if stage.bias is not None:
        z0 = z0 + stage.bias
    Z1 = _take(W.T, plan.a1) if plan.a1 else None  # (n1, width)
    table = stage.activation.table(z0, plan.order)
    return _combine(plan, [z0, Z1, None, None, None, None, None], table, stage.activation)


def _next_stage(plan: _Plan, stage: Stage, carried: list) -> list:
    """A hidden or output layer: each carried group times ``W.T``, then the activation.
    (Separate matmuls beat one matmul of the concatenated groups: the concatenation and its
    transpose in the backward pass cost more memory traffic than they save.)"""
    W = stage.weight
    z = [None if g is None else g @ W.T for g in carried]
    if stage.bias is not None:
        z[0] = z[0] + stage.bias
    if isinstance(stage.activation, Identity):
        return z
    table = stage.activation.table(z[0], plan.order)
    return _combine(plan, z, table, stage.activation)


def _to_jet(plan: _Plan, request: Request, groups: list) -> Jet:
    value, D1, D2, C, M, D3, D4 = groups
    n_out = value.shape[0]
    empty = jnp.zeros((n_out, 0), value.dtype)

    def pick(D, axes_from, axes_to):
        if not axes_to:
            return empty
        return _rows(_take(D, tuple(axes_from.index(k) for k in axes_to))).T

    return Jet(
        value=value,
        first=pick(D1, plan.a1, request.first),
        second=pick(D2, plan.a2, request.second),
        mixed=_rows(M).T if plan.mixed else empty,
        contractions=(
            empty if not plan.weights
            # every weight zero: nothing was propagated and the contraction is exactly zero
            else jnp.zeros((n_out, len(plan.weights)), value.dtype) if C is None
            else _rows(C).T
        ),
        third=pick(D3, plan.a3, request.third),
        fourth=pick(D4, plan.a4, request.fourth),
    )


def propagate_stages(stages: Sequence[Stage], x: jax.Array, request: Request) -> Jet:
    """Push value and requested derivatives through ``stages`` at one point ``x`` of shape (d,)."""
    plan = _make_plan(request)
    carried = _first_stage(plan, stages[0], x)
    for stage in stages[1:]:
        carried = _next_stage(plan, stage, carried)
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


def check_point(model, x) -> None:
    """Raise a named error when ``x`` is not one point of the shape the model takes."""
    if not hasattr(x, "shape") or x.ndim != 1:
        raise ValueError(
            f"the derivative engine takes one point of shape (d,), got shape {getattr(x, 'shape', type(x))}; "
            "batch with jax.vmap"
        )
    expected = _model_in_size(model)
    if isinstance(expected, int) and x.shape[0] != expected:
        raise ValueError(f"point has {x.shape[0]} coordinate(s) but the network takes {expected}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"point must be a floating-point array, got dtype {x.dtype}")


def jet(model: Callable, x: jax.Array, request: Request, *, fallback: bool | None = None) -> Jet:
    """Value and requested derivatives of ``model`` at one point ``x`` (shape ``(d,)``).

    Known networks (``pinnjax.nn.MLP``, ``eqx.nn.MLP``, ``eqx.nn.Linear``) go through the
    layer-by-layer recursion; anything else through nested ``jax.jvp`` (exact, slower).
    ``fallback=True`` forces the nested-jvp path (used by the tests as the reference).
    """
    x = jnp.asarray(x)
    check_point(model, x)
    request.check(x.shape[0])
    stages = None if fallback else network_stages(model)
    if stages is None:
        from ._fallback import jet_autodiff

        fn = model
        if _model_in_size(model) == 1 and getattr(model, "in_size", None) == "scalar":
            fn = lambda p: model(p[0])  # noqa: E731
        return jet_autodiff(_as_vector_fn(fn), x, request)
    return propagate_stages(stages, x, request)


def _as_vector_fn(fn):
    def vector_fn(p):
        return jnp.atleast_1d(fn(p))

    return vector_fn
