"""Arithmetic on jets, for output transforms ``u = g(x) + D(x) * N(x)`` (hard constraints):
the derivatives of a product follow Leibniz's rule, which needs the lower-order derivatives
of both factors, so a transform first *closes* the request over lower orders."""

from __future__ import annotations

import jax.numpy as jnp

from ._carried import _leibniz_terms, _sub_multisets
from ._request import Jet, Request


def _bilap_axes(request: Request) -> tuple[int, ...]:
    return tuple(k for k, c in enumerate(request.bilaplacian) if c != 0.0)


def closure(request: Request) -> Request:
    """``request`` plus every lower-order derivative that Leibniz's rule reads. For the
    biharmonic ``L^2`` that is ``L`` itself, the Hessian over its axes K and ``d_i L`` (the
    third derivatives ``u_kki``), see :func:`jet_mul`."""
    lists = {1: list(request.first), 2: list(request.second), 3: list(request.third), 4: list(request.fourth)}
    mixed, multi = list(request.mixed), list(request.multi)
    contractions = list(request.contractions)
    K = _bilap_axes(request)
    needed = list(request.multi) + [tuple(sorted((k, k, i))) for k in K for i in K]
    if K:
        needed += [(k, k) for k in K] + [(i, j) for i in K for j in K if i < j]
        if request.bilaplacian not in contractions:
            contractions.append(request.bilaplacian)
    for S in needed:
        for B in sorted(_sub_multisets(S), key=lambda b: (len(b), b)):
            if len(set(B)) == 1:
                lists[len(B)].append(B[0])
            elif len(B) == 2:
                mixed.append(B)
            else:
                multi.append(B)
    fourth = tuple(dict.fromkeys(lists[4]))
    third = tuple(dict.fromkeys(lists[3] + list(fourth)))
    second = tuple(dict.fromkeys(lists[2] + list(third)))
    contracted = [k for w in contractions for k, c in enumerate(w) if c != 0.0]
    mixed = tuple(dict.fromkeys(mixed))
    first = tuple(dict.fromkeys(lists[1] + list(second) + contracted + [k for p in mixed for k in p]))
    return Request(first, second, mixed, tuple(dict.fromkeys(contractions)), third, fourth,
                   tuple(dict.fromkeys(multi)), request.bilaplacian)


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
    def d(j, S):  # the derivative along the sorted axis multiset S, from the (closed) jet
        if not S:
            return j.value
        if len(set(S)) == 1:
            field = ("first", "second", "third", "fourth")[len(S) - 1]
            return _col(getattr(j, field), getattr(request, field), S[0])
        if len(S) == 2:
            return _col(j.mixed, request.mixed, S)
        return _col(j.multi, request.multi, S)

    empty = (a.value * b.value)[..., None][..., :0]
    multi = empty
    if request.multi:
        multi = jnp.stack(
            [sum(n * d(a, T) * d(b, R) for n, T, R in _leibniz_terms(S)) for S in request.multi], axis=-1
        )
    bilap = empty
    if request.bilaplacian:
        # L^2(ab) = a L^2 b + b L^2 a + 2 La Lb + 4 sum_i c_i (a_i T_i b + b_i T_i a)
        #           + 4 sum_ik c_i c_k a_ik b_ik,  T_i = d_i L = sum_k c_k u_kki
        c, K = request.bilaplacian, _bilap_axes(request)
        col = request.contractions.index(request.bilaplacian)
        La, Lb = a.contractions[..., col], b.contractions[..., col]

        def T(j, i):
            return sum(c[k] * d(j, tuple(sorted((k, k, i)))) for k in K)

        hess = sum(c[i] * c[k] * d(a, tuple(sorted((i, k)))) * d(b, tuple(sorted((i, k)))) for i in K for k in K)
        grad = sum(c[i] * (d(a, (i,)) * T(b, i) + d(b, (i,)) * T(a, i)) for i in K)
        bilap = (a.value * b.bilaplacian[..., 0] + b.value * a.bilaplacian[..., 0] + 2 * La * Lb + 4 * grad + 4 * hess)[..., None]
    return Jet(a.value * b.value, first, second, mixed, contractions, third, fourth, multi, bilap)
