"""Unknowns of an inverse problem: fields marked with ``unknown(...)`` are trained beside the
solution network; every other array of a problem is fixed data (passed to the compiled step
as an argument, never trained)."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import numpy as np

from ._conditions import AbstractCondition

_MARK = "pinnjax_unknown"


def _as_array(value):
    """Numbers become float64 numpy arrays (no JAX backend needed to define a problem); the
    trainer casts them to the run's dtype. Arrays and modules (a field network) pass as given."""
    if isinstance(value, (int, float, list, tuple)) or (isinstance(value, np.ndarray) and value.dtype.kind in "iu"):
        return np.asarray(value, np.float64)
    return value


def unknown(value=None, *, factory=None):
    """Mark a problem field as an unknown: ``kappa: jax.Array = pj.unknown(0.5)`` (its initial
    value), or a field network ``coef: pj.MLP = pj.unknown(factory=lambda: pj.MLP(...))``.
    Every inexact array inside the field is trained; `factory` builds the initial value when
    the problem is made (not at import)."""
    if (value is None) == (factory is None):
        raise TypeError("unknown() takes an initial value or factory=..., exactly one")
    make = factory if factory is not None else (lambda: value)
    return eqx.field(default_factory=make, converter=_as_array, metadata={_MARK: True})


def unknown_names(problem) -> tuple[str, ...]:
    """Names of the fields of `problem` marked with ``unknown``."""
    return tuple(f.name for f in dataclasses.fields(problem) if f.metadata.get(_MARK))


def unknowns_filter(problem):
    """Filter spec (a pytree of bools like `problem`): the inexact arrays inside unknown fields."""
    spec = jax.tree.map(lambda _: False, problem)
    for name in unknown_names(problem):
        marks = jax.tree.map(eqx.is_inexact_array, getattr(problem, name))
        spec = eqx.tree_at(lambda p, n=name: getattr(p, n), spec, marks, is_leaf=lambda x: x is None)
    return spec


# --- regularisation of the unknowns --------------------------------------------------------

REGULARIZATIONS = ("tikhonov", "smoothness", "tv")
_TV_EPS = 1e-8  # |g|_eps = sqrt(g^2 + eps^2): total variation with a gradient at g = 0


def _is_field_network(value) -> bool:
    return isinstance(value, eqx.Module) and callable(value)


class Regularization(AbstractCondition):
    """A loss term on the unknowns, added by ``loss.regularization``; its loss is the mean
    over entries of

    - ``tikhonov``: ``theta^2`` (L2), for every unknown;
    - ``smoothness``: squared first differences along every axis of an array unknown (a grid
      of values), or ``|grad a(x)|^2`` of a field network at interior points;
    - ``tv``: total variation, ``|first differences|`` (or ``|grad a(x)|``), smoothed by
      ``eps = 1e-8`` so that it has a gradient at 0.

    It is written as a condition (kind ``"data"``, its own points) so that the trainer
    treats it like any other term: weights, gradient balancing, history."""

    method: str = eqx.field(static=True)
    weight: float = eqx.field(default=1.0, static=True)
    batch: int = eqx.field(default=1, static=True)
    output: str = eqx.field(default="u", static=True)
    name: str = eqx.field(default="regularization", static=True)

    kind = "data"
    part = None

    def needs(self, output, coords):
        return ()

    def check(self, problem):
        names = unknown_names(problem)
        if not names:
            raise ValueError(f"{type(problem).__name__} has no unknowns (fields marked pj.unknown) to regularise")
        if self.method != "tikhonov" and not any(
            _is_field_network(getattr(problem, n)) or np.ndim(getattr(problem, n)) > 0 for n in names
        ):
            raise ValueError(
                f"{self.method} regularisation needs an unknown that varies in space (a grid of values or "
                f"a field network); {type(problem).__name__}'s unknowns {list(names)} are scalars"
            )

    def sample(self, domain, key, n, method):
        return domain.sample_interior(key, n, method=method)

    def points_of(self, sample):
        return sample

    def residual(self, problem, x, d):
        import jax.numpy as jnp

        comps = []
        for name in unknown_names(problem):
            value = getattr(problem, name)
            if _is_field_network(value):
                if self.method == "tikhonov":
                    g = jnp.atleast_1d(value(x))
                else:
                    g = jax.jacfwd(lambda p: jnp.atleast_1d(value(p)))(x)  # (outputs, dim)
                    if self.method == "tv":
                        g = jnp.sqrt(jnp.sqrt(jnp.sum(g**2, axis=-1) + _TV_EPS**2))  # r^2 = |grad a|
            else:
                value = jnp.asarray(value, x.dtype)
                if self.method == "tikhonov":
                    g = value
                else:
                    g = jnp.concatenate([jnp.diff(value, axis=k).ravel() for k in range(value.ndim)] or [jnp.zeros((0,), x.dtype)])
                    if self.method == "tv":
                        g = jnp.sqrt(jnp.sqrt(g**2 + _TV_EPS**2))  # r^2 = |difference|
            comps.append(jnp.ravel(g).astype(x.dtype))
        return jnp.concatenate(comps)
