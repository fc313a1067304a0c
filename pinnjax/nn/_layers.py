"""Pieces every pinnjax network shares: the dense layer (with optional random weight
factorisation), the input box map and the input embedding."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ..derivatives import add, scale


class Linear(eqx.Module):
    """Dense layer ``W x + b``; with ``factorized`` the weight is ``exp(s) * V`` row-wise
    (random weight factorisation, Wang et al. 2023), which the engine sees as a plain ``W``.
    Apply it with ``pinnjax.nn.linear(h, layer)``."""

    V: jax.Array  # (out, in)
    bias: jax.Array  # (out,)
    log_scale: jax.Array | None  # (out,) or None

    def __init__(self, in_size, out_size, *, key, factorization=None, dtype=None, zero=False):
        wkey, skey = jax.random.split(key)
        dtype = dtype or jnp.zeros(()).dtype
        # Glorot normal: the usual PINN initialisation for tanh networks
        std = (2.0 / (in_size + out_size)) ** 0.5
        W = std * jax.random.normal(wkey, (out_size, in_size), dtype)
        if zero:
            W = jnp.zeros_like(W)
        self.bias = jnp.zeros((out_size,), dtype)
        if factorization:
            mean = float(factorization.get("mean", 1.0))
            sd = float(factorization.get("std", 0.1))
            s = mean + sd * jax.random.normal(skey, (out_size,), dtype)
            self.log_scale = s
            self.V = W / jnp.exp(s)[:, None]
        else:
            self.log_scale = None
            self.V = W

    @property
    def weight(self):
        if self.log_scale is None:
            return self.V
        return jnp.exp(self.log_scale)[:, None] * self.V


def dense_layers(sizes, *, key, factorization=None, dtype=None) -> tuple[Linear, ...]:
    """``Linear(sizes[i], sizes[i + 1])`` for each consecutive pair."""
    keys = jax.random.split(key, len(sizes) - 1)
    return tuple(
        Linear(a, b, key=k, factorization=factorization, dtype=dtype) for a, b, k in zip(sizes[:-1], sizes[1:], keys)
    )


def check_sizes(name, **sizes) -> None:
    bad = {k: v for k, v in sizes.items() if not (isinstance(v, int) and v >= 1)}
    if bad:
        raise ValueError(f"{name} sizes must be positive: " + ", ".join(f"{k}={v}" for k, v in sizes.items()))


def check_embedding(embedding, in_size) -> int:
    """The width the embedding hands on (``in_size`` without one)."""
    if embedding is None:
        return in_size
    if embedding.in_size != in_size:
        raise ValueError(f"embedding takes {embedding.in_size} inputs, the network {in_size}")
    return embedding.out_size


def input_box(in_size, input_lower, input_upper):
    """Validated ``(lower, upper)`` tuples of the input box, or ``(None, None)``."""
    if (input_lower is None) != (input_upper is None):
        raise ValueError("give both input_lower and input_upper, or neither")
    if input_lower is None:
        return None, None
    lower = tuple(float(v) for v in input_lower)
    upper = tuple(float(v) for v in input_upper)
    if len(lower) != in_size or len(upper) != in_size:
        raise ValueError(f"input_lower/input_upper need {in_size} entries")
    if any(u <= l for l, u in zip(lower, upper)):
        raise ValueError(f"input_upper must exceed input_lower on every axis: {lower} {upper}")
    return lower, upper


def encode(x, embedding, lower, upper):
    """The input as the first layer sees it: mapped from the box ``[lower, upper]`` onto
    ``[-1, 1]^d`` (the engine folds this into the first dense layer, so it costs nothing),
    then embedded."""
    if lower is not None:
        lo, hi = jnp.asarray(lower), jnp.asarray(upper)
        s = 2.0 / (hi - lo)
        x = add(scale(x, s), -1.0 - s * lo)
    if embedding is not None:
        x = embedding.forward(x)
    return x
