"""Elementwise activations with their derivative tables.

The engine needs, at a pre-activation ``z``, the value ``A(z)`` and the derivatives
``A'(z) ... A''''(z)`` up to the order a request asks for. Each table below is written in
terms of the value where that is cheaper (tanh: ``A' = 1 - t^2``). Any other scalar function
gets the same table by nested autodiff (:class:`AutodiffActivation`), which is exact but slower.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import erf

Array = jax.Array


class AbstractActivation(eqx.Module):
    """An elementwise activation that returns ``[A, A', ..., A^(order)]`` at ``z``."""

    @abc.abstractmethod
    def table(self, z: Array, order: int) -> list[Array]:
        """Value and the first ``order`` derivatives, each with the shape of ``z``."""

    @property
    def is_linear(self) -> bool:
        """True when ``A'' = 0`` everywhere, so second-order terms can be skipped."""
        return False

    def __call__(self, z: Array) -> Array:
        return self.table(z, 0)[0]


class Tanh(AbstractActivation):
    """tanh; also the seed's "tansig", ``2 / (1 + exp(-2x)) - 1``, which equals tanh."""

    def table(self, z, order):
        t = jnp.tanh(z)
        out = [t]
        if order >= 1:
            d1 = 1 - t * t
            out.append(d1)
        if order >= 2:
            out.append(-2 * t * d1)
        if order >= 3:
            out.append(d1 * (6 * t * t - 2))
        if order >= 4:
            out.append(8 * t * d1 * (2 - 3 * t * t))
        return out


class Sin(AbstractActivation):
    def table(self, z, order):
        s, c = jnp.sin(z), jnp.cos(z)
        return [s, c, -s, -c, s][: order + 1]


class Cos(AbstractActivation):
    def table(self, z, order):
        s, c = jnp.sin(z), jnp.cos(z)
        return [c, -s, -c, s, c][: order + 1]


def _sigmoid_table(s: Array, order: int) -> list[Array]:
    """Sigmoid derivatives written in its value ``s``."""
    out = [s]
    if order >= 1:
        d1 = s * (1 - s)
        out.append(d1)
    if order >= 2:
        out.append(d1 * (1 - 2 * s))
    if order >= 3:
        out.append(d1 * (1 - 6 * s + 6 * s * s))
    if order >= 4:
        out.append(d1 * (1 - 2 * s) * (1 - 12 * s + 12 * s * s))
    return out


class Sigmoid(AbstractActivation):
    def table(self, z, order):
        return _sigmoid_table(jax.nn.sigmoid(z), order)


class Softplus(AbstractActivation):
    """``log(1 + e^z)``: its derivatives are the sigmoid's, shifted by one order."""

    def table(self, z, order):
        return [jax.nn.softplus(z)] + (_sigmoid_table(jax.nn.sigmoid(z), order - 1) if order else [])


class SiLU(AbstractActivation):
    """``z * sigmoid(z)`` (swish): ``f^(n) = n s^(n-1) + z s^(n)`` by Leibniz."""

    def table(self, z, order):
        s = _sigmoid_table(jax.nn.sigmoid(z), order)
        return [z * s[0]] + [n * s[n - 1] + z * s[n] for n in range(1, order + 1)]


class GELU(AbstractActivation):
    """Exact GELU ``z Phi(z)``; with ``phi`` the normal density,
    ``f' = Phi + z phi``, ``f'' = phi (2 - z^2)``, ``f''' = phi (z^3 - 4z)``,
    ``f'''' = phi (-z^4 + 7 z^2 - 4)``."""

    def table(self, z, order):
        cdf = 0.5 * (1 + erf(z / math.sqrt(2.0)))
        out = [z * cdf]
        if order >= 1:
            pdf = jnp.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
            out.append(cdf + z * pdf)
        z2 = z * z
        if order >= 2:
            out.append(pdf * (2 - z2))
        if order >= 3:
            out.append(pdf * z * (z2 - 4))
        if order >= 4:
            out.append(pdf * (-z2 * z2 + 7 * z2 - 4))
        return out


class Identity(AbstractActivation):
    def table(self, z, order):
        zero = jnp.zeros_like(z)
        return [z, jnp.ones_like(z)][: order + 1] + [zero] * max(order - 1, 0)

    @property
    def is_linear(self):
        return True


class AutodiffActivation(AbstractActivation):
    """Any scalar function ``R -> R``: its derivative table by nested ``jax.grad``."""

    fn: Callable = eqx.field(static=True)

    def table(self, z, order):
        fns = [self.fn]
        for _ in range(order):
            fns.append(jax.grad(fns[-1]))
        flat = z.reshape(-1)
        return [jax.vmap(f)(flat).reshape(z.shape) for f in fns]


class Grouped(AbstractActivation):
    """Different activations on consecutive groups of channels (an embedding layer:
    ``[sin | cos | identity]``). ``sizes`` are the group widths along the last axis."""

    parts: tuple[AbstractActivation, ...]
    sizes: tuple[int, ...] = eqx.field(static=True)

    def table(self, z, order):
        bounds = [0]
        for n in self.sizes:
            bounds.append(bounds[-1] + n)
        pieces = [act.table(z[..., lo:hi], order) for act, lo, hi in zip(self.parts, bounds[:-1], bounds[1:])]
        return [jnp.concatenate([p[k] for p in pieces], axis=-1) for k in range(order + 1)]

    @property
    def is_linear(self):
        return all(p.is_linear for p in self.parts)


_BY_NAME: dict[str, Callable[[], AbstractActivation]] = {
    "tanh": Tanh,
    "tansig": Tanh,
    "sin": Sin,
    "cos": Cos,
    "sigmoid": Sigmoid,
    "softplus": Softplus,
    "silu": SiLU,
    "swish": SiLU,
    "gelu": GELU,
    "identity": Identity,
    "linear": Identity,
}

ACTIVATION_NAMES = tuple(sorted(_BY_NAME))


def _is_identity_fn(fn) -> bool:
    # equinox's default final activation is a module-level lambda, `equinox.nn._mlp._identity`
    if fn is getattr(getattr(eqx.nn, "_mlp", None), "_identity", None):
        return True
    return getattr(fn, "__name__", "") in ("_identity", "identity") and fn.__module__.startswith("equinox")


# Callables people pass to eqx.nn.MLP, mapped to analytic tables. Anything else that is a
# scalar function gets the autodiff table.
_BY_FUNCTION = {
    jnp.tanh: Tanh,
    jax.nn.tanh: Tanh,
    jnp.sin: Sin,
    jnp.cos: Cos,
    jax.nn.sigmoid: Sigmoid,
    jax.nn.softplus: Softplus,
    jax.nn.silu: SiLU,
    jax.nn.swish: SiLU,
}


def get_activation(spec) -> AbstractActivation:
    """An activation from a name (``"tanh"``), an activation module, or a scalar callable."""
    if isinstance(spec, AbstractActivation):
        return spec
    if isinstance(spec, str):
        try:
            return _BY_NAME[spec.lower()]()
        except KeyError:
            raise ValueError(
                f"unknown activation {spec!r}; known: {', '.join(ACTIVATION_NAMES)}"
            ) from None
    if callable(spec):
        try:
            known = _BY_FUNCTION.get(spec)
        except TypeError:  # unhashable callable
            known = None
        if known is not None:
            return known()
        if _is_identity_fn(spec):
            return Identity()
        return AutodiffActivation(spec)
    raise TypeError(f"activation must be a name, an AbstractActivation or a callable, got {spec!r}")
