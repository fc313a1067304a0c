"""L-BFGS (optax) with optax's zoom (strong Wolfe) line search. The batch is drawn when the
phase starts and, with ``resample_every: k``, again every k steps; ``memory: keep`` keeps
the curvature pairs across a redraw, ``restart`` starts them afresh."""

from __future__ import annotations

import dataclasses

import optax

from ._base import (
    AbstractOptimiser,
    Objective,
    StepOut,
    keep_if_not_finite,
    line_search_step,
    nan_losses,
    reset_line_search_value,
    zoom_search,
)


@dataclasses.dataclass(frozen=True)
class LBFGS(AbstractOptimiser):
    name = "lbfgs"

    memory_size: int = 50
    memory: str = "keep"  # on a redraw: keep | restart
    max_linesearch_steps: int = 25

    def __post_init__(self):
        if self.memory not in ("keep", "restart"):
            raise ValueError(f"memory: expected keep or restart, got {self.memory!r}")

    def transform(self):
        return optax.lbfgs(memory_size=self.memory_size, linesearch=zoom_search(self.max_linesearch_steps))

    def init(self, params):
        return self.transform().init(params)

    def step(self, objective: Objective, params, opt_state, step_in_phase) -> StepOut:
        del step_in_phase
        value, new, opt_state = line_search_step(self.transform(), objective, params, opt_state)
        # a finished search (zero step, or a non-finite trial) leaves the parameters as they were
        new = keep_if_not_finite(new, params)
        return StepOut(new, opt_state, value, nan_losses(objective, params, value), objective.weights)

    def redrawn(self, opt_state, params):
        if self.memory == "restart":
            return self.init(params)
        return reset_line_search_value(opt_state)
