"""Energy natural gradient (ENGD, Mueller & Zeinhofer 2023) for the least-squares PINN loss:
the Gramian is ``J^T J`` of the weighted residual vector, the direction
``d = -(J^T J + damping I)^{-1} J^T r`` (dense, or the Woodbury form that solves an N x N
system when N residuals < P parameters), and the step size the best of the grid
``eta = 2^0, 2^-1, ..., 2^-(grid-1)`` (their logarithmic line search). When no grid point
lowers the loss the search failed: the parameters are kept and the step counted."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from ._base import Objective, StepOut, nan_losses
from ._gauss_newton import AbstractGaussNewton, gauss_newton_step


@dataclasses.dataclass(frozen=True)
class ENGD(AbstractGaussNewton):
    name = "engd"

    damping: float = 1e-10
    grid: int = 20
    def init(self, params):
        del params
        return jnp.asarray(0, jnp.int32)  # failed line searches in this phase

    def step(self, objective: Objective, params, opt_state, step_in_phase) -> StepOut:
        del step_in_phase
        r, J, flat, unravel = objective.residual_jacobian(params, self.jacobian)
        value = r @ r
        d = gauss_newton_step(J, r, jnp.asarray(self.damping, r.dtype), self.form)
        etas = 0.5 ** jnp.arange(self.grid, dtype=r.dtype)
        trial_values = jax.lax.map(lambda eta: objective.loss(unravel(flat + eta * d)), etas)
        trial_values = jnp.where(jnp.isfinite(trial_values), trial_values, jnp.inf)
        best = jnp.argmin(trial_values)
        ok = trial_values[best] < value
        new = unravel(jnp.where(ok, flat + etas[best] * d, flat))
        failed = opt_state + jnp.where(ok, 0, 1).astype(jnp.int32)
        return StepOut(new, failed, value, nan_losses(objective, params, value), objective.weights)
