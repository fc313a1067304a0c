"""PirateNet (Wang, Li, Chen & Perdikaris 2024): gated residual blocks with a trainable skip
weight ``alpha`` initialised at 0, so that at initialisation the network is a linear model of
its input embedding.

Each block, with encoders ``U = A(W_u e + b_u)``, ``V = A(W_v e + b_v)`` of the embedding ``e``::

    f = A(W_1 x + b_1);  z_1 = f U + (1 - f) V
    g = A(W_2 z_1 + b_2);  z_2 = g U + (1 - g) V
    h = A(W_3 z_2 + b_3);  x <- alpha h + (1 - alpha) x
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ..derivatives import (
    AbstractNetwork,
    activate,
    add,
    linear,
    multiply,
    scale,
    subtract,
)
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


class PirateNet(AbstractNetwork):
    """``blocks`` residual blocks of ``width`` channels and a linear output layer.

    The blocks' state starts as the embedding of the input when its width is ``width``
    (Fourier features with ``width / 2`` features); otherwise a dense layer ``A(W e + b)``
    lifts the (embedded) input to ``width`` channels first."""

    encoder_u: Linear
    encoder_v: Linear
    lift: Linear | None
    blocks: tuple[tuple[Linear, Linear, Linear], ...]
    alpha: jax.Array  # (blocks,), trained, 0 at initialisation
    output: Linear
    embedding: AbstractEmbedding | None
    activation: AbstractActivation
    in_size: int = eqx.field(static=True)
    out_size: int = eqx.field(static=True)
    input_lower: tuple[float, ...] | None = eqx.field(static=True)
    input_upper: tuple[float, ...] | None = eqx.field(static=True)

    def __init__(
        self, in_size, out_size, width=64, blocks=3, activation="tanh", *, key, embedding=None,
        factorization=None, input_lower=None, input_upper=None, dtype=None,
    ):
        check_sizes("PirateNet", in_size=in_size, out_size=out_size, width=width, blocks=blocks)
        n_in = check_embedding(embedding, in_size)
        ku, kv, kl, kb, ko = jax.random.split(key, 5)
        self.encoder_u = Linear(n_in, width, key=ku, factorization=factorization, dtype=dtype)
        self.encoder_v = Linear(n_in, width, key=kv, factorization=factorization, dtype=dtype)
        self.lift = None if n_in == width else Linear(n_in, width, key=kl, factorization=factorization, dtype=dtype)
        self.blocks = tuple(
            dense_layers([width] * 4, key=k, factorization=factorization, dtype=dtype)
            for k in jax.random.split(kb, blocks)
        )
        self.alpha = jnp.zeros((blocks,), dtype or jnp.zeros(()).dtype)
        self.output = Linear(width, out_size, key=ko, factorization=factorization, dtype=dtype)
        self.embedding = embedding
        self.activation = get_activation(activation)
        self.in_size, self.out_size = in_size, out_size
        self.input_lower, self.input_upper = input_box(in_size, input_lower, input_upper)

    def features(self, x):
        """The last hidden state (what the output layer reads), at one point or carried."""
        e = encode(x, self.embedding, self.input_lower, self.input_upper)
        act = self.activation
        U = activate(linear(e, self.encoder_u), act)
        V = activate(linear(e, self.encoder_v), act)
        V_minus_U = subtract(V, U)
        h = e if self.lift is None else activate(linear(e, self.lift), act)
        for (l1, l2, l3), alpha in zip(self.blocks, self.alpha):
            f = activate(linear(h, l1), act)
            z1 = subtract(V, multiply(f, V_minus_U))  # f U + (1 - f) V = V - f (V - U)
            g = activate(linear(z1, l2), act)
            z2 = subtract(V, multiply(g, V_minus_U))
            out = activate(linear(z2, l3), act)
            h = add(scale(out, alpha), scale(h, 1.0 - alpha))
        return h

    def forward(self, x):
        return linear(self.features(x), self.output)
