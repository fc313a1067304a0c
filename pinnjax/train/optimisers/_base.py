"""What every optimiser phase provides: its state, one step, and what it does when the batch
is redrawn. A new optimiser is one file in this folder that subclasses `AbstractOptimiser`
and is listed in ``__init__.py``."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Objective:
    """The training objective of one step, on the step's batch (built inside the trace).

    - ``term_losses(params, causal)``: mean squared residual of every term, (n_terms,)
    - ``weighted(weights, losses)``: the total ``sum_i fixed_i * weights_i * losses_i``
    - ``residual_jacobian(params, method)``: ``(r, J, flat, unravel)``, the flat vector ``r``
      of weighted residuals (``sum(r**2)`` is the total loss at the current weights, without
      causal weighting), its Jacobian (N, P) in the flat parameters, the flat parameters and
      the map back to the pytree: for the Gauss-Newton family
    - ``residuals(params)``: that vector ``r`` alone, for the matrix-free Gauss-Newton solve
      (``J v`` and ``J^T u`` by autodiff of it, ``form: cg``)
    - ``weights``: the current balancing multipliers; ``log``: whether this step is logged
      (phases that compute the term losses only when needed)
    - ``normal_equations(params, method)``: ``(r^T r, J^T J, J^T r, flat, unravel)`` without
      forming the whole ``J`` in one place (on a device mesh: summed from per-device blocks);
      None: from ``residual_jacobian``
    """

    term_losses: Callable[..., jax.Array]
    weighted: Callable[[jax.Array, jax.Array], jax.Array]
    residual_jacobian: Callable[..., tuple]
    weights: jax.Array
    log: jax.Array
    balance: Callable[[Any, jax.Array], jax.Array] | None = None
    residuals: Callable[[Any], jax.Array] | None = None
    normal_equations: Callable[..., tuple] | None = None

    def loss(self, params):
        """The total loss at the current weights, without causal weighting."""
        return self.weighted(self.weights, self.term_losses(params, False))

    def gauss_newton_system(self, params, method):
        """``(r^T r, J^T J, J^T r, flat, unravel)`` of the weighted residual vector."""
        if self.normal_equations is not None:
            return self.normal_equations(params, method)
        r, J, flat, unravel = self.residual_jacobian(params, method)
        return r @ r, J.T @ J, J.T @ r, flat, unravel


class StepOut(NamedTuple):
    params: Any
    opt_state: Any
    total: jax.Array  # the loss at the old parameters
    losses: jax.Array  # its terms (NaN where a phase did not compute them)
    weights: jax.Array


@dataclasses.dataclass(frozen=True)
class AbstractOptimiser(abc.ABC):
    """An optimiser's options are its (hashable) dataclass fields; the compiled step is
    specialised on them. ``name`` is the config name; ``redraw_default`` the default of the
    phase's ``resample_every`` (0: points drawn once, when the phase starts)."""

    name: ClassVar[str]
    redraw_default: ClassVar[int] = 0

    @abc.abstractmethod
    def init(self, params) -> Any:
        """The optimiser state at `params` (its shapes must not depend on their values)."""

    @abc.abstractmethod
    def step(self, objective: Objective, params, opt_state, step_in_phase) -> StepOut:
        """One step: new parameters and state, and the loss at the old parameters."""

    def redrawn(self, opt_state, params):
        """The state to continue with after the batch was redrawn (default: unchanged)."""
        del params
        return opt_state

    def learning_rate(self, step_in_phase: int) -> float:
        """The step size logged in history.csv (NaN: none)."""
        del step_in_phase
        return float("nan")

    @property
    def options(self) -> dict:
        return dataclasses.asdict(self)


def nan_losses(objective: Objective, params, total):
    """Term losses on log steps (and when the total is not finite), NaN otherwise."""
    n = objective.weights.shape[0]
    nan = jnp.full((n,), jnp.nan, total.dtype)
    want = objective.log | ~jnp.isfinite(total)
    return jax.lax.cond(want, lambda: objective.term_losses(params, False).astype(total.dtype), lambda: nan)


def keep_if_not_finite(new_params, params):
    """`new_params`, or `params` where any entry of the new ones is not finite."""
    ok = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(u)) for u in jax.tree.leaves(new_params)]))
    return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new_params, params)


def reset_line_search_value(opt_state):
    """Mark the value cached by optax's zoom line search stale (a new batch was drawn), so the
    next step recomputes value and gradient."""
    from optax._src.linesearch import ScaleByZoomLinesearchState

    def one(s):
        if isinstance(s, ScaleByZoomLinesearchState):
            return s._replace(value=jnp.full_like(s.value, jnp.inf))
        return s

    return jax.tree.map(one, opt_state, is_leaf=lambda s: isinstance(s, ScaleByZoomLinesearchState))


def zoom_search(max_steps: int):
    """optax's zoom line search (strong Wolfe conditions), each search from a unit step."""
    import optax

    return optax.scale_by_zoom_linesearch(max_steps, initial_guess_strategy="one")


def line_search_step(transform, objective: Objective, params, opt_state):
    """One step of an optax transform ending in a line search: ``(value at params, new
    params, new state)``. Value and gradient come from the search's state when it holds them
    (computed at the end of the previous search), else they are computed."""
    import optax

    value, grad = optax.value_and_grad_from_state(objective.loss)(params, state=opt_state)
    updates, opt_state = transform.update(grad, opt_state, params, value=value, grad=grad, value_fn=objective.loss)
    return value, optax.apply_updates(params, updates), opt_state
