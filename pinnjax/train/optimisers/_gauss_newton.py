"""Shared by the Gauss-Newton family (Levenberg-Marquardt, ENGD): the damped Gauss-Newton
solve in its dense (P x P) or Woodbury (N x N) form. (The residual Jacobian comes from the
objective: ``weighted_residual_jacobian`` in ``train/_loss.py``.)"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_factor, cho_solve

from ._base import AbstractOptimiser

JACOBIANS = ("jacrev", "jacfwd", "kronecker")
FORMS = ("auto", "dense", "woodbury")


def gauss_newton_step(J, r, damping, form: str = "auto"):
    """``delta = -(J^T J + damping I)^{-1} J^T r``. The Woodbury form computes the same vector
    as ``-J^T (J J^T + damping I)^{-1} r``, an N x N solve, cheaper when N < P (ENGD's
    kernel form, Mueller & Zeinhofer 2023)."""
    n, p = J.shape
    if _woodbury(form, n, p):
        return _woodbury_step(J, r, damping)
    return _dense_step(J.T @ J, J.T @ r, damping)


def _woodbury(form: str, n: int, p: int) -> bool:
    return form == "woodbury" or (form == "auto" and n < p)


def _woodbury_step(J, r, damping):
    K = J @ J.T + damping * jnp.eye(J.shape[0], dtype=J.dtype)
    return -(J.T @ cho_solve(cho_factor(K), r))


def _dense_step(G, g, damping):
    G = G + damping * jnp.eye(G.shape[0], dtype=G.dtype)
    return -cho_solve(cho_factor(G), g)


def gauss_newton_direction(objective, params, damping, form: str, jacobian: str):
    """``(value, delta, flat, unravel)``: the loss ``r^T r`` at `params` and the step
    `gauss_newton_step` gives. The dense form needs only ``J^T J`` and ``J^T r``, which a
    device mesh sums from per-device blocks of rows of ``J`` (``objective.gauss_newton_system``);
    the Woodbury form needs ``J J^T``, i.e. all of ``J`` on every device. Both forms are
    unchanged by reordering the rows of ``J`` and ``r`` together."""
    n, p = jax.eval_shape(lambda q: objective.residual_jacobian(q, jacobian)[1], params).shape
    if _woodbury(form, n, p):
        r, J, flat, unravel = objective.residual_jacobian(params, jacobian)
        return r @ r, _woodbury_step(J, r, damping), flat, unravel
    value, G, g, flat, unravel = objective.gauss_newton_system(params, jacobian)
    return value, _dense_step(G, g, damping), flat, unravel


def check_choice(key: str, value: str, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{key}: expected one of {', '.join(allowed)}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class AbstractGaussNewton(AbstractOptimiser):
    """Options every Gauss-Newton phase has: the solve's `form` (auto | dense | woodbury) and
    how the residual Jacobian is formed (`jacobian`: jacrev | jacfwd, per point, or kronecker:
    the dense layers in Kronecker form, ``derivatives/_param_jacobian.py``)."""

    form: str = "auto"
    jacobian: str = "jacrev"

    def __post_init__(self):
        check_choice("form", self.form, FORMS)
        check_choice("jacobian", self.jacobian, JACOBIANS)

    def init(self, params):
        dtype = jax.tree.leaves(params)[0].dtype
        return DampingState(jnp.asarray(self.damping, dtype), jnp.asarray(0, jnp.int32))


class DampingState(NamedTuple):
    damping: jax.Array  # the current damping
    failures: jax.Array  # steps in this phase that did not lower the loss (int32)


def next_damping(state: DampingState, ok, after_success, after_failure, low, high) -> DampingState:
    """The damping `after_success` (a step that lowered the loss) or `after_failure` (counted),
    kept in [low, high]."""
    lam = jnp.clip(jnp.where(ok, after_success, after_failure), low, high)
    return DampingState(lam.astype(state.damping.dtype), state.failures + jnp.where(ok, 0, 1).astype(jnp.int32))
