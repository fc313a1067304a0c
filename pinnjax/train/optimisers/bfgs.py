"""Dense quasi-Newton in the Broyden family: BFGS, self-scaled BFGS (SSBFGS) and self-scaled
Broyden (SSBroyden), with optax's zoom line search (strong Wolfe conditions).

The inverse-Hessian approximation ``H`` (P x P, the run's dtype; meant for float64 and small
networks) is updated after every accepted step, with ``s = x_{k+1} - x_k``,
``y = g_{k+1} - g_k`` (Al-Baali 1998; Urban, Stefanou & Pons 2025, their Broyden-family
update; Kiyani et al. 2025)::

    H+ = (H - H y y^T H / (y^T H y) + phi v v^T) / tau + s s^T / (y^T s)
    v  = sqrt(y^T H y) (s / (y^T s) - H y / (y^T H y))

``tau = phi = 1`` is BFGS. With ``b = s^T B s / y^T s`` (``B s = -alpha g_k``, so
``s^T B s = -alpha s^T g_k``), ``h = y^T H y / y^T s`` and ``a = b h - 1``:

- SSBFGS: ``phi = 1``, ``tau = min(1, 1/b)``;
- SSBroyden: ``c = sqrt(a / (1 + a))``, ``rho- = min(1, h (1 - c))``,
  ``theta- = (rho- - 1) / a``, ``theta+ = 1 / rho-``,
  ``theta = max(theta-, min(theta+, (1 - b) / b))``, ``sigma = 1 + a theta``,
  ``phi = (1 - theta) / sigma``, and ``tau = min(rho+ sigma^(1/(1-n)), sigma)`` for
  ``theta > 0`` (``rho+ = min(1, 1/b)``), ``tau = rho- sigma^(1/(1-n))`` otherwise.

Safeguards: no update when ``y^T s <= 0`` or on the first step after a redraw (``s`` and
``y`` would mix two batches; ``H`` itself is kept); ``H`` restarts from the scaled identity
``(y^T s / y^T y) I`` when ``-H g`` is not a descent direction or not finite (it stopped being
positive definite). A failed line search (no decrease) keeps the parameters and restarts
``H``."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from ._base import (
    AbstractOptimiser,
    Objective,
    StepOut,
    line_search_step,
    nan_losses,
    reset_line_search_value,
    zoom_search,
)


class QuasiNewtonState(NamedTuple):
    inverse_hessian: jax.Array  # (P, P)
    prev_params: jax.Array  # flat parameters, gradient and direction of the previous step
    prev_grad: jax.Array
    direction: jax.Array
    skip: jax.Array  # bool: make no update on the next step
    scale: jax.Array  # the last y^T s / y^T y: the identity's scale on a restart


def broyden_family(H, s, y, tau, phi):
    """The self-scaled Broyden-family inverse update (module docstring)."""
    Hy = H @ y
    yHy = y @ Hy
    ys = y @ s
    v = jnp.sqrt(yHy) * (s / ys - Hy / yHy)
    return (H - jnp.outer(Hy, Hy) / yHy + phi * jnp.outer(v, v)) / tau + jnp.outer(s, s) / ys


@dataclasses.dataclass(frozen=True)
class _DenseQuasiNewton(AbstractOptimiser):
    max_linesearch_steps: int = 25

    def scaling(self, H, s, y, g_old, alpha):
        """``(tau, phi)`` of the update."""
        raise NotImplementedError

    def _direction(self):
        def init(params):
            flat, _ = ravel_pytree(params)
            z = jnp.zeros_like(flat)
            one = jnp.ones((), flat.dtype)
            return QuasiNewtonState(jnp.eye(flat.shape[0], dtype=flat.dtype), z, z, z, jnp.asarray(True), one)

        def update(updates, state, params=None):
            g, unravel = ravel_pytree(updates)
            x, _ = ravel_pytree(params)
            s, y = x - state.prev_params, g - state.prev_grad
            ys, yy = y @ s, y @ y
            pp = state.direction @ state.direction
            alpha = (s @ state.direction) / jnp.where(pp > 0, pp, 1.0)
            ok = ~state.skip & (ys > jnp.finfo(g.dtype).eps * jnp.sqrt(yy * (s @ s)))
            safe_ys = jnp.where(ok, ys, 1.0)
            tau, phi = self.scaling(state.inverse_hessian, s, y, state.prev_grad, alpha)
            updated = broyden_family(state.inverse_hessian, s, jnp.where(ok, y, s), tau, phi)
            good_update = ok & jnp.all(jnp.isfinite(updated))
            H = jnp.where(good_update, updated, state.inverse_hessian)
            scale = jnp.where(ok, safe_ys / jnp.where(ok, yy, 1.0), state.scale)
            d = -(H @ g)
            descent = (g @ d < 0) & jnp.all(jnp.isfinite(d))
            eye = jnp.eye(g.shape[0], dtype=g.dtype)
            H = jnp.where(descent, H, scale * eye)
            d = jnp.where(descent, d, -scale * g)
            return unravel(d), QuasiNewtonState(H, x, g, d, jnp.asarray(False), scale)

        return optax.GradientTransformation(init, update)

    def transform(self):
        return optax.chain(self._direction(), zoom_search(self.max_linesearch_steps))

    def init(self, params):
        return self.transform().init(params)

    def step(self, objective: Objective, params, opt_state, step_in_phase) -> StepOut:
        del step_in_phase
        value, new_params, new_state = line_search_step(self.transform(), objective, params, opt_state)
        new_value = new_state[1].value  # the line search's value at the new parameters
        flat_new, _ = ravel_pytree(new_params)
        failed = ~(new_value < value) | ~jnp.all(jnp.isfinite(flat_new))
        new_params = jax.tree.map(lambda a, b: jnp.where(failed, b, a), new_params, params)
        new_state = jax.lax.cond(failed, lambda: self._restart(opt_state, new_state), lambda: new_state)
        return StepOut(new_params, new_state, value, nan_losses(objective, params, value), objective.weights)

    @staticmethod
    def _restart(old, new):
        """After a failed search: the old point, ``H`` the scaled identity, no update next."""
        qn = old[0]
        eye = jnp.eye(qn.prev_params.shape[0], dtype=qn.prev_params.dtype)
        qn = qn._replace(inverse_hessian=qn.scale * eye, skip=jnp.asarray(True))
        return reset_line_search_value((qn, new[1]))

    def redrawn(self, opt_state, params):
        del params
        qn, search = opt_state
        return reset_line_search_value((qn._replace(skip=jnp.asarray(True)), search))


@dataclasses.dataclass(frozen=True)
class BFGS(_DenseQuasiNewton):
    name = "bfgs"

    def scaling(self, H, s, y, g_old, alpha):
        one = jnp.ones((), s.dtype)
        return one, one


def _b_and_h(H, s, y, g_old, alpha):
    ys = y @ s
    b = -alpha * (s @ g_old) / ys  # s^T B s / y^T s
    h = (y @ (H @ y)) / ys
    return b, h


@dataclasses.dataclass(frozen=True)
class SSBFGS(_DenseQuasiNewton):
    name = "ssbfgs"

    def scaling(self, H, s, y, g_old, alpha):
        b, _ = _b_and_h(H, s, y, g_old, alpha)
        tau = jnp.minimum(1.0, 1.0 / b)
        tau = jnp.where(jnp.isfinite(tau) & (tau > 0), tau, 1.0)
        return tau, jnp.ones_like(tau)


@dataclasses.dataclass(frozen=True)
class SSBroyden(_DenseQuasiNewton):
    name = "ssbroyden"

    def scaling(self, H, s, y, g_old, alpha):
        n = s.shape[0]
        b, h = _b_and_h(H, s, y, g_old, alpha)
        a = jnp.maximum(b * h - 1.0, jnp.finfo(s.dtype).eps)  # >= 0 by Cauchy-Schwarz
        c = jnp.sqrt(a / (1.0 + a))
        rho_minus = jnp.minimum(1.0, h * (1.0 - c))
        theta_minus = (rho_minus - 1.0) / a
        theta_plus = 1.0 / rho_minus
        theta = jnp.maximum(theta_minus, jnp.minimum(theta_plus, (1.0 - b) / b))
        sigma = 1.0 + a * theta
        phi = (1.0 - theta) / sigma
        power = sigma ** (1.0 / (1.0 - n))
        rho_plus = jnp.minimum(1.0, 1.0 / b)
        tau = jnp.where(theta > 0, jnp.minimum(rho_plus * power, sigma), rho_minus * power)
        ok = jnp.isfinite(tau) & (tau > 0) & jnp.isfinite(phi) & (sigma > 0)
        return jnp.where(ok, tau, 1.0), jnp.where(ok, phi, 1.0)
