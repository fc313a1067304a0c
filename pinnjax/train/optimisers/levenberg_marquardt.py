"""Levenberg-Marquardt on the vector of weighted residuals ``r`` (``loss = sum r^2``): the
damped Gauss-Newton step ``-(J^T J + lambda I)^{-1} J^T r``, tried once per step; accepted
when it lowers the loss (then ``lambda *= decrease``), rejected otherwise (parameters kept,
``lambda *= increase``). Dense or Woodbury solve (``_gauss_newton.py``)."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ._base import Objective, StepOut, nan_losses
from ._gauss_newton import AbstractGaussNewton, gauss_newton_step


class LMState(NamedTuple):
    damping: jax.Array
    rejected: jax.Array  # steps rejected in this phase (int32)


@dataclasses.dataclass(frozen=True)
class LevenbergMarquardt(AbstractGaussNewton):
    name = "lm"

    damping: float = 1e-3
    increase: float = 3.0
    decrease: float = 0.3
    min_damping: float = 1e-12
    max_damping: float = 1e10
    def init(self, params):
        dtype = jax.tree.leaves(params)[0].dtype
        return LMState(jnp.asarray(self.damping, dtype), jnp.asarray(0, jnp.int32))

    def step(self, objective: Objective, params, opt_state, step_in_phase) -> StepOut:
        del step_in_phase
        r, J, flat, unravel = objective.residual_jacobian(params, self.jacobian)
        value = r @ r
        delta = gauss_newton_step(J, r, opt_state.damping, self.form)
        trial = flat + delta
        trial_value = objective.loss(unravel(trial))
        accept = (trial_value < value) & jnp.all(jnp.isfinite(trial))
        lam = jnp.where(accept, opt_state.damping * self.decrease, opt_state.damping * self.increase)
        lam = jnp.clip(lam, self.min_damping, self.max_damping).astype(opt_state.damping.dtype)
        new = unravel(jnp.where(accept, trial, flat))
        state = LMState(lam, opt_state.rejected + jnp.where(accept, 0, 1).astype(jnp.int32))
        return StepOut(new, state, value, nan_losses(objective, params, value), objective.weights)
