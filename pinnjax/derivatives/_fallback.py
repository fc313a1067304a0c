"""Reference path: every requested derivative by nested forward-mode ``jax.jvp``.

Exact for any function; used for networks the engine does not recognise and, in the tests,
as one of the independent references.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._request import Jet, Request


def _directional(fn, x, directions):
    """``d^n fn / dv_1 ... dv_n`` at ``x`` by nesting ``jax.jvp`` once per direction."""
    g = fn
    for v in directions:
        g = (lambda h, v: (lambda p: jax.jvp(h, (p,), (v,))[1]))(g, v)
    return g(x)


def jet_autodiff(fn, x: jax.Array, request: Request) -> Jet:
    d = x.shape[0]
    eye = jnp.eye(d, dtype=x.dtype)
    value = fn(x)
    n_out = value.shape[0]

    def cols(axes, order):
        if not axes:
            return jnp.zeros((n_out, 0), value.dtype)
        return jnp.stack([_directional(fn, x, [eye[k]] * order) for k in axes], axis=1)

    if request.mixed:
        mixed = jnp.stack([_directional(fn, x, [eye[i], eye[j]]) for i, j in request.mixed], axis=1)
    else:
        mixed = jnp.zeros((n_out, 0), value.dtype)
    if request.contractions:
        contracted = sorted({k for w in request.contractions for k, c in enumerate(w) if c != 0.0})
        diag = {k: _directional(fn, x, [eye[k]] * 2) for k in contracted}
        contractions = jnp.stack(
            [sum((c * diag[k] for k, c in enumerate(w) if c != 0.0), jnp.zeros_like(value)) for w in request.contractions],
            axis=1,
        )
    else:
        contractions = jnp.zeros((n_out, 0), value.dtype)
    if request.multi:
        multi = jnp.stack([_directional(fn, x, [eye[k] for k in m]) for m in request.multi], axis=1)
    else:
        multi = jnp.zeros((n_out, 0), value.dtype)
    if request.bilaplacian:  # sum_ij c_i c_j u_iijj
        c = request.bilaplacian
        K = [k for k in range(d) if c[k] != 0.0]
        terms = [c[i] * c[j] * _directional(fn, x, [eye[i], eye[i], eye[j], eye[j]]) for i in K for j in K]
        bilap = sum(terms, jnp.zeros_like(value))[:, None]
    else:
        bilap = jnp.zeros((n_out, 0), value.dtype)
    return Jet(
        value=value,
        first=cols(request.first, 1),
        second=cols(request.second, 2),
        mixed=mixed,
        contractions=contractions,
        third=cols(request.third, 3),
        fourth=cols(request.fourth, 4),
        multi=multi,
        bilaplacian=bilap,
    )
