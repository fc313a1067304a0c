"""The engine's carried value and the operations a network is written in.

A :class:`Carried` is a hidden quantity ``h`` (batch, width) together with the derivative
groups a :class:`Plan` asks for. A network writes its forward pass ONCE with the operations
below (``linear``, ``activate``, ``add``, ``scale``, ``multiply``, ``concatenate``); called on
a plain point they compute ``h``, called on a Carried they also push every derivative group
through. So ``model(x)`` and the engine's jet come from the same definition.

Group layout (each group a ``(batch, rows, width)`` array, or ``(batch, width)`` when it has
one row; ``None`` is an exact zero; batch may be 1 when shared by every point):

    D1, D2, D3, D4  n-th derivative along each axis of the plan's axis groups a1..a4
    C               contractions sum_k c_k d2/dx_k^2 (one row per weight vector)
    M               mixed pairs d2/dx_i dx_j
    X               mixed multi-indices of order 3 and 4 (d3/dx_i^2 dx_j, d4/dx_i^2 dx_j^2, ...)
    Q               the biharmonic block [L, d_i L (i in K), L^2] for L = sum_k c_k d2/dx_k^2,
                    K the axes with c_k != 0

Chain rule for an elementwise ``a = A(z)`` along one axis (seed eqs. 14, 23, 27-31):

    a1 = A' z1
    a2 = A'' z1^2 + A' z2
    a3 = A''' z1^3 + 3 A'' z1 z2 + A' z3
    a4 = A'''' z1^4 + 6 A''' z1^2 z2 + A'' (3 z2^2 + 4 z1 z3) + A' z4

(the seed's eq. (31) lacks the factor ``z1`` in ``2 A'' z1 z2``; the form above is checked
against ``jax.jacfwd`` in the tests). A mixed pair is ``A'' z_i z_j + A' z_ij`` (eq. 22), a
contraction ``A'' sum_k c_k z_k^2 + A' z_c`` (eq. 23 summed). A mixed multi-index ``S`` is the
general Faa di Bruno sum over the set partitions of ``S``: ``sum_pi A^(|pi|) prod_B z_B``.
A product follows Leibniz: ``d_S (a b) = sum_{T subset S} d_T a d_{S-T} b``.

For the biharmonic ``L^2`` with ``S = sum_k c_k z_k^2``, ``H`` the Hessian of ``z`` over K,
``T_i = d_i L z`` and ``G_i = sum_k c_k z_k H_ki``:

    L a     = A'' S + A' Lz
    T_i a   = A''' z_i S + A'' (2 G_i + z_i Lz) + A' T_i z
    L^2 a   = A'''' S^2 + A''' (2 S Lz + 4 sum_i c_i z_i G_i)
              + A'' (2 sum_ik c_i c_k H_ik^2 + 4 sum_i c_i z_i T_i + (Lz)^2) + A' L^2 z

(differentiate ``L a`` along ``x_i``, then contract). So it carries ``|K| + 2`` columns on top
of the Hessian over K, never the ``d^2`` fourth derivatives ``u_iijj``.
"""

from __future__ import annotations

import abc
import collections
import dataclasses
import functools
import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._activations import AbstractActivation, Identity, get_activation
from ._request import Estimator, Request

D1, D2, C, M, D3, D4, X, Q = range(8)
N_GROUPS = 8


# ---------------------------------------------------------------------------------------------
# The plan: which groups, which rows


@dataclasses.dataclass(frozen=True)
class Plan:
    """Static layout of the carried groups, derived from a Request (closed over every lower
    derivative the chain and product rules read)."""

    a1: tuple[int, ...]
    a2: tuple[int, ...]
    a3: tuple[int, ...]
    a4: tuple[int, ...]
    weights: tuple[tuple[float, ...], ...]  # contraction weights over a1
    mixed: tuple[tuple[int, int], ...]  # positions within a1
    multi: tuple[tuple[int, ...], ...]  # sorted axis multisets of order 3-4 (>= 2 distinct axes)
    bilap: tuple[float, ...]  # biharmonic weights c_k over the axes of K, or ()
    bilap_axes: tuple[int, ...]  # K: the axes with c_k != 0
    order: int
    # Estimated contractions (Request.estimator): the input has ``dim`` axes; a1 ends with one
    # virtual axis ``dim + j * samples + n`` per random direction n of contraction j, and
    # ``directions[j]`` is (its support axes, sqrt|c_k| on them) from which they are drawn.
    estimator: Estimator | None = None
    dim: int = 0
    directions: tuple = ()

    @property
    def real_a1(self) -> tuple[int, ...]:
        """The axes of a1 that are input coordinates (not random directions)."""
        return tuple(k for k in self.a1 if not self.estimator or k < self.dim)

    @property
    def n_directions(self) -> int:
        return len(self.a1) - len(self.real_a1)

    def pos_in(self, src: str, dst: str) -> tuple[int, ...]:
        """Positions within axis group ``src`` of each axis of group ``dst``."""
        a, b = getattr(self, src), getattr(self, dst)
        return tuple(a.index(k) for k in b)

    @property
    def mixed_axes(self) -> tuple[tuple[int, int], ...]:
        return tuple((self.a1[i], self.a1[j]) for i, j in self.mixed)

    def rows(self, group: int) -> int:
        return (
            len(self.a1), len(self.a2), len(self.weights), len(self.mixed),
            len(self.a3), len(self.a4), len(self.multi), len(self.bilap_axes) + 2 if self.bilap else 0,
        )[group]

    def locate(self, S: tuple[int, ...]) -> tuple[int, int]:
        """``(group, row)`` of the derivative along the sorted axis multiset ``S``."""
        if len(set(S)) == 1:
            group = (D1, D2, D3, D4)[len(S) - 1]
            return group, (self.a1, self.a2, self.a3, self.a4)[len(S) - 1].index(S[0])
        if len(S) == 2:
            return M, self.mixed_axes.index(S)
        return X, self.multi.index(S)


def _sub_multisets(S: tuple[int, ...]):
    """Every nonempty sub-multiset of ``S`` (sorted tuples), ``S`` included."""
    return {tuple(sorted(c)) for n in range(1, len(S) + 1) for c in itertools.combinations(S, n)}


@functools.lru_cache(maxsize=256)
def make_plan(request: Request) -> Plan:
    axes = {n: set() for n in (1, 2, 3, 4)}
    axes[4] |= set(request.fourth)
    axes[3] |= set(request.third)
    axes[2] |= set(request.second)
    axes[1] |= set(request.first)
    mixed_axes = set(request.mixed)
    multi = set()
    K = tuple(k for k, c in enumerate(request.bilaplacian) if c != 0.0)
    needed = set(request.multi)
    if K:  # the biharmonic reads the Hessian over K
        needed |= {(k, k) for k in K} | set(itertools.combinations(K, 2))
    for S in needed:
        for B in _sub_multisets(S):
            if len(set(B)) == 1:
                axes[len(B)].add(B[0])
            elif len(B) == 2:
                mixed_axes.add(B)
            else:
                multi.add(B)
    a4 = tuple(sorted(axes[4]))
    a3 = tuple(sorted(axes[3] | set(a4)))
    a2 = tuple(sorted(axes[2] | set(a3)))
    contracted = {k for w in request.contractions for k, c in enumerate(w) if c != 0.0}
    est, dim, directions, virtual = request.estimator, 0, (), ()
    if est is not None:  # the contractions are carried along random directions, not the axes
        dim, n = len(request.contractions[0]), est.samples
        contracted = set()
        virtual = tuple(range(dim, dim + n * len(request.contractions)))
        directions = tuple(
            (tuple(k for k, c in enumerate(w) if c != 0.0), tuple(abs(c) ** 0.5 for c in w if c != 0.0))
            for w in request.contractions
        )
    a1 = tuple(sorted(axes[1] | set(a2) | contracted | {k for p in mixed_axes for k in p} | set(K))) + virtual
    if est is None:
        weights = tuple(tuple(w[k] for k in a1) for w in request.contractions)
    else:
        weights = tuple(_estimator_weights(a1, dim + j * est.samples, w, est) for j, w in enumerate(request.contractions))
    mixed_pairs = tuple(request.mixed) + tuple(sorted(mixed_axes - set(request.mixed)))
    mixed = tuple((a1.index(i), a1.index(j)) for i, j in mixed_pairs)
    multi_all = tuple(request.multi) + tuple(sorted(multi - set(request.multi), key=lambda s: (len(s), s)))
    bilap = tuple(request.bilaplacian[k] for k in K)
    order = max(request.max_order, max((len(s) for s in multi_all), default=0), 4 if K else 0)
    return Plan(a1, a2, a3, a4, weights, mixed, multi_all, bilap, K, order, est, dim, directions)


def _estimator_weights(a1, first_virtual, w, est) -> tuple[float, ...]:
    """Weights over a1 of an estimated contraction: ``sign(c) / n`` on its ``n`` directions
    for Hutchinson, ``sign(c) m / n`` for ``n`` of the ``m`` axes with ``c_k != 0`` (sparse);
    the directions carry ``sqrt|c_k|``. A contraction that is all zero stays exactly zero."""
    m = sum(1 for c in w if c != 0.0)
    if m == 0:
        return (0.0,) * len(a1)
    sign = -1.0 if any(c < 0 for c in w) else 1.0
    n = est.samples
    value = sign * (m if est.method == "sparse" else 1) / n
    return tuple(value if first_virtual <= k < first_virtual + n else 0.0 for k in a1)


@functools.lru_cache(maxsize=None)
def _faa_di_bruno_terms(S: tuple[int, ...]):
    """``d_S A(z) = sum over set partitions pi of S: A^(|pi|) prod_{B in pi} z_B``, with equal
    terms merged: a tuple of ``(|pi|, count, blocks)``."""

    def partitions(items):
        if not items:
            yield []
            return
        first, rest = items[0], items[1:]
        for p in partitions(rest):
            yield [[first]] + p
            for i in range(len(p)):
                yield p[:i] + [[first] + p[i]] + p[i + 1 :]

    counts = collections.Counter()
    for p in partitions(list(range(len(S)))):
        blocks = tuple(sorted(tuple(sorted(S[i] for i in B)) for B in p))
        counts[(len(p), blocks)] += 1
    return tuple((m, n, blocks) for (m, blocks), n in sorted(counts.items()))


@functools.lru_cache(maxsize=None)
def _leibniz_terms(S: tuple[int, ...]):
    """``d_S (a b) = sum_{T subset S} d_T a d_{S-T} b`` with equal terms merged:
    a tuple of ``(count, T, S - T)``."""
    counts = collections.Counter()
    for mask in range(2 ** len(S)):
        T = tuple(S[i] for i in range(len(S)) if mask >> i & 1)
        R = tuple(S[i] for i in range(len(S)) if not mask >> i & 1)
        counts[(T, R)] += 1
    return tuple((n, T, R) for (T, R), n in sorted(counts.items()))


# ---------------------------------------------------------------------------------------------
# Group storage helpers
#
# The recursion runs on a batch of points at once. A group with exactly one row is stored as
# ``(batch, width)``: a unit axis costs broadcasts, reductions and layout copies in the
# backward pass (measured: a 1.4x slower step for the Laplacian alone). Each group's matmul is
# one 2-D GEMM ``(batch * rows, width) @ W.T``: with the batch folded into the rows, the weight
# gradient in the backward pass is a plain GEMM too (measured: 1.35x faster than vmapping a
# per-point pass at d = 50).


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


def _stack_rows(rows: list) -> jax.Array:
    """Rows ``(batch, width)`` as one group in storage form."""
    if len(rows) == 1:
        return rows[0]
    batch = max(r.shape[0] for r in rows)
    return jnp.stack([jnp.broadcast_to(r, (batch,) + r.shape[1:]) for r in rows], axis=1)


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


def _sum(zero, *terms):
    """Sum of the terms that are not None (None stands for an exact zero); ``zero()`` when
    all are None."""
    terms = [t for t in terms if t is not None]
    if not terms:
        return zero()
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def _maybe_sum(*terms):
    """Sum of the terms that are not None; None when all are."""
    return _sum(lambda: None, *terms)


def _scale(sk: jax.Array, g: jax.Array) -> jax.Array:
    """``sk * g`` for a ``(batch, width)`` factor and a group ``g``, broadcast explicitly over
    the rows (works under ``jax_numpy_rank_promotion="raise"``)."""
    return sk * g if g.ndim == 2 else sk[:, None, :] * g


def _times(a, b):
    """``a * b`` of two groups or rows (or a number), None (exact zero) if either is."""
    if a is None or b is None:
        return None
    if isinstance(a, float) or isinstance(b, float):
        return a * b
    if a.ndim != b.ndim:
        a, b = _rows(a), _rows(b)
    return a * b


def _row(g, r):
    if g is None:
        return None
    return g if g.ndim == 2 else g[:, r]


# ---------------------------------------------------------------------------------------------
# The carried value


class Carried(eqx.Module):
    """A hidden quantity of a batch of points and its derivative groups (see module docs).

    The network's input is a Carried in *input state* (``identity``): the point ``s * x + t``
    with a per-axis affine map (``None`` for none), whose first derivatives are the rows of
    ``diag(s)`` and whose higher derivatives vanish. :func:`linear` folds it into the weight,
    so the first dense layer needs no matmul for its derivative groups."""

    value: jax.Array
    groups: tuple
    input_scale: jax.Array | None = None
    input_shift: jax.Array | None = None
    # the random directions of an estimated contraction (input state only): a (batch, n, d)
    # array (hutchinson), or (axes, scales), each (batch, n), for scaled axes (sparse)
    directions: object = None
    plan: Plan = eqx.field(static=True, default=None)
    fold: bool = eqx.field(static=True, default=True)
    identity: bool = eqx.field(static=True, default=False)

    @classmethod
    def input(cls, xs: jax.Array, plan: Plan, fold: bool = True, directions=None) -> "Carried":
        if plan.n_directions and directions is None:
            raise ValueError("this request estimates its contractions from random directions: pass a PRNG key")
        return cls(xs, (None,) * N_GROUPS, None, None, directions, plan, fold, True)

    def replace(self, value, groups) -> "Carried":
        return Carried(value, tuple(groups), None, None, None, self.plan, self.fold, False)

    def row(self, S: tuple[int, ...]):
        """The derivative along the sorted axis multiset ``S`` (``()``: the value)."""
        if not S:
            return self.value
        group, r = self.plan.locate(S)
        return _row(self.groups[group], r)

    def materialize(self) -> "Carried":
        """The input state written out as ordinary groups."""
        if not self.identity:
            return self
        xs, plan = self.value, self.plan
        d = xs.shape[-1]
        s = jnp.ones((d,), xs.dtype) if self.input_scale is None else self.input_scale
        value = xs * s[None, :] if self.input_scale is not None else xs
        if self.input_shift is not None:
            value = value + self.input_shift[None, :]
        groups = [None] * N_GROUPS
        if plan.a1:
            groups[D1] = self._first_rows((jnp.eye(d, dtype=xs.dtype) * s[None, :]).T)
        return self.replace(value, groups)

    def _first_rows(self, W: jax.Array) -> jax.Array:
        """The first-derivative rows after the input map ``x -> W x`` (``W`` already scaled
        by the input map): columns of ``W`` along the real axes of a1 (shared by every point,
        batch 1), then ``W v`` along each random direction ``v`` (per point)."""
        plan = self.plan
        real = plan.real_a1
        rows = [_rows(_take(W.T[None], real))] if real else []
        if plan.n_directions:
            if isinstance(self.directions, tuple):  # sparse: scaled columns of W, no matmul
                axes, scales = self.directions
                virtual = W.T[axes] * scales[:, :, None].astype(W.dtype)
            else:
                virtual = jnp.einsum("bnd,od->bno", self.directions.astype(W.dtype), W)
            if rows:
                batch = virtual.shape[0]
                rows = [jnp.broadcast_to(rows[0], (batch,) + rows[0].shape[1:])]
            rows.append(virtual)
        out = rows[0] if len(rows) == 1 else jnp.concatenate(rows, axis=1)
        return out[:, 0] if out.shape[1] == 1 else out


def _width(h) -> int:
    return h.value.shape[-1] if isinstance(h, Carried) else h.shape[-1]


# ---------------------------------------------------------------------------------------------
# Operations. Each takes plain arrays (one point, ``model(x)``) or Carried values (the engine).


def linear(h, weight, bias=None):
    """``W h + b``. ``weight`` may be a layer with ``.weight`` and ``.bias`` (then ``bias`` is
    taken from it). This is the one place every dense layer is applied: the carried groups of
    ``h`` are the layer's inputs, each multiplied by ``W.T``."""
    if hasattr(weight, "weight"):
        weight, bias = weight.weight, getattr(weight, "bias", None)
    out = _apply_linear(h, weight, bias)
    return LINEAR_RECORDERS[-1](h, weight, bias, out) if LINEAR_RECORDERS else out


# Active recorders of dense layers, innermost last: ``recorder(h, weight, bias, out)`` sees
# every ``linear`` call while a residual is traced and returns the output it hands on (the
# Kronecker-form parameter Jacobian of ``_param_jacobian.py`` records inputs and injects
# zero perturbations here). Empty outside that trace.
LINEAR_RECORDERS: list = []


def _apply_linear(h, weight, bias):
    if not isinstance(h, Carried):
        z = weight @ h
        return z if bias is None else z + bias
    if h.identity:
        return _linear_first(h, weight, bias)
    z = [None if g is None else _matmul(g, weight, h.fold) for g in h.groups]
    value = _matmul(h.value, weight, h.fold)
    if bias is not None:
        value = value + bias[None, :]
    return h.replace(value, z)


def _linear_first(h: Carried, W, b) -> Carried:
    """The layer that sees the input: ``J0 = diag(s)`` and higher derivatives are zero, so the
    derivative rows of ``z`` are (scaled) columns of ``W``, shared by every point (no matmul).
    The input map folds into the layer: ``W (s x + t) + b``."""
    if h.input_shift is not None:
        shift = W @ h.input_shift.astype(W.dtype)
        b = shift if b is None else shift + b
    if h.input_scale is not None:
        W = W * h.input_scale.astype(W.dtype)[None, :]
    value = h.value @ W.T
    if b is not None:
        value = value + b[None, :]
    groups = [None] * N_GROUPS
    if h.plan.a1:
        groups[D1] = h._first_rows(W)  # columns of W (batch 1), and W v per point and direction
    return h.replace(value, groups)


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


def activate(h, activation):
    """Elementwise ``A(h)`` (a name, a callable or an AbstractActivation)."""
    act = activation if isinstance(activation, AbstractActivation) else get_activation(activation)
    if not isinstance(h, Carried):
        return act(h)
    if isinstance(act, Identity):
        return h
    h = h.materialize()
    table = act.table(h.value, h.plan.order)
    return h.replace(table[0], _chain_rule(h, table, act))


def _chain_rule(h: Carried, s: list, act: AbstractActivation) -> list:
    """Derivative groups of ``A(z)`` from those of ``z`` (module docs); ``s = [A, A', ...]``."""
    plan = h.plan
    z0 = h.value
    Z1, Z2, ZC, ZM, Z3, Z4, _, _ = h.groups
    out = [None] * N_GROUPS
    if not plan.a1:
        return out
    out[D1] = None if Z1 is None else _scale(s[1], Z1)
    if plan.order < 2 or Z1 is None:
        return out
    curved = not act.is_linear  # A'' != 0

    def zero(n):
        return lambda: jnp.zeros(z0.shape[:1] + ((n,) if n > 1 else ()) + z0.shape[1:], z0.dtype)

    if plan.a2:
        z1 = _take(Z1, plan.pos_in("a1", "a2"))
        out[D2] = _sum(zero(len(plan.a2)), _scale(s[2], z1 * z1) if curved else None, None if Z2 is None else _scale(s[1], Z2))
    if plan.weights:
        out[C] = _sum(zero(len(plan.weights)), _scale(s[2], _contract(plan.weights, Z1 * Z1)) if curved else None, None if ZC is None else _scale(s[1], ZC))
    if plan.mixed:
        ii = tuple(p[0] for p in plan.mixed)
        jj = tuple(p[1] for p in plan.mixed)
        out[M] = _sum(zero(len(plan.mixed)), _scale(s[2], _take(Z1, ii) * _take(Z1, jj)) if curved else None, None if ZM is None else _scale(s[1], ZM))
    if plan.a3:
        z1 = _take(Z1, plan.pos_in("a1", "a3"))
        z2 = None if Z2 is None else _take(Z2, plan.pos_in("a2", "a3"))
        out[D3] = _sum(
            zero(len(plan.a3)),
            None if Z3 is None else _scale(s[1], Z3),
            _scale(s[3], z1**3) if curved else None,
            _scale(3 * s[2], z1 * z2) if (curved and z2 is not None) else None,
        )
    if plan.a4:
        z1 = _take(Z1, plan.pos_in("a1", "a4"))
        z2 = None if Z2 is None else _take(Z2, plan.pos_in("a2", "a4"))
        z3 = None if Z3 is None else _take(Z3, plan.pos_in("a3", "a4"))
        out[D4] = _sum(
            zero(len(plan.a4)),
            None if Z4 is None else _scale(s[1], Z4),
            _scale(s[4], z1**4) if curved else None,
            (_scale(6 * s[3], z1 * z1) + _scale(3 * s[2], z2)) * z2 if (curved and z2 is not None) else None,
            _scale(4 * s[2], z1 * z3) if (curved and z3 is not None) else None,
        )
    if plan.multi:  # general Faa di Bruno, one row per multi-index
        rows = []
        for S in plan.multi:
            terms = []
            for m, count, blocks in _faa_di_bruno_terms(S):
                if m > 1 and not curved:
                    continue
                prod = s[m] if count == 1 else count * s[m]
                for B in blocks:
                    prod = _times(prod, h.row(B))
                terms.append(prod)
            rows.append(_sum(zero(1), *terms))
        out[X] = _stack_rows(rows)
    if plan.bilap:
        out[Q] = _biharmonic_chain(h, s, curved)
    return out


def _hessian_rows(h: Carried):
    """Hessian of ``h`` over the biharmonic axes K as a nested list of rows (None for zero)."""
    K = h.plan.bilap_axes
    return [[h.row(tuple(sorted((i, k)))) for k in K] for i in K]


def _bilap_parts(h: Carried):
    """``(z_i, H_ik, L, T_i, L^2)`` of the biharmonic block, rows; None for an exact zero."""
    K = h.plan.bilap_axes
    grad = [h.row((k,)) for k in K]
    ZQ = h.groups[Q]
    if ZQ is None:
        L, T, L2 = None, [None] * len(K), None
    else:
        L, T, L2 = ZQ[:, 0], [ZQ[:, 1 + n] for n in range(len(K))], ZQ[:, -1]
    return grad, _hessian_rows(h), L, T, L2


def _weighted_sum(c, rows):
    return _maybe_sum(*[None if r is None else (r if ck == 1.0 else ck * r) for ck, r in zip(c, rows)])


def _biharmonic_chain(h: Carried, s: list, curved: bool) -> jax.Array:
    """The block ``[L a, T_i a, L^2 a]`` for ``a = A(z)`` (module docs)."""
    c = h.plan.bilap
    z, H, L, T, L2 = _bilap_parts(h)
    Sq = _weighted_sum(c, [zi * zi for zi in z])
    zero = jnp.zeros_like(h.value)
    if not curved:
        rows = [_times(s[1], L)] + [_times(s[1], t) for t in T] + [_times(s[1], L2)]
        return _stack_rows([zero if r is None else r for r in rows])
    G = [_weighted_sum(c, [_times(zk, Hik) for zk, Hik in zip(z, Hi)]) for Hi in H]
    La = _maybe_sum(s[2] * Sq, _times(s[1], L))
    Ta = [
        _maybe_sum(s[3] * zi * Sq, _times(s[2], _maybe_sum(_times(2.0, Gi), _times(zi, L))), _times(s[1], Ti))
        for zi, Gi, Ti in zip(z, G, T)
    ]
    zG = _weighted_sum(c, [_times(zi, Gi) for zi, Gi in zip(z, G)])
    HH = _weighted_sum(c, [_weighted_sum(c, [_times(x, x) for x in Hi]) for Hi in H])
    zT = _weighted_sum(c, [_times(zi, Ti) for zi, Ti in zip(z, T)])
    L2a = _maybe_sum(
        s[4] * Sq * Sq,
        _times(s[3], _maybe_sum(_times(2.0 * Sq, L), _times(4.0, zG))),
        _times(s[2], _maybe_sum(_times(2.0, HH), _times(4.0, zT), _times(L, L))),
        _times(s[1], L2),
    )
    return _stack_rows([zero if r is None else r for r in [La] + Ta + [L2a]])


def add(*hs):
    """Sum of carried values (plain arrays among them are constants: value only)."""
    carried = [h for h in hs if isinstance(h, Carried)]
    consts = [h for h in hs if not isinstance(h, Carried)]
    if not carried:
        return _maybe_sum(*hs)
    if len(carried) == 1 and carried[0].identity:  # input state plus constants: shift the input map
        h = carried[0]
        shift = jnp.broadcast_to(_maybe_sum(*[jnp.asarray(c, h.value.dtype) for c in consts], jnp.zeros((), h.value.dtype)), h.value.shape[-1:])
        t = shift if h.input_shift is None else h.input_shift + shift
        return Carried(h.value, h.groups, h.input_scale, t, h.directions, h.plan, h.fold, True)
    carried = [h.materialize() for h in carried]
    value = _maybe_sum(*[h.value for h in carried], *[_const_row(c, carried[0].value) for c in consts])
    groups = [_maybe_sum(*[h.groups[g] for h in carried]) for g in range(N_GROUPS)]
    return carried[0].replace(value, groups)


def _const_row(c, like):
    c = jnp.asarray(c, like.dtype)
    return c if c.ndim == 0 else c[None, :]


def subtract(a, b):
    """``a - b``."""
    if not isinstance(a, Carried) and not isinstance(b, Carried):
        return a - b
    if not isinstance(b, Carried):
        return add(a, -b)
    b = b.materialize()
    if not isinstance(a, Carried):
        return add(scale(b, -1.0), a)
    a = a.materialize()
    groups = [None if (x is None and y is None) else x if y is None else -y if x is None else x - y
              for x, y in zip(a.groups, b.groups)]
    return a.replace(a.value - b.value, groups)


def scale(h, s):
    """``s * h`` for a constant ``s`` (a scalar or one factor per channel; it may be trained)."""
    if not isinstance(h, Carried):
        return s * h
    s = jnp.asarray(s, h.value.dtype)
    if h.identity:  # input state: a scaling of the input map
        scale_ = jnp.broadcast_to(s, h.value.shape[-1:])
        new_s = scale_ if h.input_scale is None else h.input_scale * scale_
        new_t = None if h.input_shift is None else h.input_shift * scale_
        return Carried(h.value, h.groups, new_s, new_t, h.directions, h.plan, h.fold, True)
    row = s if s.ndim == 0 else s[None, :]
    groups = [None if g is None else (g * s if s.ndim == 0 else _scale(jnp.broadcast_to(row, (1,) + s.shape), g)) for g in h.groups]
    return h.replace(h.value * row, groups)


def multiply(a, b):
    """Elementwise ``a * b`` of two carried values (Leibniz's rule on every group)."""
    if not isinstance(a, Carried) and not isinstance(b, Carried):
        return a * b
    if not isinstance(a, Carried):
        a, b = b, a
    if not isinstance(b, Carried):
        return scale(a, b)
    a, b = a.materialize(), b.materialize()
    plan = a.plan
    a0, b0 = a.value, b.value
    A1, A2, AC, AM, A3, A4, _, _ = a.groups
    B1, B2, BC, BM, B3, B4, _, _ = b.groups
    out = [None] * N_GROUPS

    def sc(v, g):  # value (batch, width) times group, None-aware
        return None if g is None else _scale(v, g)

    def rows_of(g, src, dst):
        return None if g is None else _take(g, plan.pos_in(src, dst))

    out[D1] = _maybe_sum(sc(b0, A1), sc(a0, B1))
    if plan.a2:
        cross = _times(rows_of(A1, "a1", "a2"), rows_of(B1, "a1", "a2"))
        out[D2] = _maybe_sum(sc(b0, A2), sc(a0, B2), None if cross is None else 2 * cross)
    if plan.weights:
        cross = _times(A1, B1)
        out[C] = _maybe_sum(sc(b0, AC), sc(a0, BC), None if cross is None else 2 * _contract(plan.weights, cross))
    if plan.mixed:
        ii = tuple(p[0] for p in plan.mixed)
        jj = tuple(p[1] for p in plan.mixed)
        cross = None
        if A1 is not None and B1 is not None:
            cross = _take(A1, ii) * _take(B1, jj) + _take(A1, jj) * _take(B1, ii)
        out[M] = _maybe_sum(sc(b0, AM), sc(a0, BM), cross)
    if plan.a3:
        a1, b1 = rows_of(A1, "a1", "a3"), rows_of(B1, "a1", "a3")
        a2, b2 = rows_of(A2, "a2", "a3"), rows_of(B2, "a2", "a3")
        cross = _maybe_sum(_times(a2, b1), _times(a1, b2))
        out[D3] = _maybe_sum(sc(b0, A3), sc(a0, B3), None if cross is None else 3 * cross)
    if plan.a4:
        a1, b1 = rows_of(A1, "a1", "a4"), rows_of(B1, "a1", "a4")
        a2, b2 = rows_of(A2, "a2", "a4"), rows_of(B2, "a2", "a4")
        a3, b3 = rows_of(A3, "a3", "a4"), rows_of(B3, "a3", "a4")
        odd = _maybe_sum(_times(a3, b1), _times(a1, b3))
        even = _times(a2, b2)
        out[D4] = _maybe_sum(
            sc(b0, A4), sc(a0, B4), None if odd is None else 4 * odd, None if even is None else 6 * even
        )
    if plan.multi:
        rows = []
        for S in plan.multi:
            terms = [_times(a.row(T), b.row(R)) for _, T, R in _leibniz_terms(S)]
            terms = [t if n == 1 or t is None else n * t for (n, _, _), t in zip(_leibniz_terms(S), terms)]
            rows.append(_sum(lambda: jnp.zeros_like(a0 * b0), *terms))
        out[X] = _stack_rows(rows)
    if plan.bilap:
        out[Q] = _biharmonic_product(a, b)
    return a.replace(a0 * b0, out)


def _biharmonic_product(a: Carried, b: Carried) -> jax.Array:
    """The block ``[L, T_i, L^2]`` of ``a * b``:

        L(ab)   = a Lb + b La + 2 sum_k c_k a_k b_k
        T_i(ab) = a_i Lb + a T_i b + b_i La + b T_i a + 2 sum_k c_k (a_ki b_k + a_k b_ki)
        L^2(ab) = a L^2 b + b L^2 a + 2 La Lb + 4 sum_i c_i (a_i T_i b + b_i T_i a)
                  + 4 sum_ik c_i c_k a_ik b_ik
    """
    c = a.plan.bilap
    a0, b0 = a.value, b.value
    za, Ha, La, Ta, L2a = _bilap_parts(a)
    zb, Hb, Lb, Tb, L2b = _bilap_parts(b)
    L = _maybe_sum(_times(a0, Lb), _times(b0, La), _times(2.0, _weighted_sum(c, [_times(x, y) for x, y in zip(za, zb)])))
    T = [
        _maybe_sum(
            _times(zai, Lb), _times(a0, Tbi), _times(zbi, La), _times(b0, Tai),
            _times(2.0, _weighted_sum(c, [_maybe_sum(_times(Haik, zbk), _times(zak, Hbik)) for Haik, zbk, zak, Hbik in zip(Hai, zb, za, Hbi)])),
        )
        for zai, zbi, Tai, Tbi, Hai, Hbi in zip(za, zb, Ta, Tb, Ha, Hb)
    ]
    L2 = _maybe_sum(
        _times(a0, L2b), _times(b0, L2a), _times(2.0, _times(La, Lb)),
        _times(4.0, _weighted_sum(c, [_maybe_sum(_times(zai, Tbi), _times(zbi, Tai)) for zai, zbi, Tai, Tbi in zip(za, zb, Ta, Tb)])),
        _times(4.0, _weighted_sum(c, [_weighted_sum(c, [_times(x, y) for x, y in zip(Hai, Hbi)]) for Hai, Hbi in zip(Ha, Hb)])),
    )
    zero = jnp.zeros_like(a0 * b0)
    return _stack_rows([zero if r is None else jnp.broadcast_to(r, zero.shape) for r in [L] + T + [L2]])


def concatenate(hs):
    """``[h_1, h_2, ...]`` along the channels."""
    hs = list(hs)
    if not any(isinstance(h, Carried) for h in hs):
        return jnp.concatenate(hs, axis=-1)
    hs = [h.materialize() for h in hs]
    plan = hs[0].plan
    batch = max(h.value.shape[0] for h in hs)
    value = jnp.concatenate([jnp.broadcast_to(h.value, (batch, _width(h))) for h in hs], axis=-1)
    groups = [None] * N_GROUPS
    for g in range(N_GROUPS):
        parts = [h.groups[g] for h in hs]
        if all(p is None for p in parts):
            continue
        n = plan.rows(g)
        gb = max(p.shape[0] for p in parts if p is not None)
        shape = (gb,) + ((n,) if n > 1 else ())
        groups[g] = jnp.concatenate(
            [jnp.zeros(shape + (_width(h),), value.dtype) if p is None else jnp.broadcast_to(p, shape + (_width(h),)) for p, h in zip(parts, hs)],
            axis=-1,
        )
    return hs[0].replace(value, groups)


class AbstractNetwork(eqx.Module):
    """A network whose forward pass is written once with the operations above, for ONE point
    (``forward(x)`` with ``x`` of shape ``(in_size,)``, returning ``(out_size,)``). Calling it
    runs that pass on the point; the derivative engine runs the same pass on carried values."""

    @abc.abstractmethod
    def forward(self, x):
        """The forward pass, using only ``linear``, ``activate``, ``add``, ``subtract``,
        ``scale``, ``multiply`` and ``concatenate`` on ``x`` and what they return."""

    def __call__(self, x):
        return self.forward(x)
