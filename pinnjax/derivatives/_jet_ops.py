"""Arithmetic on jets, for output transforms ``u = g(x) + D(x) * N(x)`` (hard constraints):
the derivatives of a product follow Leibniz's rule, which needs the lower-order derivatives
of both factors, so a transform first *closes* the request over lower orders."""

from __future__ import annotations

import jax.numpy as jnp

from ._request import Jet, Request


def closure(request: Request) -> Request:
    """``request`` plus every lower-order derivative that Leibniz's rule reads."""
    fourth = request.fourth
    third = tuple(dict.fromkeys(request.third + fourth))
    second = tuple(dict.fromkeys(request.second + third))
    contracted = tuple(k for w in request.contractions for k, c in enumerate(w) if c != 0.0)
    mixed_axes = tuple(k for p in request.mixed for k in p)
    first = tuple(dict.fromkeys(request.first + second + contracted + mixed_axes))
    if request.multi or request.bilaplacian:
        raise NotImplementedError(
            "a hard constraint (u = g + D * network) with mixed third/fourth derivatives or the "
            "biharmonic is not supported yet: impose those boundary conditions as loss terms"
        )
    return Request(first, second, request.mixed, request.contractions, third, fourth)


def _col(arr, axes, k):
    return arr[..., axes.index(k)]


def restrict(jet: Jet, full: Request, request: Request) -> Jet:
    """The columns of ``request`` out of a jet computed for the larger request ``full``."""

    def pick(arr, have, want):
        if not want:
            return arr[..., :0]
        return jnp.stack([_col(arr, have, k) for k in want], axis=-1)

    return Jet(
        value=jet.value,
        first=pick(jet.first, full.first, request.first),
        second=pick(jet.second, full.second, request.second),
        mixed=pick(jet.mixed, full.mixed, request.mixed),
        contractions=pick(jet.contractions, full.contractions, request.contractions),
        third=pick(jet.third, full.third, request.third),
        fourth=pick(jet.fourth, full.fourth, request.fourth),
        multi=pick(jet.multi, full.multi, request.multi),
        bilaplacian=jet.bilaplacian[..., : len(request.bilaplacian) and 1],
    )


def jet_add(a: Jet, b: Jet) -> Jet:
    return Jet(*(x + y for x, y in zip(_fields(a), _fields(b))))


def _fields(j: Jet):
    return (j.value, j.first, j.second, j.mixed, j.contractions, j.third, j.fourth, j.multi, j.bilaplacian)


def jet_mul(a: Jet, b: Jet, request: Request) -> Jet:
    """Jet of the product ``a * b``; both computed for ``request``, which must be closed
    (see :func:`closure`). Outputs broadcast (a scalar factor times several outputs)."""
    a0, b0 = a.value[..., None], b.value[..., None]

    def d1(j, k):
        return _col(j.first, request.first, k)

    def d2(j, k):
        return _col(j.second, request.second, k)

    def d3(j, k):
        return _col(j.third, request.third, k)

    first = a.first * b0 + a0 * b.first
    second = a.second * b0 + a0 * b.second
    if request.second:
        second = second + 2 * jnp.stack([d1(a, k) * d1(b, k) for k in request.second], axis=-1)
    mixed = a.mixed * b0 + a0 * b.mixed
    if request.mixed:
        mixed = mixed + jnp.stack(
            [d1(a, i) * d1(b, j) + d1(a, j) * d1(b, i) for i, j in request.mixed], axis=-1
        )
    contractions = a.contractions * b0 + a0 * b.contractions
    if request.contractions:
        cross = []
        for w in request.contractions:
            terms = [c * d1(a, k) * d1(b, k) for k, c in enumerate(w) if c != 0.0]
            cross.append(2 * sum(terms) if terms else jnp.zeros_like(a.value * b.value))
        contractions = contractions + jnp.stack(cross, axis=-1)
    third = a.third * b0 + a0 * b.third
    if request.third:
        third = third + jnp.stack(
            [3 * (d2(a, k) * d1(b, k) + d1(a, k) * d2(b, k)) for k in request.third], axis=-1
        )
    fourth = a.fourth * b0 + a0 * b.fourth
    if request.fourth:
        fourth = fourth + jnp.stack(
            [
                4 * (d3(a, k) * d1(b, k) + d1(a, k) * d3(b, k)) + 6 * d2(a, k) * d2(b, k)
                for k in request.fourth
            ],
            axis=-1,
        )
    empty = (a.value * b.value)[..., None][..., :0]
    return Jet(a.value * b.value, first, second, mixed, contractions, third, fourth, empty, empty)
