"""Energy natural gradient (ENGD, Mueller & Zeinhofer 2023) for the least-squares PINN loss:
the Gramian is ``J^T J`` of the weighted residual vector, the direction
``d = -(J^T J + damping I)^{-1} J^T r`` (dense, or the Woodbury form that solves an N x N
system when N residuals < P parameters, or matrix-free conjugate gradients), and the step
size the best of the grid ``eta = 2^0, 2^-1, ..., 2^-(grid-1)`` (their logarithmic line
search).

When no grid point lowers the loss the search failed: the parameters are kept, the failure
counted, and the damping multiplied by ``increase`` (the direction turns towards the
gradient); each success divides it by ``increase`` again, down to ``damping``. (With a fixed
tiny damping the search can fail on every step of a batch: the Gauss-Newton step of a badly
conditioned ``J^T J`` is huge and even ``2^-19`` of it overshoots.)"""

from __future__ import annotations

import dataclasses
import jax
import jax.numpy as jnp

from ._base import Objective, StepOut, nan_losses
from ._gauss_newton import AbstractGaussNewton, next_damping


@dataclasses.dataclass(frozen=True)
class ENGD(AbstractGaussNewton):
    name = "engd"

    damping: float = 1e-10
    increase: float = 10.0
    grid: int = 20

    def step(self, objective: Objective, params, opt_state, step_in_phase) -> StepOut:
        del step_in_phase
        value, d, flat, unravel = self.direction(objective, params, opt_state.damping)
        etas = 0.5 ** jnp.arange(self.grid, dtype=d.dtype)
        trial_values = jax.lax.map(lambda eta: objective.loss(unravel(flat + eta * d)), etas)
        trial_values = jnp.where(jnp.isfinite(trial_values), trial_values, jnp.inf)
        best = jnp.argmin(trial_values)
        ok = trial_values[best] < value
        new = unravel(jnp.where(ok, flat + etas[best] * d, flat))
        lam = opt_state.damping
        state = next_damping(opt_state, ok, lam / self.increase, lam * self.increase, self.damping, jnp.inf)
        return StepOut(new, state, value, nan_losses(objective, params, value), objective.weights)
