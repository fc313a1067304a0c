"""The modified MLP (Wang, Teng & Perdikaris 2021): two encoders ``U``, ``V`` of the input,
and every hidden layer gates between them, ``h <- (1 - Z) * U + Z * V`` with ``Z`` the layer's
activation."""

from __future__ import annotations

import equinox as eqx
import jax

from ..derivatives import AbstractNetwork, activate, add, linear, multiply, subtract
from ..derivatives._activations import AbstractActivation, get_activation
from ._embeddings import AbstractEmbedding
from ._layers import (
    Linear,
    check_embedding,
    check_sizes,
    dense_layers,
    encode,
    input_box,
)


class ModifiedMLP(AbstractNetwork):
    """``depth`` gated hidden layers of ``width`` between encoders ``U = A(W_u x + b_u)`` and
    ``V = A(W_v x + b_v)``; the output layer is linear. One point in, ``(out_size,)`` out."""

    encoder_u: Linear
    encoder_v: Linear
    layers: tuple[Linear, ...]
    embedding: AbstractEmbedding | None
    activation: AbstractActivation
    in_size: int = eqx.field(static=True)
    out_size: int = eqx.field(static=True)
    input_lower: tuple[float, ...] | None = eqx.field(static=True)
    input_upper: tuple[float, ...] | None = eqx.field(static=True)

    def __init__(
        self, in_size, out_size, width=64, depth=4, activation="tanh", *, key, embedding=None,
        factorization=None, input_lower=None, input_upper=None, dtype=None,
    ):
        check_sizes("ModifiedMLP", in_size=in_size, out_size=out_size, width=width, depth=depth)
        n_in = check_embedding(embedding, in_size)
        ku, kv, kl = jax.random.split(key, 3)
        self.encoder_u = Linear(n_in, width, key=ku, factorization=factorization, dtype=dtype)
        self.encoder_v = Linear(n_in, width, key=kv, factorization=factorization, dtype=dtype)
        sizes = [n_in] + [width] * depth + [out_size]
        self.layers = dense_layers(sizes, key=kl, factorization=factorization, dtype=dtype)
        self.embedding = embedding
        self.activation = get_activation(activation)
        self.in_size, self.out_size = in_size, out_size
        self.input_lower, self.input_upper = input_box(in_size, input_lower, input_upper)

    def forward(self, x):
        x = encode(x, self.embedding, self.input_lower, self.input_upper)
        U = activate(linear(x, self.encoder_u), self.activation)
        V = activate(linear(x, self.encoder_v), self.activation)
        V_minus_U = subtract(V, U)
        h = x
        for layer in self.layers[:-1]:
            Z = activate(linear(h, layer), self.activation)
            h = add(U, multiply(Z, V_minus_U))  # (1 - Z) U + Z V
        return linear(h, self.layers[-1])
