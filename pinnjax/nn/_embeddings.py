"""Input embeddings that the derivative engine propagates like any other layer: each is a
fixed linear map of the input followed by per-channel elementwise functions. Their matrices
are not trained: each class names them in ``fixed_fields`` (read by ``trainable_filter``)."""

from __future__ import annotations

import abc
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ..derivatives import AbstractNetwork, activate, linear
from ..derivatives._activations import AbstractActivation, Cos, Grouped, Identity, Sin


class AbstractEmbedding(AbstractNetwork):
    in_size: eqx.AbstractVar[int]
    out_size: eqx.AbstractVar[int]

    @abc.abstractmethod
    def parts(self) -> tuple[jax.Array, AbstractActivation]:
        """This embedding as ``A(W x)`` with a grouped activation: ``(W, A)``."""

    def forward(self, x):
        W, act = self.parts()
        return activate(linear(x, jax.lax.stop_gradient(W)), act)


class FourierFeatures(AbstractEmbedding):
    """Random Fourier features ``[sin(B x), cos(B x)]`` with ``B ~ N(0, scale^2)``, not trained
    (Tancik et al. 2020; Wang et al. 2021 for PINNs)."""

    B: jax.Array  # (features, in_size)
    fixed_fields: ClassVar[tuple[str, ...]] = ("B",)
    in_size: int = eqx.field(static=True)
    out_size: int = eqx.field(static=True)

    def __init__(self, in_size: int, features: int, scale: float = 1.0, *, key):
        if features < 1:
            raise ValueError(f"FourierFeatures needs at least one feature, got {features}")
        self.B = scale * jax.random.normal(key, (features, in_size))
        self.in_size = in_size
        self.out_size = 2 * features

    def parts(self):
        m = self.B.shape[0]
        return jnp.concatenate([self.B, self.B]), Grouped((Sin(), Cos()), (m, m))


class PeriodicEmbedding(AbstractEmbedding):
    """Exact periodicity along chosen axes: each periodic axis ``x_k`` with period ``P`` becomes
    ``cos(2 pi j x_k / P), sin(2 pi j x_k / P)`` for ``j = 1..harmonics``; other axes pass through."""

    W: jax.Array  # (rows, in_size) fixed selection/scaling matrix
    fixed_fields: ClassVar[tuple[str, ...]] = ("W",)
    in_size: int = eqx.field(static=True)
    out_size: int = eqx.field(static=True)
    n_pass: int = eqx.field(static=True)
    n_periodic: int = eqx.field(static=True)

    def __init__(self, in_size: int, axes, periods, harmonics: int = 1):
        axes = tuple(int(a) for a in axes)
        periods = tuple(float(p) for p in periods)
        if len(axes) != len(periods):
            raise ValueError(f"PeriodicEmbedding: {len(axes)} axes but {len(periods)} periods")
        for a in axes:
            if not 0 <= a < in_size:
                raise ValueError(f"PeriodicEmbedding: axis {a} out of range for {in_size} inputs")
        if any(p <= 0 for p in periods) or harmonics < 1:
            raise ValueError("PeriodicEmbedding: periods must be positive and harmonics >= 1")
        passthrough = [k for k in range(in_size) if k not in axes]
        eye = jnp.eye(in_size)
        rows = [eye[k] for k in passthrough]
        freq = [2 * math.pi * j / p * eye[a] for a, p in zip(axes, periods) for j in range(1, harmonics + 1)]
        self.W = jnp.stack(rows + freq + freq)
        self.in_size = in_size
        self.n_pass = len(passthrough)
        self.n_periodic = len(freq)
        self.out_size = self.n_pass + 2 * self.n_periodic

    def parts(self):
        return self.W, Grouped((Identity(), Cos(), Sin()), (self.n_pass, self.n_periodic, self.n_periodic))
