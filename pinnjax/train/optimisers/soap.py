"""SOAP (Vyas et al. 2024; for PINNs Wang et al. 2025): Adam run in the eigenbasis of a
Shampoo preconditioner. Every weight matrix ``G`` (other leaves as a column) keeps
``L = E[G G^T]``, ``R = E[G^T G]``; every ``precondition_every`` steps their eigenvectors
``Q_L``, ``Q_R`` are recomputed; the Adam moments live in the rotated gradient
``Q_L^T G Q_R`` and the update is rotated back. Same schedules, balancing and causal
weighting as Adam."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from .adam import Adam


class SoapLeaf(NamedTuple):
    m: jax.Array  # first moment (original basis)
    v: jax.Array  # second moment (rotated basis)
    L: jax.Array
    R: jax.Array
    QL: jax.Array
    QR: jax.Array


class SoapState(NamedTuple):
    count: jax.Array
    leaves: tuple


def _as_matrix(x):
    return x if x.ndim == 2 else x.reshape(-1, 1)


def _eigenbasis(S):
    _, Q = jnp.linalg.eigh(S)
    return Q


def scale_by_soap(b1, b2, shampoo_beta, eps, precondition_every) -> optax.GradientTransformation:
    def init(params):
        def one(p):
            g = _as_matrix(p)
            m, n = g.shape
            return SoapLeaf(jnp.zeros_like(g), jnp.zeros_like(g), jnp.zeros((m, m), g.dtype),
                            jnp.zeros((n, n), g.dtype), jnp.eye(m, dtype=g.dtype), jnp.eye(n, dtype=g.dtype))

        return SoapState(jnp.asarray(0, jnp.int32), tuple(one(p) for p in jax.tree.leaves(params)))

    def update(updates, state, params=None):
        del params
        leaves, treedef = jax.tree.flatten(updates)
        count = state.count + 1
        refresh = (count - 1) % precondition_every == 0
        t = count.astype(leaves[0].dtype)
        out, new_leaves = [], []
        for g0, s in zip(leaves, state.leaves):
            G = _as_matrix(g0)
            L = shampoo_beta * s.L + (1 - shampoo_beta) * (G @ G.T)
            R = shampoo_beta * s.R + (1 - shampoo_beta) * (G.T @ G)
            QL, QR = jax.lax.cond(
                refresh, lambda L, R, _: (_eigenbasis(L), _eigenbasis(R)), lambda _L, _R, old: old, L, R, (s.QL, s.QR)
            )
            m = b1 * s.m + (1 - b1) * G
            v = b2 * s.v + (1 - b2) * (QL.T @ G @ QR) ** 2
            m_hat = (QL.T @ m @ QR) / (1 - b1**t)
            v_hat = v / (1 - b2**t)
            u = QL @ (m_hat / (jnp.sqrt(v_hat) + eps)) @ QR.T
            out.append(u.reshape(g0.shape))
            new_leaves.append(SoapLeaf(m, v, L, R, QL, QR))
        return jax.tree.unflatten(treedef, out), SoapState(count, tuple(new_leaves))

    return optax.GradientTransformation(init, update)


@dataclasses.dataclass(frozen=True)
class SOAP(Adam):
    name = "soap"

    b1: float = 0.9
    b2: float = 0.999
    shampoo_beta: float = 0.999
    eps: float = 1e-8
    precondition_every: int = 10

    def transform(self) -> optax.GradientTransformation:
        return optax.chain(
            scale_by_soap(self.b1, self.b2, self.shampoo_beta, self.eps, self.precondition_every),
            optax.scale_by_learning_rate(self.schedule()),
        )
