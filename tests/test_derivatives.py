"""Correctness of the derivative engine (``pinnjax.derivatives``) and the networks it reads.

Every engine quantity is checked against an INDEPENDENT reference: nested ``jax.jacfwd`` /
``jax.hessian`` of the plain network call ``model(x)``, never the engine's own nested-jvp
fallback. All tests run in float64 with rank-promotion errors (the ``strict_jax`` fixture in
conftest.py); random inputs come from the per-test ``seed`` fixture (numpy draws), printed when a test
fails.

Tolerances. Unless a test says otherwise, an engine array is compared with its reference to
``TOL64`` relative to the largest entry of the reference array (so a component that cancels to
near zero is judged on the array's scale, not its own). Justification: float64 eps is 2.2e-16;
the engine and autodiff evaluate the same derivatives as sums of at most a few thousand
products (width <= 32, depth <= 4, the <= 5 Faa di Bruno terms of a fourth derivative, each
rounding independently), which bounds the difference by ~1e3 * eps * scale ~ 2e-13 * scale
(the largest seen over this file is 3e-14). TOL64 = 1e-10 leaves a 500x margin over the bound
and is still 9 orders of magnitude below the O(1) relative error of any wrong coefficient,
missing term or mis-ordered axis (mutating any Faa di Bruno coefficient, an activation table
entry, a mixed-pair axis or the output column order makes these tests fail).
"""

from __future__ import annotations

import dataclasses
import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnjax.derivatives import ACTIVATION_NAMES, Request, get_activation, jet, network_forward
from pinnjax.nn import (
    AbstractNetwork,
    Linear,
    activate,
    add,
    concatenate,
    linear,
    multiply,
    scale,
    subtract,
    trainable_filter,
)
from pinnjax.derivatives._activations import (
    GELU,
    AutodiffActivation,
    Cos,
    Grouped,
    Identity,
    Sigmoid,
    SiLU,
    Sin,
    Softplus,
    Tanh,
)
from pinnjax.derivatives._carried import make_plan as _make_plan
from pinnjax.nn import MLP, FourierFeatures, ModifiedMLP, PeriodicEmbedding, PirateNet, ResNet

NETWORKS = {"mlp": MLP, "modified_mlp": ModifiedMLP, "pirate": PirateNet, "resnet": ResNet}

pytestmark = pytest.mark.usefixtures("strict_jax")

TOL64 = 1e-10  # see the module docstring
# Analytically-zero quantities (e.g. A'' of the identity) come out as exact zeros or as rounding
# of O(1) terms; 1e-13 absolute is ~500 eps, far below any real derivative in these tests.
ATOL_FLOOR = 1e-13


# Compilation, not running, is what this file spends its time on (the networks are tiny and
# each architecture compiles its own engine pass and fourth-order autodiff reference). LLVM
# optimisation level 0 halves XLA's CPU compile time; it changes only instruction scheduling and
# rounding-level details, which the tolerances cover. test_jit_and_vmap and test_float32 keep the
# default pipeline (plain jax.jit / eqx.filter_jit), so that path is covered too.
_FAST_COMPILE = {"xla_backend_optimization_level": 0}


def fast_jit(fn):
    """Like ``eqx.filter_jit`` (arrays traced, everything else static), compiled with
    ``_FAST_COMPILE``."""
    cache = {}

    def wrapper(*args, **kwargs):
        dynamic, static = eqx.partition((args, kwargs), eqx.is_array)
        leaves, treedef = jax.tree_util.tree_flatten(static)
        key = (treedef, tuple(leaves))
        if key not in cache:

            def run(dyn, static=static):
                a, kw = eqx.combine(dyn, static)
                return fn(*a, **kw)

            try:
                cache[key] = jax.jit(run, compiler_options=_FAST_COMPILE)
            except TypeError:  # a jax without jit(compiler_options=...): the default pipeline
                cache[key] = jax.jit(run)
        return cache[key](dynamic)

    return wrapper


jit_jet = fast_jit(jet)  # the Request (and `fallback`) are static: one compile per request


def assert_close(actual, expected, what, tol=TOL64):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != reference {expected.shape}"
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tol * scale + ATOL_FLOOR, err_msg=what)


# ---------------------------------------------------------------------------------------------
# Independent references


def nested_jacfwd(f, order):
    """``x -> (f, Df, D2f, ..., D^order f)`` by nesting ``jax.jacfwd`` ``order`` times (one
    trace). ``D^n f[o, a_1, ..., a_n] = d/dx_{a_n} ... d/dx_{a_1} f_o``: the derivative along
    ``a_1`` is taken first."""

    def one_more(fn):
        def with_aux(p):
            out = fn(p)
            return out[-1], out

        def next_level(p):
            jac, out = jax.jacfwd(with_aux, has_aux=True)(p)
            return out + (jac,)

        return next_level

    fn = lambda p: (f(p),)  # noqa: E731
    for _ in range(order):
        fn = one_more(fn)
    return fn


def diagonal(T, order):
    """``T[o, k, k, ..., k]`` for every ``k``: shape ``(n_out, d)``."""
    d = T.shape[1]
    idx = (slice(None),) + (np.arange(d),) * order
    return np.asarray(T)[idx]


def mixed_higher(d):
    """Mixed third and fourth derivatives of every pattern (``iij``, ``ijk``, ``iiij``,
    ``iijj``, ``iijk``) on the first and last axes (and axis 1 when d >= 3)."""
    if d < 2:
        return ()
    a, b = 0, d - 1
    out = [(a, a, b), (a, b, b, b), (a, a, b, b)]
    if d >= 3:
        out += [(0, 1, b), (0, 1, 1, b)]
    return tuple(out)


def full_request(d, weights, higher=False):
    """Every derivative kind; with ``higher`` also mixed third/fourth and the bilaplacian
    ``L^2`` of the weighted contraction ``L = sum_k c_k d2/dx_k^2``."""
    axes = tuple(range(d))
    extra = dict(multi=mixed_higher(d), bilaplacian=weights) if higher else {}
    return Request(
        first=axes,
        second=axes,
        mixed=tuple(itertools.combinations(axes, 2)),
        contractions=(
            (1.0,) * d,  # Laplacian
            tuple(0.0 if k == d - 1 else 1.0 for k in range(d)),  # spatial Laplacian, last axis = time
            weights,  # anisotropic sum_k c_k u_kk
        ),
        third=axes,
        fourth=axes,
        **extra,
    )


def assemble_hessian(jt, d):
    """The (n_out, d, d) Hessian from a ``Request.full_hessian(d)`` jet."""
    n_out = jt.value.shape[0]
    H = np.zeros((n_out, d, d))
    for k in range(d):
        H[:, k, k] = jt.second[:, k]
    for p, (i, j) in enumerate(itertools.combinations(range(d), 2)):
        H[:, i, j] = H[:, j, i] = jt.mixed[:, p]
    return H


def as_vector_fn(model):
    """``model`` as a function of a ``(d,)`` point returning ``(n_out,)`` (eqx "scalar" sizes)."""
    scalar_in = getattr(model, "in_size", None) == "scalar"
    return lambda p: jnp.atleast_1d(model(p[0] if scalar_in else p))


@fast_jit
def engine_and_reference(model, x, request):
    """Engine jets (the full request and ``Request.full_hessian``) and the references, in one
    compiled call per architecture (compilation dominates the cost of this file)."""
    f = as_vector_fn(model)
    d = x.shape[0]
    return (
        jet(model, x, request),
        jet(model, x, Request.full_hessian(d)),
        nested_jacfwd(f, 4)(x),
        jax.hessian(f)(x),
    )


def check_against_reference(model, x, request):
    """Every field of ``jet(model, x, request)`` for a ``full_request`` against autodiff."""
    d = x.shape[0]
    jt, jh, (u, J, H2, T3, T4), H = engine_and_reference(model, x, request)
    H = np.asarray(H)
    assert_close(jt.value, u, "value vs model(x)")
    assert_close(jt.first, J, "first vs jax.jacfwd")
    assert_close(jt.second, diagonal(H, 2), "second vs diag of jax.hessian")
    pairs = list(itertools.combinations(range(d), 2))
    mixed_ref = np.stack([H[:, i, j] for i, j in pairs], axis=1) if pairs else np.zeros((u.shape[0], 0))
    assert_close(jt.mixed, mixed_ref, "mixed vs off-diagonal of jax.hessian")
    weights = np.asarray(request.contractions)  # (n_contractions, d)
    assert_close(jt.contractions, diagonal(H, 2) @ weights.T, "contractions vs weighted diag of jax.hessian")
    assert_close(jt.third, diagonal(T3, 3), "third vs jacfwd^3")
    assert_close(jt.fourth, diagonal(T4, 4), "fourth vs jacfwd^4")
    if request.multi:
        T = {3: np.asarray(T3), 4: np.asarray(T4)}
        ref = np.stack([T[len(m)][(slice(None),) + m] for m in request.multi], axis=1)
        assert_close(jt.multi, ref, "mixed third/fourth vs jacfwd^3 / jacfwd^4")
    if request.bilaplacian:
        c = np.asarray(request.bilaplacian)
        ref = np.einsum("i,k,oiikk->o", c, c, np.asarray(T4))[:, None]
        assert_close(jt.bilaplacian, ref, "bilaplacian vs sum_ik c_i c_k jacfwd^4[i, i, k, k]")
    assert_close(assemble_hessian(jh, d), H, "full_hessian request vs jax.hessian")
    assert_close(jh.first, J, "full_hessian request: first")
    return jt


# ---------------------------------------------------------------------------------------------
# 1. Randomised architectures


@dataclasses.dataclass(frozen=True)
class Arch:
    d: int
    n_out: int
    width: int
    depth: int
    activation: str
    embedding: str | None = None  # "fourier" | "periodic" | None
    factorized: bool = False
    box: bool = False  # input_lower / input_upper scaling
    net: str = "mlp"  # a key of NETWORKS; depth is the number of blocks for pirate / resnet

    def __str__(self):
        extras = [e for e in (self.embedding, self.factorized and "fact", self.box and "box") if e]
        return ("" if self.net == "mlp" else f"{self.net}-") + f"d{self.d}-o{self.n_out}-w{self.width}x{self.depth}-{self.activation}" + "".join(
            f"-{e}" for e in extras
        )


# Every name in ACTIVATION_NAMES (checked below), every embedding, input dims 1..8, output dims
# 1..3, widths 3..32, depths 1..4, with and without factorisation and box scaling.
ARCHS = [
    Arch(1, 1, 3, 1, "tanh"),
    Arch(1, 2, 8, 2, "sin", "fourier"),
    Arch(2, 1, 16, 3, "tanh", None, True, True),
    Arch(2, 3, 5, 2, "gelu", "periodic"),
    Arch(3, 1, 32, 4, "silu", None, False, True),
    Arch(3, 2, 12, 1, "softplus", "fourier", True),
    Arch(4, 1, 7, 2, "sigmoid"),
    Arch(4, 3, 20, 3, "cos", "periodic", True, True),
    Arch(5, 2, 9, 4, "swish", "fourier", False, True),
    Arch(6, 1, 24, 2, "tansig", None, True),
    Arch(8, 1, 32, 3, "tanh", "fourier", True, True),
    Arch(8, 3, 4, 1, "gelu"),
    Arch(2, 2, 6, 2, "identity"),
    Arch(3, 1, 10, 2, "linear", "periodic", False, True),
    Arch(7, 2, 11, 3, "sin", None, False, True),
    Arch(1, 3, 16, 4, "softplus", None, True, True),
    Arch(5, 1, 3, 3, "cos"),
    Arch(6, 2, 14, 1, "sigmoid", "fourier", False, True),
    Arch(2, 1, 32, 4, "gelu", "fourier", True),
    Arch(4, 2, 8, 4, "tanh", "periodic"),
    Arch(3, 3, 18, 2, "swish", None, True),
    Arch(7, 1, 5, 2, "silu", "periodic", True, True),
    Arch(1, 1, 12, 3, "cos", "periodic"),
    Arch(8, 2, 16, 2, "sin", "periodic", True),
    Arch(5, 3, 28, 1, "tansig", "fourier"),
    Arch(2, 2, 4, 3, "sigmoid", "periodic", True, True),
    Arch(6, 3, 6, 4, "softplus", None, False, True),
    Arch(4, 1, 30, 2, "identity", "fourier", True, True),
    Arch(3, 2, 3, 1, "tanh"),
    Arch(1, 1, 20, 2, "gelu", None, False, True),
]


def test_architectures_cover_every_activation():
    assert {a.activation for a in ARCHS} == set(ACTIVATION_NAMES)


def randomized(make, rng):
    """The network ``make(key)`` with every array leaf redrawn from numpy ``rng``.

    The structure, sizes and static fields come from the real constructor, traced abstractly by
    ``eqx.filter_eval_shape``; only the random draws are replaced. (Building dozens of networks
    of distinct shapes eagerly compiles a random-number kernel per shape, which cost more than
    the derivative checks themselves.) Draws follow the constructors' distributions: Glorot
    normal weights, ``N(1, 0.1)`` log-scales, ``N(0, 1)`` Fourier frequencies; biases are
    ``N(0, 0.3)`` instead of zero so that the bias path is exercised.
    """
    abstract = eqx.filter_eval_shape(make, jax.random.PRNGKey(0))

    def draw(path, leaf):
        if not isinstance(leaf, jax.ShapeDtypeStruct):
            return leaf
        name = jax.tree_util.keystr(path)
        shape = leaf.shape
        if name.endswith(".log_scale"):
            value = 1.0 + 0.1 * rng.standard_normal(shape)
        elif name.endswith(".B"):
            value = rng.standard_normal(shape)
        elif len(shape) >= 2:
            value = rng.standard_normal(shape) * np.sqrt(2.0 / (shape[-1] + shape[-2]))
        else:
            value = 0.3 * rng.standard_normal(shape)
        return jnp.asarray(value, dtype=leaf.dtype)

    return jax.tree_util.tree_map_with_path(draw, abstract)


def build(arch: Arch, seed):
    """A pinnjax MLP for ``arch`` and one random point in its input box."""
    rng = np.random.default_rng(seed)
    d = arch.d
    kwargs = {}
    if arch.box:
        lo = rng.uniform(-2.0, 0.0, d)
        hi = lo + rng.uniform(0.5, 3.0, d)
        kwargs = dict(input_lower=tuple(map(float, lo)), input_upper=tuple(map(float, hi)))
        x = lo + (hi - lo) * rng.uniform(size=d)
    else:
        x = rng.standard_normal(d)
    periodic = None
    if arch.embedding == "periodic":
        axes = (0,) if d == 1 else (0, d - 1)
        periodic = PeriodicEmbedding(d, axes, (2.0, 1.5)[: len(axes)], harmonics=2)

    def make(key):
        k1, k2 = jax.random.split(key)
        embedding = FourierFeatures(d, 5, 1.0, key=k2) if arch.embedding == "fourier" else periodic
        return NETWORKS[arch.net](
            d,
            arch.n_out,
            arch.width,
            arch.depth,
            arch.activation,
            key=k1,
            embedding=embedding,
            factorization={"mean": 1.0, "std": 0.1} if arch.factorized else None,
            **kwargs,
        )

    model = randomized(make, rng)
    if periodic is not None:  # a fixed matrix, not a random draw: put the real one back
        model = eqx.tree_at(lambda m: m.embedding, model, periodic)
    return model, jnp.asarray(x)


def random_weights(seed, d):
    """Weights of an anisotropic contraction ``sum_k c_k u_kk`` (static: Python floats)."""
    return tuple(float(c) for c in np.random.default_rng(seed + 1).uniform(-2.0, 2.0, d))


@pytest.mark.parametrize("arch", ARCHS, ids=str)
def test_engine_matches_autodiff(arch, seed):
    model, x = build(arch, seed)
    assert x.dtype == jnp.float64
    jt = check_against_reference(model, x, full_request(arch.d, random_weights(seed, arch.d)))
    assert jt.value.dtype == jnp.float64 and jt.fourth.dtype == jnp.float64
    assert jt.first.shape == (arch.n_out, arch.d)
    assert jt.mixed.shape == (arch.n_out, arch.d * (arch.d - 1) // 2)
    assert jt.contractions.shape == (arch.n_out, 3)


# Every network type through the same harness, with every derivative kind: value, first, pure
# and mixed second, contractions, third and fourth along axes, mixed third/fourth and the
# bilaplacian (whose weights are the anisotropic contraction's, so the general L^2 is checked).
NET_ARCHS = [
    Arch(3, 2, 9, 2, "tanh", "fourier", True, True, net="mlp"),
    Arch(2, 1, 8, 3, "tanh", None, True, True, net="modified_mlp"),
    Arch(4, 2, 6, 1, "sin", "periodic", False, False, net="modified_mlp"),
    Arch(3, 1, 10, 2, "tanh", "fourier", False, True, net="pirate"),  # embedding width = width
    Arch(2, 2, 7, 1, "gelu", None, True, False, net="pirate"),  # a dense lift first
    Arch(3, 1, 8, 2, "softplus", "fourier", True, False, net="resnet"),
    Arch(1, 1, 6, 1, "silu", None, False, True, net="resnet"),
]


@pytest.mark.parametrize("arch", NET_ARCHS, ids=str)
def test_every_network_matches_autodiff(arch, seed):
    model, x = build(arch, seed)
    assert network_forward(model) is not None
    request = full_request(arch.d, random_weights(seed, arch.d), higher=True)
    jt = check_against_reference(model, x, request)
    assert jt.multi.shape == (arch.n_out, len(mixed_higher(arch.d))) and jt.bilaplacian.shape == (arch.n_out, 1)
    if arch.net == "pirate":
        assert model.alpha.shape == (arch.depth,) and np.all(model.alpha != 0)  # the blocks are live


class OwnNetwork(AbstractNetwork):
    """A user's network from the operations: every one of them, including activations and
    products of the raw input (not only after a dense layer) and products of products."""

    a: Linear
    b: Linear
    out: Linear

    def __init__(self, d, width, n_out, *, key):
        ka, kb, ko = jax.random.split(key, 3)
        self.a, self.b = Linear(d, width, key=ka), Linear(d, width, key=kb)
        self.out = Linear(2 * width + d, n_out, key=ko)

    def forward(self, x):
        x = add(scale(x, 0.7), 0.2)  # an affine map of the input
        p = activate(linear(x, self.a), "tanh")
        q = activate(linear(x, self.b), "sin")
        pq = multiply(multiply(p, q), add(q, 1.5))  # a product of products
        s = multiply(activate(x, "sin"), x)  # the input itself, activated and multiplied
        h = concatenate([pq, subtract(p, scale(q, 2.0)), s])
        return linear(h, self.out)


@pytest.mark.parametrize("d", [1, 3])
def test_own_network_from_the_operations(d, seed):
    rng = np.random.default_rng(seed)
    model = randomized(lambda k: OwnNetwork(d, 5, 2, key=k), rng)
    x = jnp.asarray(rng.standard_normal(d))
    assert network_forward(model) is not None
    check_against_reference(model, x, full_request(d, random_weights(seed, d), higher=True))


def test_unreadable_network_warns_once_naming_it(seed):
    class Wrapped(eqx.Module):
        inner: MLP

        def __call__(self, x):
            return self.inner(x) ** 2

    net, x = build(Arch(2, 1, 4, 1, "tanh"), seed)
    with pytest.warns(UserWarning, match=r"cannot read .*Wrapped .*nested jax.jvp"):
        jet(Wrapped(net), x, Request(first=(0,)))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jet(Wrapped(net), x, Request(first=(1,)))  # once per class: no second warning
        jet(Wrapped(net), x, Request(first=(0,)), fallback=True)  # asked for: no warning


def test_trainable_filter_leaves_out_fixed_arrays(key):
    emb = FourierFeatures(2, 4, 1.0, key=key)
    net = PirateNet(2, 1, 8, 2, key=key, embedding=emb, factorization={"mean": 1.0, "std": 0.1})
    spec = trainable_filter(net)
    assert spec.embedding.B is False  # marked fixed by FourierFeatures.fixed_fields
    assert spec.alpha is True and spec.blocks[0][0].log_scale is True and spec.output.V is True
    params = eqx.filter(net, spec)
    n_params = sum(a.size for a in jax.tree_util.tree_leaves(params))
    assert n_params == sum(a.size for a in jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_inexact_array))) - emb.B.size
    periodic = MLP(2, 1, 4, 1, key=key, embedding=PeriodicEmbedding(2, (0,), (1.0,)))
    assert trainable_filter(periodic).embedding.W is False


# ---------------------------------------------------------------------------------------------
# 2. Partial requests: only what is asked is propagated, and it is still right


PARTIAL_ARCHS = [
    Arch(4, 2, 12, 3, "tanh", "fourier", True),
    Arch(5, 1, 9, 2, "gelu", "periodic", False, True),
    Arch(3, 3, 16, 4, "silu", None, True, True),
]


def partial_requests(d, weights):
    """(request, {jet field: (full-request field, column indices)}) pairs."""
    pairs = list(itertools.combinations(range(d), 2))
    last = d - 1
    return [
        (Request(), {}),
        (Request(first=(last,)), {"first": ("first", [last])}),
        (Request(second=(2, 0)), {"second": ("second", [2, 0])}),
        (Request(mixed=((0, 2),)), {"mixed": ("mixed", [pairs.index((0, 2))])}),
        # pairs are stored as (i < j), in the order given
        (Request(mixed=((2, 1), (last, 0))), {"mixed": ("mixed", [pairs.index((1, 2)), pairs.index((0, last))])}),
        (Request(third=(1,)), {"third": ("third", [1])}),
        (Request(fourth=(last,)), {"fourth": ("fourth", [last])}),
        (Request(contractions=(weights,)), {"contractions": ("contractions", [2])}),
        (Request.laplacian(d), {"contractions": ("contractions", [0])}),
        (Request.laplacian(d, skip=(last,)), {"contractions": ("contractions", [1])}),
        (
            Request(first=(1,), third=(0, 2), contractions=((1.0,) * d,)),
            {"first": ("first", [1]), "third": ("third", [0, 2]), "contractions": ("contractions", [0])},
        ),
        (
            Request(fourth=(0,), mixed=((1, 2),), second=(last,)),
            {"fourth": ("fourth", [0]), "mixed": ("mixed", [pairs.index((1, 2))]), "second": ("second", [last])},
        ),
    ]


@fast_jit
def jets_for(model, x, requests):
    return [jet(model, x, r) for r in requests]


@pytest.mark.parametrize("arch", PARTIAL_ARCHS, ids=str)
def test_partial_requests_match_full_request(arch, seed):
    model, x = build(arch, seed)
    weights = random_weights(seed, arch.d)
    full = full_request(arch.d, weights)
    cases = partial_requests(arch.d, weights)
    # the full request is itself checked against autodiff, so agreeing with it is agreeing with autodiff
    full_jet = check_against_reference(model, x, full)
    jets = jets_for(model, x, tuple(r for r, _ in cases))
    fields = ("first", "second", "mixed", "contractions", "third", "fourth")
    for (request, expect), jt in zip(cases, jets):
        assert_close(jt.value, full_jet.value, f"{request}: value")
        for name in fields:
            got = getattr(jt, name)
            if name in expect:
                src, cols = expect[name]
                assert_close(got, np.asarray(getattr(full_jet, src))[:, cols], f"{request}: {name}")
            else:
                assert got.shape == (arch.n_out, 0), f"{request}: {name} was not asked for but has shape {got.shape}"


def test_plan_propagates_only_what_is_asked():
    """The carried axis groups (an internal layout) hold only what the request needs."""
    plan = _make_plan(Request(third=(1,)))
    assert (plan.a1, plan.a2, plan.a3, plan.a4, plan.order) == ((1,), (1,), (1,), (), 3)
    plan = _make_plan(Request.laplacian(4, skip=(3,)))
    assert (plan.a1, plan.a2, plan.a3, plan.order) == ((0, 1, 2), (), (), 2)
    assert plan.weights == ((1.0, 1.0, 1.0),)  # one contracted column, not a diagonal per axis
    plan = _make_plan(Request(mixed=((3, 0),)))
    assert (plan.a1, plan.a2, plan.mixed) == ((0, 3), (), ((0, 1),))
    plan = _make_plan(Request(fourth=(2,), first=(0,)))
    assert (plan.a1, plan.a2, plan.a3, plan.a4, plan.order) == ((0, 2), (2,), (2,), (2,), 4)
    assert _make_plan(Request()).order == 0


def test_all_zero_contraction_is_zero(seed):
    """A contraction whose weights are all zero propagates nothing and is exactly zero."""
    model, x = build(Arch(3, 2, 8, 2, "tanh"), seed)
    jt = jit_jet(model, x, Request(contractions=((0.0, 0.0, 0.0), (1.0, 0.0, 0.0))))
    H = fast_jit(jax.hessian(model))(x)
    assert jt.contractions.shape == (2, 2)
    np.testing.assert_array_equal(jt.contractions[:, 0], 0.0)
    assert_close(jt.contractions[:, 1], H[:, 0, 0], "u_00")


# ---------------------------------------------------------------------------------------------
# 3. Symmetry of the Hessian, H_jkm = H_jmk (seed eq. 11)


@pytest.mark.parametrize("arch", [Arch(3, 2, 10, 3, "tanh", None, True), Arch(4, 1, 8, 2, "gelu", "fourier", False, True)], ids=str)
def test_mixed_derivatives_are_symmetric(arch, seed):
    model, x = build(arch, seed)
    d = arch.d
    pairs = list(itertools.combinations(range(d), 2))
    forward = jit_jet(model, x, Request(mixed=tuple(pairs)))
    backward = jit_jet(model, x, Request(mixed=tuple((j, i) for i, j in pairs)))
    np.testing.assert_array_equal(forward.mixed, backward.mixed)  # (j, i) is the same pair as (i, j)
    # D2[o, a, b] = d/dx_b (d/dx_a u_o): the derivative along a taken first
    D2 = np.asarray(fast_jit(nested_jacfwd(model, 2))(x)[2])
    j_then_i = np.stack([D2[:, j, i] for i, j in pairs], axis=1)
    i_then_j = np.stack([D2[:, i, j] for i, j in pairs], axis=1)
    assert_close(forward.mixed, j_then_i, "mixed (i, j) vs d/dx_i d/dx_j (j first)")
    assert_close(forward.mixed, i_then_j, "mixed (i, j) vs d/dx_j d/dx_i (i first)")
    H = assemble_hessian(jit_jet(model, x, Request.full_hessian(d)), d)
    assert_close(H, np.swapaxes(H, 1, 2), "engine Hessian symmetric")
    assert_close(H, D2, "engine Hessian vs jacfwd(jacfwd)")
    assert_close(H, np.swapaxes(D2, 1, 2), "engine Hessian vs jacfwd(jacfwd), transposed")


# ---------------------------------------------------------------------------------------------
# 4. equinox networks and the fallback for any other callable


def x_tanh_x(z):
    return z * jnp.tanh(z)


EQX_CASES = {
    "tanh": (dict(in_size=3, out_size=2, width_size=8, depth=2, activation=jnp.tanh), Tanh),
    "softplus-scalar-out": (dict(in_size=2, out_size="scalar", width_size=6, depth=3, activation=jax.nn.softplus), Softplus),
    "lambda": (dict(in_size=3, out_size=2, width_size=7, depth=2, activation=x_tanh_x), AutodiffActivation),
    "scalar-in": (dict(in_size="scalar", out_size=2, width_size=8, depth=2, activation=jnp.tanh), Tanh),
    "scalar-in-out": (dict(in_size="scalar", out_size="scalar", width_size=5, depth=2, activation=jax.nn.softplus), Softplus),
    "scan": (dict(in_size=2, out_size=2, width_size=3, depth=4, activation=jnp.tanh, scan=True), Tanh),
    "final-tanh-no-bias": (
        dict(in_size=2, out_size=3, width_size=6, depth=2, activation=jax.nn.silu, final_activation=jnp.tanh, use_bias=False),
        SiLU,
    ),
    "depth0": (dict(in_size=3, out_size=2, width_size=4, depth=0), None),
    # equinox 0.13 ignores final_activation at depth 0 (older versions applied it): the engine
    # must give the derivatives of what model(x) computes
    "depth0-final-tanh": (dict(in_size=2, out_size=2, width_size=4, depth=0, final_activation=jnp.tanh), None),
    "prelu": (dict(in_size=2, out_size=1, width_size=5, depth=2, activation=eqx.nn.PReLU(0.3)), None),
}


@pytest.mark.parametrize("name", list(EQX_CASES))
def test_eqx_mlp(name, seed):
    kwargs, table = EQX_CASES[name]
    rng = np.random.default_rng(seed)
    model = randomized(lambda k: eqx.nn.MLP(**kwargs, key=k), rng)
    d = 1 if kwargs["in_size"] == "scalar" else kwargs["in_size"]
    x = jnp.asarray(rng.standard_normal(d))
    if name in ("prelu", "depth0-final-tanh"):
        # a learnt activation (arrays per neuron) has no table, and whether equinox applies the
        # final activation at depth 0 depends on its version: both go through the fallback
        assert network_forward(model) is None
    else:
        assert network_forward(model) is not None
    if table is not None:
        assert isinstance(get_activation(model.activation), table)
    if kwargs.get("final_activation") is None:
        # equinox's default final activation is recognised as the identity (no autodiff table)
        assert isinstance(get_activation(model.final_activation), Identity)
    jt = check_against_reference(model, x, full_request(d, random_weights(seed, d)))
    n_out = 1 if kwargs["out_size"] == "scalar" else kwargs["out_size"]
    assert jt.value.shape == (n_out,)  # a "scalar" output is one output row
    if kwargs["in_size"] == "scalar":
        # a "scalar" input network takes a point of shape (1,), like every other (d,) point
        with pytest.raises(ValueError, match=r"one point of shape \(d,\)"):
            jet(model, x[0], Request(first=(0,)))


def test_eqx_linear(seed):
    rng = np.random.default_rng(seed)
    layer = randomized(lambda k: eqx.nn.Linear(4, 3, key=k), rng)
    x = jnp.asarray(rng.standard_normal(4))
    jt = check_against_reference(layer, x, full_request(4, (1.0, 2.0, -1.0, 0.5)))
    assert_close(jt.first, layer.weight, "first of a linear layer is its weight")
    np.testing.assert_array_equal(jt.second, 0.0)  # identity activation: second-order terms are skipped


def test_non_mlp_callable_uses_fallback(seed):
    net, x = build(Arch(3, 2, 8, 2, "tanh", "fourier"), seed)
    fn = lambda p: jnp.sin(p).sum(keepdims=True) * net(p)  # noqa: E731
    assert network_forward(fn) is None
    jt = check_against_reference(fn, x, full_request(3, (0.5, -1.0, 2.0)))
    assert jt.value.shape == (2,)
    # a callable with a scalar output is returned with one output row
    scalar_fn = lambda p: jnp.sum(p**3) * jnp.tanh(p[0]) + net(p)[1]  # noqa: E731
    assert network_forward(scalar_fn) is None
    request = Request(first=(0, 2), second=(1,), mixed=((0, 2),), contractions=((1.0, 1.0, 0.0),))
    jt = jit_jet(scalar_fn, x, request)
    H = fast_jit(jax.hessian(scalar_fn))(x)
    assert jt.value.shape == (1,) and jt.first.shape == (1, 2)
    assert_close(jt.value[0], fast_jit(scalar_fn)(x), "value")
    assert_close(jt.first[0], fast_jit(jax.grad(scalar_fn))(x)[np.array([0, 2])], "first")
    assert_close(jt.second[0, 0], H[1, 1], "second")
    assert_close(jt.mixed[0, 0], H[0, 2], "mixed")
    assert_close(jt.contractions[0, 0], H[0, 0] + H[1, 1], "contraction")


def test_forced_fallback_matches_engine(seed):
    """``fallback=True`` on a network the engine knows gives the same numbers (a second check
    of both paths; the autodiff references above are the independent ones)."""
    model, x = build(Arch(3, 2, 8, 3, "silu", "periodic", True, True), seed)
    request = full_request(3, (1.0, -0.5, 2.0))
    fast, slow = jit_jet(model, x, request), jit_jet(model, x, request, fallback=True)
    for name in ("value", "first", "second", "mixed", "contractions", "third", "fourth"):
        assert_close(getattr(fast, name), getattr(slow, name), name)


# ---------------------------------------------------------------------------------------------
# 5. Parameter gradients of losses built on the engine


def _engine_residual(kind):
    """Residual at one point from engine derivatives; x = (space, time) for kdv / ks."""
    if kind == "laplacian":
        request = Request.laplacian(3)
        return request, lambda x, j: j.contractions[0, 0] - jnp.sum(jnp.sin(x))
    if kind == "kdv":  # u_t + 6 u u_x + u_xxx - 0.1 u_xx: first, diagonal and third derivatives
        request = Request(first=(0, 1), second=(0,), third=(0,))
        return request, lambda x, j: j.first[0, 1] + 6 * j.value[0] * j.first[0, 0] + j.third[0, 0] - 0.1 * j.second[0, 0]
    if kind == "ks":  # u_t + u u_x + u_xx + u_xxxx + u_xt: fourth order and a mixed pair
        request = Request(first=(0, 1), second=(0,), fourth=(0,), mixed=((0, 1),))
        return request, lambda x, j: (
            j.first[0, 1] + j.value[0] * j.first[0, 0] + j.second[0, 0] + j.fourth[0, 0] + j.mixed[0, 0]
        )
    raise ValueError(kind)


def _reference_residual(kind, f, x):
    if kind == "laplacian":
        return jnp.trace(jax.hessian(f)(x)[0]) - jnp.sum(jnp.sin(x))
    if kind == "kdv":
        u, J, H, T = nested_jacfwd(f, 3)(x)
        return J[0, 1] + 6 * u[0] * J[0, 0] + T[0, 0, 0, 0] - 0.1 * H[0, 0, 0]
    u, J, H, T3, T4 = nested_jacfwd(f, 4)(x)
    return J[0, 1] + u[0] * J[0, 0] + H[0, 0, 0] + T4[0, 0, 0, 0, 0] + H[0, 0, 1]


@fast_jit
def _loss_grads(model, xs, kind):
    request, residual = _engine_residual(kind)

    def engine_loss(m):
        return jnp.mean(jax.vmap(lambda x: residual(x, jet(m, x, request)) ** 2)(xs))

    def reference_loss(m):
        g = as_vector_fn(m)
        return jnp.mean(jax.vmap(lambda x: _reference_residual(kind, g, x) ** 2)(xs))

    return (
        eqx.filter_value_and_grad(engine_loss)(model),
        eqx.filter_value_and_grad(reference_loss)(model),
    )


GRAD_CASES = [
    ("laplacian", "pinnjax-fourier-fact-box", 3),
    ("kdv", "pinnjax-tanh", 2),
    ("ks", "eqx-softplus", 2),
    ("laplacian", "eqx-lambda", 3),
]


def _grad_model(name, d, seed):
    if name == "pinnjax-fourier-fact-box":
        return build(Arch(d, 1, 8, 2, "tanh", "fourier", True, True), seed)[0]
    if name == "pinnjax-tanh":
        return build(Arch(d, 1, 10, 3, "tanh"), seed)[0]
    rng = np.random.default_rng(seed)
    if name == "eqx-softplus":
        return randomized(lambda k: eqx.nn.MLP(d, "scalar", 8, 2, activation=jax.nn.softplus, key=k), rng)
    return randomized(lambda k: eqx.nn.MLP(d, 1, 8, 2, activation=x_tanh_x, key=k), rng)


@pytest.mark.parametrize("kind, model_name, d", GRAD_CASES, ids=[f"{k}-{m}" for k, m, _ in GRAD_CASES])
def test_parameter_gradients_match_autodiff_loss(kind, model_name, d, seed):
    model = _grad_model(model_name, d, seed)
    xs = jnp.asarray(np.random.default_rng(seed + 1).uniform(-1.0, 1.0, (16, d)))
    (loss, grads), (ref_loss, ref_grads) = _loss_grads(model, xs, kind)
    assert_close(loss, ref_loss, "loss")
    leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_inexact_array))
    ref_leaves = jax.tree_util.tree_leaves(eqx.filter(ref_grads, eqx.is_inexact_array))
    assert len(leaves) == len(ref_leaves) > 0
    # the whole gradient on one scale: a leaf that is nearly zero is judged against the largest
    # gradient entry (same float64 rounding argument as TOL64, one reverse pass more)
    scale = max(float(jnp.max(jnp.abs(g))) for g in ref_leaves)
    assert scale > 0
    for i, (g, r) in enumerate(zip(leaves, ref_leaves)):
        np.testing.assert_allclose(g, r, rtol=0, atol=TOL64 * scale, err_msg=f"gradient leaf {i}")


# ---------------------------------------------------------------------------------------------
# 6. jit, vmap and float32


def test_jit_and_vmap(seed):
    arch = Arch(3, 2, 10, 3, "gelu", "fourier", True, True)
    model, _ = build(arch, seed)
    xs = jnp.asarray(np.random.default_rng(seed + 1).uniform(-1.0, 1.0, (6, 3)))
    request = full_request(3, (1.0, -2.0, 0.5))
    batched = eqx.filter_jit(eqx.filter_vmap(lambda m, x: jet(m, x, request), in_axes=(None, 0)))(model, xs)
    u, J, H2, T3, T4 = fast_jit(jax.vmap(nested_jacfwd(model, 4)))(xs)
    assert batched.value.shape == (6, 2) and batched.fourth.shape == (6, 2, 3)
    assert_close(batched.value, u, "value")
    assert_close(batched.first, J, "first")
    for b in range(xs.shape[0]):
        assert_close(batched.second[b], diagonal(H2[b], 2), f"second, point {b}")
        assert_close(batched.contractions[b], diagonal(H2[b], 2) @ np.asarray(request.contractions).T, f"contractions, point {b}")
        assert_close(batched.mixed[b], np.stack([H2[b][:, i, j] for i, j in [(0, 1), (0, 2), (1, 2)]], 1), f"mixed {b}")
        assert_close(batched.third[b], diagonal(T3[b], 3), f"third, point {b}")
        assert_close(batched.fourth[b], diagonal(T4[b], 4), f"fourth, point {b}")
    # one point through jit alone equals the same point of the batch
    single = jax.jit(lambda x: jet(model, x, request))(xs[2])
    assert_close(single.fourth, batched.fourth[2], "jit(jet) vs jit(vmap(jet))")


def _cast(tree, dtype):
    return jax.tree_util.tree_map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, tree)


@pytest.mark.parametrize("x64", [False, True], ids=["default-mode", "x64-mode"])
def test_float32(x64, seed):
    """float32 runs (in JAX's default 32-bit mode, and a float32 network in x64 mode) and agrees
    with the float64 reference of the same weights. Tolerance: float32 eps is 1.2e-7; the same
    ~1e3-term error budget as TOL64 gives ~1e-4 relative to each array's scale, and third and
    fourth derivatives multiply up to four rounded first-layer factors more, so 1e-3 (seen:
    1e-6 and 2e-6). A wrong formula would be off by O(1)."""
    arch = Arch(3, 2, 16, 3, "tanh", None, True, True)
    request = full_request(3, (1.0, 0.5, -2.0))
    with jax.enable_x64(x64):
        model, x = build(arch, seed)
        model32, x32 = _cast(model, jnp.float32), x.astype(jnp.float32)
        jt = eqx.filter_jit(jet)(model32, x32, request)  # the default compile pipeline
        for name in ("value", "first", "second", "mixed", "contractions", "third", "fourth"):
            assert getattr(jt, name).dtype == jnp.float32, name
    # the reference: the same (float32-rounded) weights and point, in float64
    model64, x64_point = _cast(model32, jnp.float64), x32.astype(jnp.float64)
    u, J, H, T3, T4 = fast_jit(nested_jacfwd(model64, 4))(x64_point)
    assert_close(jt.value, u, "value", tol=1e-4)
    assert_close(jt.first, J, "first", tol=1e-4)
    assert_close(jt.second, diagonal(H, 2), "second", tol=1e-4)
    assert_close(jt.contractions, diagonal(H, 2) @ np.asarray(request.contractions).T, "contractions", tol=1e-4)
    assert_close(jt.mixed, np.stack([H[:, i, j] for i, j in [(0, 1), (0, 2), (1, 2)]], 1), "mixed", tol=1e-4)
    assert_close(jt.third, diagonal(T3, 3), "third", tol=1e-3)
    assert_close(jt.fourth, diagonal(T4, 4), "fourth", tol=1e-3)


# ---------------------------------------------------------------------------------------------
# 7. Bad input raises errors that name what is wrong


@pytest.fixture
def small_net():
    return MLP(3, 1, 4, 1, "tanh", key=jax.random.PRNGKey(0))


def test_batch_instead_of_point(small_net):
    with pytest.raises(ValueError, match=r"one point of shape \(d,\).*\(5, 3\).*vmap"):
        jet(small_net, jnp.zeros((5, 3)), Request(first=(0,)))
    with pytest.raises(ValueError, match=r"one point of shape \(d,\)"):
        jet(small_net, jnp.zeros(()), Request(first=(0,)))


def test_wrong_number_of_coordinates(small_net):
    with pytest.raises(ValueError, match=r"point has 2 coordinate\(s\) but the network takes 3"):
        jet(small_net, jnp.zeros(2), Request(first=(0,)))
    eqx_net = eqx.nn.MLP(4, 1, 3, 1, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"point has 3 coordinate\(s\) but the network takes 4"):
        jet(eqx_net, jnp.zeros(3), Request())


@pytest.mark.parametrize(
    "request_, match",
    [
        (Request(first=(3,)), r"Request.first asks for axis 3, but the input has 3 dimension"),
        (Request(second=(-1,)), r"Request.second asks for axis -1"),
        (Request(third=(0, 7)), r"Request.third asks for axis 7"),
        (Request(fourth=(5,)), r"Request.fourth asks for axis 5"),
        (Request(mixed=((0, 3),)), r"Request.mixed pair \(0, 3\) is out of range for a 3-dimensional input"),
        (Request(contractions=((1.0, 1.0),)), r"contractions weight vector has 2 entries, the input has 3"),
        (Request.laplacian(4), r"contractions weight vector has 4 entries, the input has 3"),
    ],
    ids=["first", "second-negative", "third", "fourth", "mixed", "contraction-short", "laplacian-long"],
)
def test_request_out_of_range(small_net, request_, match):
    with pytest.raises(ValueError, match=match):
        jet(small_net, jnp.zeros(3), request_)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(first=(0, 1, 0)), r"Request.first repeats an axis"),
        (dict(second=(2, 2)), r"Request.second repeats an axis"),
        (dict(third=(1, 1)), r"Request.third repeats an axis"),
        (dict(fourth=(0, 0)), r"Request.fourth repeats an axis"),
        (dict(mixed=((1, 1),)), r"Request.mixed entries are pairs of two different axes"),
        (dict(mixed=((0, 1, 2),)), r"Request.mixed entries are pairs of two different axes"),
        (dict(mixed=((0, 1), (1, 0))), r"Request.mixed repeats a pair"),
    ],
    ids=["first", "second", "third", "fourth", "mixed-same-axis", "mixed-triple", "mixed-repeat"],
)
def test_malformed_request(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Request(**kwargs)


def test_request_axes_must_be_a_tuple():
    with pytest.raises(TypeError, match=r"Request.first must be a tuple of axis indices"):
        Request(first=1)


def test_unknown_activation_lists_known_names():
    with pytest.raises(ValueError, match=r"unknown activation 'relu6'; known: .*gelu.*tanh"):
        get_activation("relu6")
    with pytest.raises(ValueError, match=r"unknown activation 'relu6'"):
        MLP(2, 1, 4, 1, "relu6", key=jax.random.PRNGKey(0))
    with pytest.raises(TypeError, match=r"activation must be a name, an AbstractActivation or a callable"):
        get_activation(3)


def test_integer_point(small_net):
    with pytest.raises(TypeError, match=r"point must be a floating-point array, got dtype int"):
        jet(small_net, jnp.arange(3), Request(first=(0,)))


# ---------------------------------------------------------------------------------------------
# 8. Activation derivative tables


def _tansig(z):
    return 2 / (1 + jnp.exp(-2 * z)) - 1  # the seed's definition


# The activation's value from an independent implementation (not the table's own).
REFERENCE_FN = {
    "tanh": jnp.tanh,
    "tansig": _tansig,
    "sin": jnp.sin,
    "cos": jnp.cos,
    "sigmoid": jax.nn.sigmoid,
    "softplus": jax.nn.softplus,
    "silu": jax.nn.silu,
    "swish": lambda z: z / (1 + jnp.exp(-z)),
    "gelu": lambda z: jax.nn.gelu(z, approximate=False),
    "identity": lambda z: z,
    "linear": lambda z: 1.0 * z,
}


def test_reference_functions_cover_every_name():
    assert set(REFERENCE_FN) == set(ACTIVATION_NAMES)


def _grad_tower(fn, order):
    fns = [fn]
    for _ in range(order):
        fns.append(jax.grad(fns[-1]))
    return fns


@fast_jit
def _tables_and_references(act, fn, z):
    tables = [act.table(z, order) for order in range(5)]
    references = [jax.vmap(g)(z) for g in _grad_tower(fn, 4)]
    return tables, references, act(z)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_table(name, seed):
    """``table(z, order)`` for orders 0..4 vs nested ``jax.grad`` of an independent
    implementation, on a grid over [-8, 8] plus random points. Tolerance 1e-12 relative and
    absolute: each side is a closed form of <= ~20 float64 operations on quantities of
    magnitude <= ~10 on this range, so both are within ~1e-14 of the truth; the margin covers
    cancellation such as ``1 - t^2`` near saturation."""
    act = get_activation(name)
    z = jnp.asarray(np.concatenate([np.linspace(-8.0, 8.0, 161), 3.0 * np.random.default_rng(seed).standard_normal(64)]))
    assert z.dtype == jnp.float64
    tables, references, value = _tables_and_references(act, REFERENCE_FN[name], z)
    for order, table in enumerate(tables):
        assert len(table) == order + 1
        for n in range(order + 1):
            assert table[n].shape == z.shape and table[n].dtype == z.dtype
            np.testing.assert_allclose(
                table[n], references[n], rtol=1e-12, atol=1e-12, err_msg=f"{name}: derivative {n} (table of order {order})"
            )
    np.testing.assert_allclose(value, references[0], rtol=1e-12, atol=1e-12, err_msg=f"{name}: __call__")
    assert act.is_linear == (name in ("identity", "linear"))


@pytest.mark.parametrize(
    "fn, table", [(jnp.tanh, Tanh()), (jnp.sin, Sin()), (jax.nn.sigmoid, Sigmoid()), (x_tanh_x, None)]
)
def test_autodiff_activation(fn, table):
    """The autodiff table of an arbitrary scalar function against the closed-form table (or,
    for ``z tanh z``, the closed form written out). Same tolerance argument as above."""
    z = jnp.linspace(-4.0, 4.0, 33).reshape(3, 11)  # any shape
    got = fast_jit(lambda z: AutodiffActivation(fn).table(z, 4))(z)
    if table is not None:
        want = table.table(z, 4)
    else:
        t = jnp.tanh(z)
        s = 1 - t * t  # sech^2
        want = [
            z * t,
            t + z * s,
            2 * s - 2 * z * t * s,
            -6 * t * s + z * s * (6 * t * t - 2),
            s * (24 * t * t - 8) + 8 * z * t * s * (2 - 3 * t * t),
        ]
    for n, (g, w) in enumerate(zip(got, want)):
        assert g.shape == z.shape
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, err_msg=f"derivative {n}")


def test_eqx_callables_map_to_closed_form_tables():
    assert isinstance(get_activation(jnp.tanh), Tanh)
    assert isinstance(get_activation(jax.nn.softplus), Softplus)
    assert isinstance(get_activation(jax.nn.silu), SiLU)
    assert isinstance(get_activation(jnp.cos), Cos)
    assert isinstance(get_activation(x_tanh_x), AutodiffActivation)
    assert isinstance(get_activation("GELU"), GELU)  # names are case-insensitive


def test_grouped_activation():
    act = Grouped((Sin(), Cos(), Identity()), (2, 3, 1))
    z = jnp.linspace(-1.0, 1.0, 6)
    got = act.table(z, 4)
    parts = [Sin().table(z[:2], 4), Cos().table(z[2:5], 4), Identity().table(z[5:], 4)]
    for n in range(5):
        np.testing.assert_array_equal(got[n], jnp.concatenate([p[n] for p in parts]))
    assert not act.is_linear and Grouped((Identity(),), (6,)).is_linear


# ---------------------------------------------------------------------------------------------
# The networks themselves (what the engine reads must be the function the user defined)


def test_input_box_is_the_affine_map_to_unit_box(seed):
    lo, hi = (-1.0, 0.0, 2.0), (3.0, 0.5, 2.25)

    @fast_jit  # the real constructors, compiled together (eager construction is slow)
    def both(key, x):
        plain = MLP(3, 2, 8, 2, "tanh", key=key)
        boxed = MLP(3, 2, 8, 2, "tanh", key=key, input_lower=lo, input_upper=hi)
        mapped = 2 * (x - jnp.asarray(lo)) / (jnp.asarray(hi) - jnp.asarray(lo)) - 1
        return boxed(x), plain(mapped)

    u = np.random.default_rng(seed).uniform(size=3)
    x = jnp.asarray(np.asarray(lo) + (np.asarray(hi) - np.asarray(lo)) * u)
    boxed, plain = both(jax.random.PRNGKey(seed), x)
    assert_close(boxed, plain, "boxed(x) vs plain(2 (x - lo) / (hi - lo) - 1)")


def test_factorization_reparametrises_the_same_weights(seed):
    """``exp(s) * V`` is the Glorot weight drawn from the same key: the same function."""

    @fast_jit
    def both(key, x):
        plain = MLP(2, 1, 8, 3, "tanh", key=key)
        fact = MLP(2, 1, 8, 3, "tanh", key=key, factorization={"mean": 1.0, "std": 0.1})
        assert fact.layers[0].log_scale is not None and plain.layers[0].log_scale is None
        return fact(x), plain(x)

    fact, plain = both(jax.random.PRNGKey(seed), jnp.asarray([0.3, -0.7]))
    assert_close(fact, plain, "factorised vs plain")


def test_embeddings(seed):
    key = jax.random.PRNGKey(seed)
    ff = FourierFeatures(2, 4, 2.0, key=key)
    x = jnp.asarray([0.4, -1.1])
    assert_close(ff(x), jnp.concatenate([jnp.sin(ff.B @ x), jnp.cos(ff.B @ x)]), "fourier features")
    pe = PeriodicEmbedding(3, (0, 2), (2.0, 0.5), harmonics=2)
    net = MLP(3, 2, 8, 2, "tanh", key=key, embedding=pe)
    p = jnp.asarray([0.3, -0.2, 0.1])
    shifted = p + jnp.asarray([2.0, 0.0, 0.0]) - jnp.asarray([0.0, 0.0, 1.5])
    assert_close(net(shifted), net(p), "periodic in axes 0 (period 2) and 2 (period 0.5)")
    # so are its derivatives through the engine
    r = Request(first=(0, 1, 2), second=(0, 2))
    assert_close(jit_jet(net, shifted, r).second, jit_jet(net, p, r).second, "periodic second derivatives")


def test_jet_batch_and_vmapped_jet_agree_with_hessian_and_ensembles_work(strict_jax, key):
    """``jet_batch`` (the trainer's path), per-point ``jet`` under vmap (routed to the batched
    pass by custom_vmap) and an ensemble vmapped over networks all match jax.hessian."""
    import equinox as eqx

    from pinnjax.derivatives import jet_batch

    d = 3
    kx, *kms = jax.random.split(key, 4)
    models = [MLP(d, 2, 8, 2, "tanh", key=k, dtype=jnp.float64) for k in kms]
    xs = jax.random.normal(kx, (5, d), dtype=jnp.float64)
    req = Request(first=(0,), contractions=((1.0, 1.0, 1.0),), third=(2,))

    @eqx.filter_jit  # one compiled reference for the four models (op by op it took seconds)
    def reference(m, x):
        H = jax.hessian(m)(x)
        return jnp.trace(H, axis1=1, axis2=2)

    ref = jax.vmap(lambda x: reference(models[0], x))(xs)
    # float64 rounding of O(1) sums over a few layers: 1e-10 leaves a wide margin
    np.testing.assert_allclose(jet_batch(models[0], xs, req).contractions[..., 0], ref, atol=1e-10)
    np.testing.assert_allclose(jax.vmap(lambda x: jet(models[0], x, req).contractions[:, 0])(xs), ref, atol=1e-10)
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *[eqx.filter(m, eqx.is_array) for m in models])
    static = eqx.filter(models[0], eqx.is_array, inverse=True)
    ens = jax.vmap(lambda p: jet(eqx.combine(p, static), xs[0], req).contractions[:, 0])(stacked)
    for i, m in enumerate(models):
        np.testing.assert_allclose(ens[i], reference(m, xs[0]), atol=1e-10)
    with pytest.raises(ValueError, match="batch of points"):
        jet_batch(models[0], xs[0], req)


def test_batched_pass_of_every_network_equals_the_per_point_pass(key):
    """``jet_batch`` (one GEMM per group over the whole batch, what the trainer runs) against
    the per-point pass that the harness above checks against autodiff, for every network and
    every derivative kind, under rank-promotion errors. Same arithmetic in another order: 1e-10."""
    from pinnjax.derivatives import jet_batch

    d = 3
    xs = jax.random.normal(key, (5, d), dtype=jnp.float64)
    request = full_request(d, (1.0, -0.5, 2.0), higher=True)
    emb = FourierFeatures(d, 4, 1.0, key=key)
    for cls in NETWORKS.values():
        net = cls(d, 2, 8, 2, key=key, embedding=emb, factorization={"mean": 1.0, "std": 0.1}, dtype=jnp.float64)
        if isinstance(net, PirateNet):
            net = eqx.tree_at(lambda m: m.alpha, net, jnp.asarray([0.6, -0.4]))
        batched = fast_jit(jet_batch)(net, xs, request)
        single = fast_jit(lambda m, x: jet(m, x, request))
        for b in range(xs.shape[0]):
            one = single(net, xs[b])
            for name in ("value", "first", "second", "mixed", "contractions", "third", "fourth", "multi", "bilaplacian"):
                assert_close(getattr(batched, name)[b], getattr(one, name), f"{cls.__name__} {name} point {b}")
