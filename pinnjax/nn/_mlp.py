"""The PINN network: an MLP from one point to its outputs, with optional input embedding,
input normalisation and random weight factorisation."""

from __future__ import annotations

import equinox as eqx

from ..derivatives import AbstractNetwork, activate, linear
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


class MLP(AbstractNetwork):
    """``in_size -> [width] * depth -> out_size`` with one activation on every hidden layer.

    Called on ONE point of shape ``(in_size,)``; returns ``(out_size,)``. Batch with ``jax.vmap``.
    ``input_lower``/``input_upper`` map the input box affinely onto ``[-1, 1]^d`` before the
    first layer (folded into the first layer by the engine, so it costs nothing).
    """

    layers: tuple[Linear, ...]
    embedding: AbstractEmbedding | None
    activation: AbstractActivation
    in_size: int = eqx.field(static=True)
    out_size: int = eqx.field(static=True)
    input_lower: tuple[float, ...] | None = eqx.field(static=True)
    input_upper: tuple[float, ...] | None = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        out_size: int,
        width: int = 64,
        depth: int = 4,
        activation="tanh",
        *,
        key,
        embedding: AbstractEmbedding | None = None,
        factorization: dict | None = None,
        input_lower=None,
        input_upper=None,
        dtype=None,
    ):
        check_sizes("MLP", in_size=in_size, out_size=out_size, width=width, depth=depth)
        sizes = [check_embedding(embedding, in_size)] + [width] * depth + [out_size]
        self.layers = dense_layers(sizes, key=key, factorization=factorization, dtype=dtype)
        self.embedding = embedding
        self.activation = get_activation(activation)
        self.in_size = in_size
        self.out_size = out_size
        self.input_lower, self.input_upper = input_box(in_size, input_lower, input_upper)

    def forward(self, x):
        h = encode(x, self.embedding, self.input_lower, self.input_upper)
        for layer in self.layers[:-1]:
            h = activate(linear(h, layer), self.activation)
        return linear(h, self.layers[-1])
