"""The engine's chunked batch (``jet_batch(..., chunk=N)`` and ``auto_chunk``): the batch runs
``N`` points at a time (``lax.map``), each chunk rematerialised in the backward pass.

References are independent of the engine: nested ``jax.jacfwd`` of the plain network call for
the derivatives, and ``jax.grad`` of a loss built from those for the parameter gradients; all
in float64 (``strict_jax``). The batch sizes are not multiples of the chunk, so the padding is
exercised too. Tolerance 1e-10 relative to each array's scale (the argument of
tests/test_derivatives.py's module docstring: the chunked pass does the same arithmetic in
smaller matmuls).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pinnjax.derivatives._engine as engine
from pinnjax.derivatives import Estimator, Request, auto_chunk, jet_batch, propagate
from pinnjax.derivatives._carried import LINEAR_RECORDERS
from pinnjax.nn import MLP, ModifiedMLP, PirateNet, ResNet

pytestmark = pytest.mark.usefixtures("strict_jax")

TOL = 1e-10


def _network(name, d, key):
    if name == "mlp":
        return MLP(d, 1, 12, 2, "tanh", key=key, dtype=jnp.float64)
    if name == "modified_mlp":
        return ModifiedMLP(d, 1, 12, 2, "tanh", key=key, dtype=jnp.float64)
    if name == "pirate":
        net = PirateNet(d, 1, 12, 2, "tanh", key=key, dtype=jnp.float64)
        return eqx.tree_at(lambda m: m.alpha, net, jnp.full_like(net.alpha, 0.5))  # blocks switched on
    return ResNet(d, 1, 12, 2, "tanh", key=key, dtype=jnp.float64)


def _reference(model, xs):
    """u, u_x0, u_x0x0, u_x0x1, lap u and u_x0x0x0 by nested jax.jacfwd, per point."""

    def one(x):
        f = lambda p: model(p)[0]  # noqa: E731
        g = jax.jacfwd(f)(x)
        H = jax.jacfwd(jax.jacfwd(f))(x)
        T = jax.jacfwd(jax.jacfwd(jax.jacfwd(f)))(x)
        return jnp.stack([f(x), g[0], H[0, 0], H[0, 1], jnp.trace(H), T[0, 0, 0]])

    return jax.vmap(one)(xs)


REQUEST = Request(first=(0,), second=(0,), mixed=((0, 1),), contractions=((1.0, 1.0, 1.0),), third=(0,))


def _engine(model, xs, chunk):
    j = jet_batch(model, xs, REQUEST, chunk=chunk)
    return jnp.stack([j.value[:, 0], j.first[:, 0, 0], j.second[:, 0, 0], j.mixed[:, 0, 0],
                      j.contractions[:, 0, 0], j.third[:, 0, 0]], axis=1)


def _close(actual, expected, what):
    scale = float(jnp.max(jnp.abs(expected)))
    assert scale > 0, what
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOL * scale, err_msg=what)


@pytest.mark.parametrize("name", ["mlp", "modified_mlp", "pirate", "resnet"])
def test_chunked_jet_and_its_gradient_match_nested_jacfwd(name, key):
    model = _network(name, 3, key)
    xs = jax.random.uniform(jax.random.fold_in(key, 1), (23, 3), jnp.float64, -1.0, 1.0)
    ref = _reference(model, xs)
    for chunk in (0, 5, 23):
        _close(_engine(model, xs, chunk), ref, f"{name}, chunk {chunk}")

    def loss(m, fn):
        return jnp.sum(jnp.sin(fn(m)))

    grads = eqx.filter_grad(loss)(model, lambda m: _engine(m, xs, 5))
    ref_grads = eqx.filter_grad(loss)(model, lambda m: _reference(m, xs))
    leaves, ref_leaves = (jax.tree.leaves(eqx.filter(g, eqx.is_inexact_array)) for g in (grads, ref_grads))
    assert len(leaves) == len(ref_leaves) > 0
    scale = max(float(jnp.max(jnp.abs(g))) for g in ref_leaves)
    for i, (g, r) in enumerate(zip(leaves, ref_leaves)):
        np.testing.assert_allclose(g, r, rtol=0, atol=TOL * scale, err_msg=f"{name}: gradient leaf {i}")


def test_chunked_estimate_uses_the_same_directions(key):
    """A randomised Laplacian with a hard constraint: chunked, the same key gives the same
    directions per point, so the same estimate as the whole batch (to rounding)."""
    model = _network("mlp", 6, key)
    xs = jax.random.uniform(jax.random.fold_in(key, 2), (19, 6), jnp.float64, -0.5, 0.5)
    request = Request.laplacian(6).estimated(Estimator("sparse", 3))
    constraint = lambda p: (jnp.sum(p), 1.0 - jnp.sum(p * p))  # noqa: E731
    k = jax.random.fold_in(key, 3)
    whole = propagate(model.forward, xs, request, key=k, constraint=constraint)
    chunked = propagate(model.forward, xs, request, key=k, constraint=constraint, chunk=4)
    _close(chunked.contractions, whole.contractions, "estimate")
    _close(chunked.value, whole.value, "value")


def test_auto_chunk_policy(key):
    model = MLP(2, 1, 128, 4, "tanh", key=key)  # carried rows of a 2-D Laplacian: 4 (u, u_x, u_y, lap)
    lap = Request.laplacian(2)
    assert auto_chunk(model, 100, lap) == 0  # small batch: whole
    chunk = auto_chunk(model, 4096, lap)
    assert chunk == engine.CHUNK_NUMBERS // (4 * 128) and 4096 >= engine.MIN_CHUNKS * chunk
    # never smaller than MIN_CHUNK_POINTS points: 100 points of a wide network run whole
    wide = MLP(1000, 1, 1024, 1, "silu", key=key)
    assert auto_chunk(wide, 100, Request.laplacian(1000).estimated(Estimator("sparse", 16))) == 0
    assert auto_chunk(wide, 10**5, Request.laplacian(1000)) == engine.MIN_CHUNK_POINTS
    # equal chunks: 2,048 points at a target of 341 (rows 12 x width 64) run as 7 x 293, not
    # as 6 x 341 plus a padded seventh chunk
    mlp10 = MLP(10, 1, 64, 4, "tanh", key=key)
    assert engine.CHUNK_NUMBERS // (12 * 64) == 341 and auto_chunk(mlp10, 2048, Request.laplacian(10)) == 293
    # not while a residual's parameter Jacobian is recorded (ENGD / LM read every layer input)
    LINEAR_RECORDERS.append(lambda h, w, b, out: out)
    try:
        assert auto_chunk(model, 4096, lap) == 0
    finally:
        LINEAR_RECORDERS.pop()


def test_auto_chunk_is_what_jet_batch_runs(key, monkeypatch):
    """jet_batch(chunk=None) takes auto_chunk's size: with a tiny chunk size forced, a batch
    runs in chunks and still matches the reference."""
    monkeypatch.setattr(engine, "CHUNK_NUMBERS", 1)
    monkeypatch.setattr(engine, "MIN_CHUNK_POINTS", 4)
    monkeypatch.setattr(engine, "MIN_CHUNKS", 2)
    model = _network("modified_mlp", 3, key)
    xs = jax.random.uniform(jax.random.fold_in(key, 4), (11, 3), jnp.float64, -1.0, 1.0)
    assert auto_chunk(model, 11, REQUEST) == 4
    calls = []
    original = engine._in_chunks
    monkeypatch.setattr(engine, "_in_chunks", lambda *a: calls.append(a[-1]) or original(*a))
    _close(_engine(model, xs, None), _reference(model, xs), "auto chunk")
    assert calls == [4]


@pytest.mark.parametrize("chunk", [-1, 2.5, True])
def test_bad_chunk_is_a_named_error(chunk, key):
    model = _network("mlp", 2, key)
    with pytest.raises(ValueError, match="chunk must be None, 0 or a positive number of points"):
        jet_batch(model, jnp.zeros((4, 2)), Request.laplacian(2), chunk=chunk)


def test_config_chunk_reaches_the_engine_and_trains_the_same(monkeypatch):
    """``derivatives.chunk: 7`` (a run of 32 interior points): the training step's engine pass
    runs in chunks of 7, and 20 Adam steps end where the unchunked run (``chunk: 0``) does, to
    float64 rounding; outside a run the setting is gone."""
    import pinnjax as pj
    from pinnjax.problems import Poisson1D

    calls = []
    original = engine._in_chunks
    monkeypatch.setattr(engine, "_in_chunks", lambda *a: calls.append(a[-1]) or original(*a))
    tiny = {"model": {"width": 8, "depth": 2, "dtype": "float64"},
            "train": {"steps": 20, "lbfgs_steps": 0, "scan_steps": 10, "log_every": 10, "checkpoint_every": 10},
            "sampling": {"interior": 32, "boundary": 8}, "eval": {"every": 10, "points": 64},
            "output": {"plots": False}}
    chunked = pj.solve(Poisson1D(), tiny, derivatives={"chunk": 7})
    assert 7 in calls
    calls.clear()
    whole = pj.solve(Poisson1D(), tiny, derivatives={"chunk": 0})
    assert calls == []
    assert [r["loss"] for r in chunked.history] == pytest.approx([r["loss"] for r in whole.history], rel=1e-9)
    assert engine._CHUNK_SETTING == []
