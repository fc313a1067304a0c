"""The training loss of a run as functions of one flat parameter vector: what every curvature
tool here differentiates.

At a TrainState the loss is the trainer's (``train/_loss.py``): ``L(theta) = sum(r**2)`` with
``r`` the weighted residual vector of every term on the state's current batch, at the current
balancing weights, without causal weighting (what the Gauss-Newton phases and the line
searches use). One term alone is ``L_i = sum(r_i**2)``, its block of ``r``."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import equinox as eqx
import jax
from jax.flatten_util import ravel_pytree

from ..train._loss import weighted_residual_jacobian, weighted_residuals
from ..train._spec import TrainSpec, active_terms
from ..train._state import TrainState, split_params


@dataclasses.dataclass(frozen=True)
class FlatLoss:
    """``residuals(flat)`` (the weighted residual vector, or one term's block of it with
    ``term=i``), ``loss(flat) = sum(residuals(flat)**2)``, the flat parameters ``flat`` and
    ``unravel`` back to the trainable pytree; ``jacobian()`` the dense residual Jacobian at
    ``flat`` from the trainer's own ``weighted_residual_jacobian``."""

    spec: TrainSpec
    state: TrainState
    flat: jax.Array
    unravel: Callable
    sizes: tuple[int, ...]  # residual components per term, in spec order

    def residuals(self, flat, term: int | None = None) -> jax.Array:
        params, rest = self._params_rest(flat)
        model, problem = eqx.combine(params, rest)
        r = weighted_residuals(self.spec, problem, model, self.state.points, self.state.weights)
        if term is None:
            return r
        start = sum(self.sizes[:term])
        return r[start : start + self.sizes[term]]

    def loss(self, flat, term: int | None = None) -> jax.Array:
        r = self.residuals(flat, term)
        return r @ r

    def jacobian(self, method: str = "jacrev") -> jax.Array:
        """``J = d r / d theta`` (N, P) by the trainer's residual Jacobian (jacrev per point or
        the Kronecker form, ``derivatives/_param_jacobian.py``)."""
        params, rest = split_params(self.state)
        return _dense_jacobian(self.spec, params, rest, self.state.points, self.state.weights, method)

    def problem(self, flat):
        """The problem with its unknowns taken from `flat`."""
        return eqx.combine(*self._params_rest(flat))[1]

    def _params_rest(self, flat):
        _, rest = split_params(self.state)
        return self.unravel(flat), rest

    @property
    def term_names(self) -> tuple[str, ...]:
        return self.spec.term_names


def flat_loss(spec: TrainSpec, state: TrainState) -> FlatLoss:
    """The loss of `state` (its batch ``state.points``, its weights) as a `FlatLoss`."""
    params, rest = split_params(state)
    flat, unravel = ravel_pytree(params)
    model, problem = eqx.combine(params, rest)
    sizes = tuple(
        math.prod(jax.eval_shape(lambda t=term, x=pts: t.residuals(problem, model, x)).shape)
        for term, pts in zip(active_terms(problem, spec), state.points)
    )
    return FlatLoss(spec, state, flat, unravel, sizes)


@eqx.filter_jit  # one compiled program per run structure: op by op, the per-point jacrev took seconds
def _dense_jacobian(spec: TrainSpec, params, rest, points, weights, method: str) -> jax.Array:
    return weighted_residual_jacobian(spec, params, rest, points, weights, method)[1]


@eqx.filter_jit
def compiled_residuals(spec: TrainSpec, state: TrainState, flat) -> jax.Array:
    """`FlatLoss.residuals` of ``flat_loss(spec, state)`` as one compiled program, reused by
    every state of the same structure."""
    return flat_loss(spec, state).residuals(flat)
