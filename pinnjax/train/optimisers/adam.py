"""Adam (optax) with linear warm-up and constant, exponential or cosine decay; gradient-norm
balancing and causal weighting apply in this phase."""

from __future__ import annotations

import dataclasses

import jax
import optax

from ._base import AbstractOptimiser, Objective, StepOut


def schedule(lr: float, warmup_steps: int, decay: str, decay_rate: float, decay_steps: int, steps: int):
    """Linear warm-up from 0 to `lr`, then constant, exponential (`decay_rate` per
    `decay_steps`) or cosine decay (to 0 over the phase's remaining steps)."""
    if decay == "exponential":
        after = optax.exponential_decay(lr, decay_steps, decay_rate)
    elif decay == "cosine":
        after = optax.cosine_decay_schedule(lr, max(steps - warmup_steps, 1))
    else:
        after = optax.constant_schedule(lr)
    if warmup_steps == 0:
        return after
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup_steps), after], [warmup_steps])


@dataclasses.dataclass(frozen=True)
class Adam(AbstractOptimiser):
    name = "adam"
    redraw_default = -1  # -1: sampling.resample_every

    lr: float = 1e-3
    warmup_steps: int = 0
    decay: str = "none"
    decay_rate: float = 0.9
    decay_steps: int = 1000
    steps: int = 1  # the phase length (cosine decay); set by the phase

    def schedule(self):
        return schedule(self.lr, self.warmup_steps, self.decay, self.decay_rate, self.decay_steps, self.steps)

    def transform(self) -> optax.GradientTransformation:
        return optax.adam(self.schedule())

    def init(self, params):
        return self.transform().init(params)

    def step(self, objective: Objective, params, opt_state, step_in_phase) -> StepOut:
        del step_in_phase
        weights = objective.weights
        if objective.balance is not None:
            weights = objective.balance(params, weights)

        def loss_fn(p):
            losses = objective.term_losses(p, None)
            return objective.weighted(weights, losses), losses

        (total, losses), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = self.transform().update(grads, opt_state, params)
        return StepOut(optax.apply_updates(params, updates), opt_state, total, losses, weights)

    def learning_rate(self, step_in_phase: int) -> float:
        return float(jax.device_get(self.schedule()(step_in_phase)))
