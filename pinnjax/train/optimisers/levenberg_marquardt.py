"""Levenberg-Marquardt on the vector of weighted residuals ``r`` (``loss = sum r^2``): the
damped Gauss-Newton step ``-(J^T J + lambda I)^{-1} J^T r``, tried once per step; accepted
when it lowers the loss (then ``lambda *= decrease``), rejected otherwise (parameters kept,
``lambda *= increase``). Dense, Woodbury or matrix-free conjugate-gradient solve
(``_gauss_newton.py``)."""

from __future__ import annotations

import dataclasses
import jax.numpy as jnp

from ._base import Objective, StepOut, nan_losses
from ._gauss_newton import AbstractGaussNewton, next_damping


@dataclasses.dataclass(frozen=True)
class LevenbergMarquardt(AbstractGaussNewton):
    name = "lm"

    damping: float = 1e-3
    increase: float = 3.0
    decrease: float = 0.3
    min_damping: float = 1e-12
    max_damping: float = 1e10
    def step(self, objective: Objective, params, opt_state, step_in_phase) -> StepOut:
        del step_in_phase
        value, delta, flat, unravel = self.direction(objective, params, opt_state.damping)
        trial = flat + delta
        trial_value = objective.loss(unravel(trial))
        accept = (trial_value < value) & jnp.all(jnp.isfinite(trial))
        lam = opt_state.damping
        state = next_damping(opt_state, accept, lam * self.decrease, lam * self.increase, self.min_damping, self.max_damping)
        new = unravel(jnp.where(accept, trial, flat))
        return StepOut(new, state, value, nan_losses(objective, params, value), objective.weights)
