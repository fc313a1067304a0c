"""Shared by the Gauss-Newton family (Levenberg-Marquardt, ENGD): the Jacobian of the weighted
residual vector with respect to the flat parameters, and the damped Gauss-Newton solve in its
dense (P x P) or Woodbury (N x N) form."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jax.scipy.linalg import cho_factor, cho_solve

JACOBIANS = ("jacrev", "jacfwd")
FORMS = ("auto", "dense", "woodbury")


def residual_jacobian(residuals, params, method: str = "jacrev"):
    """``(r, J, flat, unravel)``: the residual vector (N,), its Jacobian (N, P) at `params`,
    the flat parameters and the map back to the pytree. Generic autodiff, any network."""
    flat, unravel = ravel_pytree(params)

    def fn(f):
        return residuals(unravel(f))

    jac = jax.jacrev(fn) if method == "jacrev" else jax.jacfwd(fn)
    return fn(flat), jac(flat), flat, unravel


def gauss_newton_step(J, r, damping, form: str = "auto"):
    """``delta = -(J^T J + damping I)^{-1} J^T r``. The Woodbury form computes the same vector
    as ``-J^T (J J^T + damping I)^{-1} r``, an N x N solve, cheaper when N < P (ENGD's
    kernel form, Mueller & Zeinhofer 2023)."""
    n, p = J.shape
    woodbury = form == "woodbury" or (form == "auto" and n < p)
    if woodbury:
        K = J @ J.T + damping * jnp.eye(n, dtype=J.dtype)
        return -(J.T @ cho_solve(cho_factor(K), r))
    G = J.T @ J + damping * jnp.eye(p, dtype=J.dtype)
    return -cho_solve(cho_factor(G), J.T @ r)


def check_choice(key: str, value: str, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{key}: expected one of {', '.join(allowed)}, got {value!r}")
