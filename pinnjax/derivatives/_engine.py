"""The forward derivative engine: value, Jacobian and the requested higher derivatives of a
network at a batch of points, propagated operation by operation in a single pass.

A network the engine reads is written with the operations of ``_carried.py`` (linear,
activate, add, scale, multiply, concatenate); the chain and product rules live there. This
file turns a Request into a plan, runs the network's forward pass on the carried input, reads
the requested columns out, and routes anything else to the nested-jvp fallback.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap

from ._activations import Identity, get_activation
from ._carried import (
    LINEAR_RECORDERS,
    N_GROUPS,
    AbstractNetwork,
    Carried,
    _rows,
    _take,
    activate,
    add,
    linear,
    make_plan,
    multiply,
)
from ._estimators import lift, sample_directions
from ._request import Jet, Request


def _to_jet(request: Request, h: Carried) -> Jet:
    plan = h.plan
    h = h.materialize()
    value = h.value
    D1, D2, C, M, D3, D4, X, Q = h.groups
    batch, n_out = value.shape
    empty = jnp.zeros((batch, n_out, 0), value.dtype)

    def columns(D, n):  # (batch, rows, n_out) -> (batch, n_out, rows); None: exact zeros
        if D is None:
            return jnp.zeros((batch, n_out, n), value.dtype)
        D = _rows(D)
        return jnp.swapaxes(jnp.broadcast_to(D, (batch,) + D.shape[1:]), 1, 2)

    def pick(D, axes_from, axes_to):
        if not axes_to:
            return empty
        if D is None:
            return columns(None, len(axes_to))
        return columns(_take(D, tuple(axes_from.index(k) for k in axes_to)), len(axes_to))

    n_multi = len(request.multi)
    return Jet(
        value=value,
        first=pick(D1, plan.a1, request.first),
        second=pick(D2, plan.a2, request.second),
        # the requested pairs come first in the plan, in request order
        mixed=columns(None if M is None else _take(M, tuple(range(len(request.mixed)))), len(request.mixed)) if request.mixed else empty,
        # a contraction whose weights are all zero propagates nothing and is exactly zero
        contractions=columns(C, len(plan.weights)) if plan.weights else empty,
        third=pick(D3, plan.a3, request.third),
        fourth=pick(D4, plan.a4, request.fourth),
        multi=columns(None if X is None else _take(X, tuple(range(n_multi))), n_multi) if n_multi else empty,
        bilaplacian=columns(None if Q is None else Q[:, -1:], 1) if plan.bilap else (
            jnp.zeros((batch, n_out, 1), value.dtype) if request.bilaplacian else empty
        ),
    )


def propagate(forward: Callable, xs: jax.Array, request: Request, *, fold: bool = True, key=None,
              constraint: Callable | None = None, chunk: int = 0) -> Jet:
    """Run a network's ``forward`` (written with the operations of ``_carried``) on a batch of
    points ``xs`` (batch, d); every array of the returned Jet has the batch axis first.

    ``key``: the PRNG key of the random directions when ``request.estimator`` is set (fresh
    directions per point). ``constraint(x) -> (g, D)``: the output is ``g + D * network``,
    with ``g`` and ``D`` lifted onto the same directions (estimated requests only).
    ``chunk``: run the batch ``chunk`` points at a time (:func:`auto_chunk`); 0: all at once."""
    plan = make_plan(request)
    directions = None
    if plan.n_directions:
        if key is None:
            raise ValueError("this request estimates its contractions from random directions "
                             f"({request.estimator.method}): pass key=")
        directions = sample_directions(plan, key, xs.shape[0], xs.dtype)

    def run(fn, points, dirs):
        return _propagate(fn, points, request, plan, fold, dirs, constraint)

    if chunk and xs.shape[0] > chunk:
        return _in_chunks(run, forward, xs, directions, chunk)
    return run(forward, xs, directions)


def _in_chunks(run: Callable, fn, xs: jax.Array, directions, chunk: int) -> Jet:
    """``run(fn, xs, directions)`` ``chunk`` points at a time, one chunk after the other
    (``lax.map``), each rematerialised in the backward pass (``jax.checkpoint``). The batch is
    padded with copies of its first point up to a multiple of ``chunk``; the padding is cut
    off. The arrays of ``fn`` (a network's bound ``forward``: its weights) enter the
    checkpoint as arguments, not as closed-over constants."""
    n = xs.shape[0]
    m = -(-n // chunk) * chunk

    def split(a):
        if m > n:
            a = jnp.concatenate([a, jnp.broadcast_to(a[:1], (m - n,) + a.shape[1:])])
        return a.reshape((m // chunk, chunk) + a.shape[1:])

    arrays, static = eqx.partition(fn, eqx.is_array)
    body = jax.checkpoint(lambda arrays, part: run(eqx.combine(arrays, static), *part))
    out = jax.lax.map(lambda part: body(arrays, part), jax.tree.map(split, (xs, directions)))
    return jax.tree.map(lambda a: a.reshape((m,) + a.shape[2:])[:n], out)


# Points per chunk: about this many carried numbers (rows x width) per chunk, so that a
# layer's carried arrays (1 MiB in float32) stay in cache through its forward and backward
# pass, and at least MIN_CHUNK_POINTS points (smaller chunks are too small a matmul). The
# gain over the whole batch is in results/derivatives.md (engine_whole / engine_lap; 2-core
# AMD EPYC, 2,048 points: 1.3-1.4x for a modified MLP of width 128, 1.1x for a PirateNet,
# 1.4x for a tanh MLP of width 64 at d = 10 and 50, under pinnjax's XLA flags). A batch under
# MIN_CHUNKS chunks runs whole: two chunks of a width-64 MLP at d = 2 ran
# slower (the rematerialised forward pass cost more than the cache saved), and so did chunks
# of 14 points of the 100-point, width-1,024 high-dimensional configs (2.5x slower). The
# whole-batch step's time varied up to 2x from run to run on the shared machine (its memory
# traffic meets the neighbours'), the chunked one's much less.
CHUNK_NUMBERS = 2**18
MIN_CHUNK_POINTS = 128
MIN_CHUNKS = 4


# A run's ``derivatives.chunk`` while the trainer traces (see :func:`chunking`).
_CHUNK_SETTING: list = []


@contextlib.contextmanager
def chunking(setting: int | str = "auto"):
    """Inside the block, :func:`auto_chunk` answers ``setting``: ``"auto"`` (its own choice),
    0 (whole batches) or a number of points. The trainer holds it around a run (config key
    ``derivatives.chunk``); it applies to what is traced inside the block."""
    _CHUNK_SETTING.append(setting)
    try:
        yield
    finally:
        _CHUNK_SETTING.pop()


def auto_chunk(model, n_points: int, request: Request) -> int:
    """Points per chunk for :func:`propagate` (0: the whole batch at once). On CPU, a batch of
    at least ``MIN_CHUNKS`` chunks runs in chunks of ``CHUNK_NUMBERS`` carried numbers (rows x
    the network's largest layer width; ``MIN_CHUNK_POINTS`` points at least). Never on GPU/TPU
    (they want the whole batch), nor while a residual's parameter Jacobian is recorded
    (``LINEAR_RECORDERS``: that trace reads every layer's input). Inside :func:`chunking`
    with a number, that number (0: never)."""
    if LINEAR_RECORDERS:
        return 0
    setting = _CHUNK_SETTING[-1] if _CHUNK_SETTING else "auto"
    if setting != "auto":
        return setting if n_points > setting else 0
    if jax.default_backend() != "cpu":
        return 0
    plan = make_plan(request)
    rows = 1 + sum(plan.rows(g) for g in range(N_GROUPS))
    widths = [a.shape[0] for a in jax.tree.leaves(eqx.filter(model, eqx.is_array)) if a.ndim == 2]
    target = max(MIN_CHUNK_POINTS, CHUNK_NUMBERS // (rows * max(widths, default=1)))
    if n_points < MIN_CHUNKS * target:
        return 0
    n_chunks = -(-n_points // target)
    return -(-n_points // n_chunks)  # equal chunks, so that little padding is computed


def _propagate(forward, xs, request, plan, fold, directions, constraint) -> Jet:
    h = Carried.input(xs, plan, fold, directions)
    out = forward(h)
    if not isinstance(out, Carried):  # the output does not depend on the input
        out = Carried(jnp.broadcast_to(out, (xs.shape[0],) + jnp.shape(out)), (None,) * 8, plan=plan, fold=fold)
    if constraint is not None:
        width = out.value.shape[-1]
        g = lift(lambda p: constraint(p)[0], h, width)
        D = lift(lambda p: constraint(p)[1], h, width)
        out = add(g, multiply(D, out))
    return _to_jet(request, out)


# ---------------------------------------------------------------------------------------------
# Recognising networks


def _eqx_mlp_forward(model: eqx.nn.MLP):
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
        dense = [(first.weight, first.bias)] + [
            (hidden.weight[i], None if hidden.bias is None else hidden.bias[i]) for i in range(hidden.weight.shape[0])
        ]
    else:
        dense = [(l.weight, l.bias) for l in layers[:-1]]
        last = layers[-1]

    def forward(h):
        for W, b in dense:
            h = activate(linear(h, W, b), act)
        return activate(linear(h, last.weight, last.bias), final)

    return forward


def network_forward(model):
    """``forward(h)`` of a network the engine can read (written with the carried operations),
    or ``None`` (then the fallback is used)."""
    if isinstance(model, AbstractNetwork):
        return model.forward
    if isinstance(model, eqx.nn.MLP):
        return _eqx_mlp_forward(model)
    if isinstance(model, eqx.nn.Linear):
        return lambda h: linear(h, model.weight, model.bias)
    return None


_WARNED: set[str] = set()


def _warn_fallback(model) -> None:
    name = getattr(model, "__qualname__", None) or type(model).__qualname__
    if name in _WARNED or getattr(type(model), "autodiff_expected", False):
        return
    _WARNED.add(name)
    warnings.warn(
        f"the derivative engine cannot read {name} (not a pinnjax.nn.AbstractNetwork, eqx.nn.MLP or "
        "eqx.nn.Linear): its derivatives come from nested jax.jvp (exact, 3-6x slower). Write its "
        "forward pass with the pinnjax.nn operations for the fast path",
        stacklevel=3,
    )


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


def jet(model: Callable, x: jax.Array, request: Request, *, fallback: bool | None = None, key=None) -> Jet:
    """Value and requested derivatives of ``model`` at one point ``x`` (shape ``(d,)``).

    Networks written with the carried operations (any ``pinnjax.nn.AbstractNetwork``: MLP,
    ModifiedMLP, PirateNet, ResNet, your own), ``eqx.nn.MLP`` and ``eqx.nn.Linear`` go through
    the engine; anything else through nested ``jax.jvp`` (exact, slower; warned once).
    ``fallback=True`` forces the nested-jvp path (used by the tests as the reference).
    Under ``jax.vmap`` over points this runs as :func:`jet_batch` (one batched pass).
    ``key``: PRNG key of the random directions of an estimated request (``Request.estimator``).
    """
    x = jnp.asarray(x)
    check_point(model, x)
    request.check(x.shape[0])
    params, static = eqx.partition(model, eqx.is_array)

    def one(p, point, k):
        out = _jet_batch(eqx.combine(p, static), point[None], request, fallback, fold=False, key=k)
        return jax.tree.map(lambda a: a[0], out)

    @custom_vmap
    def point_jet(p, point, k):
        return one(p, point, k)

    @point_jet.def_vmap
    def batched(axis_size, in_batched, p, points, k):
        p_batched, x_batched, k_batched = in_batched
        if x_batched and not any(jax.tree.leaves(p_batched)) and not any(jax.tree.leaves(k_batched)):
            out = _jet_batch(eqx.combine(p, static), points, request, fallback, fold=True, key=k)
        else:  # an ensemble of networks, or one point for many networks: plain vmap
            axes = tuple(jax.tree.map(lambda b: 0 if b else None, a) for a in in_batched)
            out = jax.vmap(one, in_axes=axes, axis_size=axis_size)(p, points, k)
        return out, jax.tree.map(lambda _: True, out)

    return point_jet(params, x, key)


def jet_batch(model: Callable, xs: jax.Array, request: Request, *, fallback: bool | None = None, key=None,
              chunk: int | None = None) -> Jet:
    """:func:`jet` at a batch of points ``xs`` (shape ``(batch, d)``); every array of the
    returned Jet has the batch axis first. The recursion runs on the whole batch at once, so
    each layer is a few large matmuls; this is what the trainer uses. ``key``: PRNG key of
    the random directions of an estimated request (fresh directions for every point).
    ``chunk``: points per chunk (the batch then runs chunk by chunk, each rematerialised in
    the backward pass); None: :func:`auto_chunk` (CPU only, large batches only); 0: never."""
    xs = jnp.asarray(xs)
    _check_points(model, xs, batched=True)
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 0):
        raise ValueError(f"jet_batch: chunk must be None, 0 or a positive number of points, got {chunk!r}")
    return _jet_batch(model, xs, request, fallback, key=key, chunk=chunk)


def estimator_forward(model):
    """The engine's ``forward`` of ``model``, or a named error: an estimated request is carried
    along random directions, which only the engine does."""
    forward = network_forward(model)
    if forward is None:
        name = getattr(model, "__qualname__", None) or type(model).__qualname__
        raise ValueError(
            f"a randomised Laplacian (Request.estimator) needs a network the engine reads; {name} is not a "
            "pinnjax.nn.AbstractNetwork, eqx.nn.MLP or eqx.nn.Linear"
        )
    return forward


def _jet_batch(model, xs, request, fallback, fold=True, key=None, chunk=None):
    request.check(xs.shape[-1])
    if request.estimator is not None:
        if fallback:
            raise ValueError("fallback=True computes exact derivatives; drop Request.estimator for it")
        return propagate(estimator_forward(model), xs, request, fold=fold, key=key,
                         chunk=_chunk(chunk, model, xs, request))
    forward = None if fallback else network_forward(model)
    if forward is None:
        from ._fallback import jet_autodiff

        if not fallback:
            _warn_fallback(model)
        fn = model
        if getattr(model, "in_size", None) == "scalar":
            fn = lambda p: model(p[0])  # noqa: E731
        return jax.vmap(lambda p: jet_autodiff(_as_vector_fn(fn), p, request))(xs)
    return propagate(forward, xs, request, fold=fold, chunk=_chunk(chunk, model, xs, request))


def _chunk(chunk, model, xs, request) -> int:
    """The caller's ``chunk``, or :func:`auto_chunk`'s when it is None."""
    return auto_chunk(model, xs.shape[0], request) if chunk is None else chunk


def _as_vector_fn(fn):
    def vector_fn(p):
        return jnp.atleast_1d(fn(p))

    return vector_fn
