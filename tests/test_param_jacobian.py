"""The Kronecker-form residual Jacobian (``derivatives/_param_jacobian.py``) against a
per-point ``jax.jacrev`` of the residual with respect to the flat parameters, float64: every
network type of ``pinnjax.nn``, every derivative kind the engine carries, the Gauss-Newton
matrix ``J^T J``, and the autodiff fallback for leaves that are not dense weights (PirateNet's
alpha, a problem unknown, factorised layers, a fixed Fourier embedding)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest
from jax.flatten_util import ravel_pytree

import pinnjax.nn as pnn
from pinnjax.derivatives import Request, jet_batch
from pinnjax.derivatives._param_jacobian import kronecker_jacobian, kronecker_leaves
from pinnjax.train import precision

pytestmark = pytest.mark.usefixtures("strict_jax")

# derivative kind -> (request, the Jet field read, its column count) at d = 2
KINDS = {
    "value": (Request(), "value", 0),
    "first": (Request(first=(0, 1)), "first", 2),
    "laplacian": (Request(contractions=((1.0, 0.5),)), "contractions", 1),
    "second": (Request(second=(0, 1)), "second", 2),
    "mixed": (Request(mixed=((0, 1),)), "mixed", 1),
    "third": (Request(third=(1,)), "third", 1),
}


def _merge(requests):
    fields = ("first", "second", "mixed", "contractions", "third")
    return Request(**{f: tuple(sorted({v for r in requests for v in getattr(r, f)})) for f in fields})


def _residual(kinds):
    """``(params, xs) -> (N, k)``: per kind and network output, ``u_kind + c u^2`` (a nonlinear
    residual reading that derivative; ``c`` a trained unknown)."""
    request = _merge([KINDS[k][0] for k in kinds])

    def residual(params, xs):
        model, c = params
        jet = jet_batch(model, xs, request)
        cols = []
        for kind in kinds:
            want, field, _ = KINDS[kind]
            block = getattr(jet, field)
            if field == "value":
                cols.append(block + c * jet.value**2)
                continue
            positions = [getattr(request, field).index(v) for v in getattr(want, field)]
            for p in positions:
                cols.append(block[:, :, p] + c * jet.value**2)
        return jnp.concatenate(cols, axis=1)

    return residual


def _networks(key, **extra):
    k = jax.random.split(key, 4)
    box = dict(input_lower=(-1.0, 0.0), input_upper=(1.0, 2.0))  # the first layer's input map
    pirate = pnn.PirateNet(2, 2, width=5, blocks=1, key=k[2], dtype=jnp.float64, **extra)
    pirate = eqx.tree_at(lambda m: m.alpha, pirate, jnp.full_like(pirate.alpha, 0.4))  # not 0: a real path
    return {
        "MLP": pnn.MLP(2, 2, width=5, depth=2, key=k[0], dtype=jnp.float64, **box, **extra),
        "ModifiedMLP": pnn.ModifiedMLP(2, 2, width=5, depth=2, key=k[1], dtype=jnp.float64, **extra),
        "PirateNet": pirate,
        "ResNet": pnn.ResNet(2, 2, width=5, blocks=1, key=k[3], dtype=jnp.float64, **box, **extra),
    }


def _check(model, kinds, xs, factorized=False):
    """Kronecker J equals per-point jacrev, and so does J^T J. Every dense layer's weight and
    bias is in Kronecker form (a factorised layer's bias only; PirateNet's alpha and the
    unknown ``c`` never)."""
    params = (eqx.filter(model, eqx.is_inexact_array), jnp.asarray(0.3, jnp.float64))
    residual = _residual(kinds)
    in_kronecker = kronecker_leaves(residual, params, xs)
    layers = [leaf for layer in jax.tree.leaves(params, is_leaf=lambda n: isinstance(n, pnn.Linear))
              if isinstance(layer, pnn.Linear) for leaf in ((layer.bias,) if factorized else (layer.V, layer.bias))]
    expected = [any(leaf is x for x in layers) for leaf in jax.tree.leaves(params)]
    assert sum(expected) >= 4
    assert in_kronecker == expected
    flat, unravel = ravel_pytree(params)

    @jax.jit
    def both(flat):
        J = kronecker_jacobian(residual, unravel(flat), xs)

        def one(f, x):
            return residual(unravel(f), x[None])[0]

        J_ref = jax.vmap(jax.jacrev(one), in_axes=(None, 0))(flat, xs).reshape(J.shape)
        return J, J_ref

    J, J_ref = both(flat)
    scale = jnp.max(jnp.abs(J_ref))
    assert J.shape[1] == flat.shape[0] and scale > 0
    err = jnp.max(jnp.abs(J - J_ref), axis=0)
    assert jnp.max(err) < 1e-11 * scale, f"worst column {int(jnp.argmax(err))}"
    G, G_ref = J.T @ J, J_ref.T @ J_ref
    assert jnp.max(jnp.abs(G - G_ref)) < 1e-11 * scale**2 * J.shape[0]


XS = jnp.array([[0.3, 0.7], [-0.5, 1.2], [0.9, 0.1]])


@pytest.mark.parametrize("net", ["MLP", "ModifiedMLP", "PirateNet", "ResNet"])
def test_kronecker_jacobian_matches_jacrev_every_network(net):
    """All six derivative kinds at once (one residual component per kind and output)."""
    with precision("float64"):
        model = _networks(jax.random.key(0))[net]
        _check(model, list(KINDS), XS.astype(jnp.float64))


@pytest.mark.parametrize("kind", list(KINDS))
def test_kronecker_jacobian_matches_jacrev_each_derivative_kind(kind):
    """Each kind alone (the engine carries only what it needs: value alone carries no group)."""
    with precision("float64"):
        model = _networks(jax.random.key(1))["MLP"]
        _check(model, [kind], XS.astype(jnp.float64))


@pytest.mark.parametrize("extra", [{"factorization": {"mean": 0.5, "std": 0.1}},
                                   {"embedding": "fourier"}], ids=["factorized", "fourier"])
def test_kronecker_jacobian_fallback_leaves(extra):
    """Factorised layers (V, log_scale not passed to linear: autodiff fallback) and a fixed
    Fourier embedding (a stop_gradient weight in linear) still give the autodiff Jacobian."""
    with precision("float64"):
        if extra.get("embedding") == "fourier":
            extra = {"embedding": pnn.FourierFeatures(2, 3, 1.0, key=jax.random.key(7))}
        model = _networks(jax.random.key(2), **extra)["ResNet"]
        _check(model, ["value", "laplacian", "mixed"], XS.astype(jnp.float64), factorized="factorization" in extra)
