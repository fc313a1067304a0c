"""Shared by the Gauss-Newton family (Levenberg-Marquardt, ENGD): the damped Gauss-Newton
solve in its dense (P x P) or Woodbury (N x N) form, or matrix-free by conjugate gradients.
(The residual Jacobian comes from the objective: ``weighted_residual_jacobian`` in
``train/_loss.py``; the matrix-free solve differentiates ``weighted_residuals`` instead.)"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jax.scipy.linalg import cho_factor, cho_solve

from ._base import AbstractOptimiser

JACOBIANS = ("jacrev", "jacfwd", "kronecker")
FORMS = ("auto", "dense", "woodbury", "cg")


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


def conjugate_gradients(apply_A, b, max_iters: int, tol: float):
    """Solve ``A x = b`` for a symmetric positive definite ``A`` given as the function
    ``apply_A``: plain conjugate gradients from ``x = 0`` (Hestenes & Stiefel 1952), stopped
    when ``||b - A x|| <= tol ||b||`` or after `max_iters` products. Returns ``(x, products)``.
    (A non-finite ``b`` stops it at once with ``x = 0``.)"""
    stop = tol**2 * (b @ b)

    def going(carry):
        _, _, _, rr, k = carry
        return (k < max_iters) & (rr > stop)

    def iteration(carry):
        x, res, p, rr, k = carry
        Ap = apply_A(p)
        alpha = rr / (p @ Ap)
        x = x + alpha * p
        res = res - alpha * Ap
        rr_next = res @ res
        return x, res, res + (rr_next / rr) * p, rr_next, k + 1

    start = (jnp.zeros_like(b), b, b, b @ b, jnp.asarray(0, jnp.int32))
    x, _, _, _, k = jax.lax.while_loop(going, iteration, start)
    return x, k


def matrix_free_gauss_newton_step(residuals, flat, damping, max_iters: int, tol: float):
    """``(r, delta, products)``: ``r = residuals(flat)`` and the direction
    ``delta = -(J^T J + damping I)^{-1} J^T r`` by `conjugate_gradients`, without forming
    ``J = d residuals / d flat``: ``J v`` is the linearisation of `residuals` (``jax.linearize``,
    a jvp whose forward pass is done once) and ``J^T u`` its transpose (the vjp)."""
    r, jvp = jax.linearize(residuals, flat)
    vjp = jax.linear_transpose(jvp, flat)

    def normal_matrix_times(v):
        (jtjv,) = vjp(jvp(v))
        return jtjv + damping * v

    (jtr,) = vjp(r)
    delta, products = conjugate_gradients(normal_matrix_times, -jtr, max_iters, tol)
    return r, delta, products


def check_choice(key: str, value: str, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{key}: expected one of {', '.join(allowed)}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class AbstractGaussNewton(AbstractOptimiser):
    """Options every Gauss-Newton phase has: the solve's `form` (auto | dense | woodbury |
    cg), how the residual Jacobian is formed (`jacobian`: jacrev | jacfwd, per point, or
    kronecker: the dense layers in Kronecker form, ``derivatives/_param_jacobian.py``), and,
    for `form: cg` (matrix-free, no Jacobian formed), the most products ``J^T J v``
    (`cg_iters`) and the relative residual at which conjugate gradients stop (`cg_tol`)."""

    form: str = "auto"
    jacobian: str = "jacrev"
    cg_iters: int = 200
    cg_tol: float = 1e-10

    def __post_init__(self):
        check_choice("form", self.form, FORMS)
        check_choice("jacobian", self.jacobian, JACOBIANS)
        if self.cg_iters < 1:
            raise ValueError(f"cg_iters: expected an int >= 1, got {self.cg_iters!r}")
        if not 0.0 <= self.cg_tol < 1.0:
            raise ValueError(f"cg_tol: expected a float in [0, 1), got {self.cg_tol!r}")

    def direction(self, objective, params, damping):
        """``(value, delta, flat, unravel)``: the loss ``r^T r`` of the weighted residuals at
        `params`, the damped Gauss-Newton direction in the flat parameters (by the solve
        `form`), the flat parameters and the map back to the pytree."""
        if self.form == "cg":
            flat, unravel = ravel_pytree(params)
            r, delta, _ = matrix_free_gauss_newton_step(lambda f: objective.residuals(unravel(f)), flat, damping,
                                                        self.cg_iters, self.cg_tol)
            return r @ r, delta, flat, unravel
        return gauss_newton_direction(objective, params, damping, self.form, self.jacobian)

    def init(self, params):
        dtype = jax.tree.leaves(params)[0].dtype
        return DampingState(jnp.asarray(self.damping, dtype), jnp.asarray(0, jnp.int32))


class DampingState(NamedTuple):
    damping: jax.Array  # the current damping
    failures: jax.Array  # steps in this phase that did not lower the loss (int32)


def damping_record(opt_state) -> dict:
    """What a history row shows of a Gauss-Newton phase's state (other phases: nothing): the
    damping now and the steps of the phase rejected so far. A run stuck at a high loss with a
    damping grown by orders of magnitude is one whose steps keep failing."""
    if not isinstance(opt_state, DampingState):
        return {}
    return {"damping": float(opt_state.damping), "rejected_steps": int(opt_state.failures)}


def next_damping(state: DampingState, ok, after_success, after_failure, low, high) -> DampingState:
    """The damping `after_success` (a step that lowered the loss) or `after_failure` (counted),
    kept in [low, high]."""
    lam = jnp.clip(jnp.where(ok, after_success, after_failure), low, high)
    return DampingState(lam.astype(state.damping.dtype), state.failures + jnp.where(ok, 0, 1).astype(jnp.int32))
