"""The PINN network: an MLP from one point to its outputs, with optional input embedding,
input normalisation and random weight factorisation, that the derivative engine reads as a
list of stages."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ..derivatives._activations import AbstractActivation, Identity, get_activation
from ..derivatives._engine import Stage
from ._embeddings import AbstractEmbedding


class Linear(eqx.Module):
    """Dense layer ``W x + b``; with ``factorized`` the weight is ``exp(s) * V`` row-wise
    (random weight factorisation, Wang et al. 2023), which the engine sees as a plain ``W``."""

    V: jax.Array  # (out, in)
    bias: jax.Array  # (out,)
    log_scale: jax.Array | None  # (out,) or None

    def __init__(self, in_size, out_size, *, key, factorization=None, dtype=None):
        wkey, skey = jax.random.split(key)
        dtype = dtype or jnp.zeros(()).dtype
        # Glorot normal: the usual PINN initialisation for tanh networks
        std = (2.0 / (in_size + out_size)) ** 0.5
        W = std * jax.random.normal(wkey, (out_size, in_size), dtype)
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


class MLP(eqx.Module):
    """``in_size -> [width] * depth -> out_size`` with one activation on every hidden layer.

    Called on ONE point of shape ``(in_size,)``; returns ``(out_size,)``. Batch with ``jax.vmap``.
    ``input_lower``/``input_upper`` map the input box affinely onto ``[-1, 1]^d`` before the
    first layer (folded into the first stage, so it costs nothing).
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
        if in_size < 1 or out_size < 1 or width < 1 or depth < 1:
            raise ValueError(
                f"MLP sizes must be positive: in_size={in_size}, out_size={out_size}, width={width}, depth={depth}"
            )
        if embedding is not None and embedding.in_size != in_size:
            raise ValueError(f"embedding takes {embedding.in_size} inputs, the MLP {in_size}")
        sizes = [embedding.out_size if embedding else in_size] + [width] * depth + [out_size]
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = tuple(
            Linear(a, b, key=k, factorization=factorization, dtype=dtype)
            for a, b, k in zip(sizes[:-1], sizes[1:], keys)
        )
        self.embedding = embedding
        self.activation = get_activation(activation)
        self.in_size = in_size
        self.out_size = out_size
        if (input_lower is None) != (input_upper is None):
            raise ValueError("give both input_lower and input_upper, or neither")
        if input_lower is not None:
            input_lower = tuple(float(v) for v in input_lower)
            input_upper = tuple(float(v) for v in input_upper)
            if len(input_lower) != in_size or len(input_upper) != in_size:
                raise ValueError(f"input_lower/input_upper need {in_size} entries")
            if any(u <= l for l, u in zip(input_lower, input_upper)):
                raise ValueError(f"input_upper must exceed input_lower on every axis: {input_lower} {input_upper}")
        self.input_lower = input_lower
        self.input_upper = input_upper

    def _input_map(self):
        """``x -> s * x + t`` mapping the input box onto [-1, 1]^d, or None."""
        if self.input_lower is None:
            return None
        lo = jnp.asarray(self.input_lower)
        hi = jnp.asarray(self.input_upper)
        s = 2.0 / (hi - lo)
        return s, -1.0 - s * lo

    def stages(self) -> list[Stage]:
        stages = []
        if self.embedding is not None:
            stages.append(self.embedding.stage())
        for layer in self.layers[:-1]:
            stages.append(Stage(layer.weight, layer.bias, self.activation))
        last = self.layers[-1]
        stages.append(Stage(last.weight, last.bias, Identity()))
        scale = self._input_map()
        if scale is not None:
            # fold the affine input map into the first stage: W (s x + t) + b
            s, t = scale
            first = stages[0]
            W = first.weight * s.astype(first.weight.dtype)[None, :]
            b = first.weight @ t.astype(first.weight.dtype)
            if first.bias is not None:
                b = b + first.bias
            stages[0] = Stage(W, b, first.activation)
        return stages

    def __call__(self, x):
        for st in self.stages():
            z = st.weight @ x
            if st.bias is not None:
                z = z + st.bias
            x = st.activation(z)
        return x
