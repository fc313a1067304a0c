"""A residual MLP: a dense input layer, then blocks ``h <- h + A(W_2 A(W_1 h + b_1) + b_2)``,
then a linear output layer."""

from __future__ import annotations

import equinox as eqx
import jax

from ..derivatives import AbstractNetwork, activate, add, linear
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


class ResNet(AbstractNetwork):
    """``in_size -> width``, ``blocks`` two-layer residual blocks of ``width``, ``-> out_size``."""

    lift: Linear
    blocks: tuple[tuple[Linear, Linear], ...]
    output: Linear
    embedding: AbstractEmbedding | None
    activation: AbstractActivation
    in_size: int = eqx.field(static=True)
    out_size: int = eqx.field(static=True)
    input_lower: tuple[float, ...] | None = eqx.field(static=True)
    input_upper: tuple[float, ...] | None = eqx.field(static=True)

    def __init__(
        self, in_size, out_size, width=64, blocks=2, activation="tanh", *, key, embedding=None,
        factorization=None, input_lower=None, input_upper=None, dtype=None,
    ):
        check_sizes("ResNet", in_size=in_size, out_size=out_size, width=width, blocks=blocks)
        n_in = check_embedding(embedding, in_size)
        kl, kb, ko = jax.random.split(key, 3)
        self.lift = Linear(n_in, width, key=kl, factorization=factorization, dtype=dtype)
        self.blocks = tuple(
            dense_layers([width] * 3, key=k, factorization=factorization, dtype=dtype) for k in jax.random.split(kb, blocks)
        )
        self.output = Linear(width, out_size, key=ko, factorization=factorization, dtype=dtype)
        self.embedding = embedding
        self.activation = get_activation(activation)
        self.in_size, self.out_size = in_size, out_size
        self.input_lower, self.input_upper = input_box(in_size, input_lower, input_upper)

    def forward(self, x):
        act = self.activation
        h = activate(linear(encode(x, self.embedding, self.input_lower, self.input_upper), self.lift), act)
        for l1, l2 in self.blocks:
            h = add(h, activate(linear(activate(linear(h, l1), act), l2), act))
        return linear(h, self.output)
