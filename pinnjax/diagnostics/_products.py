"""Matrix-free curvature products in the flat parameters (seed ``jacobian-hessian-notes.txt``,
"Hessian-free optimization": only products with the Hessian are formed, never the matrix).

- ``H v`` of a scalar loss: forward-over-reverse, the directional derivative of the gradient,
  ``jvp(grad L)(theta; v)`` (one gradient's cost, twice).
- ``G v`` of the Gauss-Newton matrix of ``L = sum(r**2)``: ``G = 2 J^T J`` with ``J = dr/dtheta``
  (the Hessian ``2 J^T J + 2 sum_i r_i Hess(r_i)`` without its second term; seed
  ``matrix-calculus-neural-models-lecture.txt``, the chain rule through the residual), as a
  Jacobian-vector product ``J v`` then a vector-Jacobian product ``J^T (J v)``. No row of
  ``J`` is formed; the dense ``J`` of ``FlatLoss.jacobian`` is the check."""

from __future__ import annotations

import functools

import equinox as eqx
import jax


def hessian_vector_product(loss, theta, v):
    """``Hess L(theta) v``, forward-over-reverse."""
    return jax.jvp(jax.grad(loss), (theta,), (v,))[1]


def gauss_newton_vector_product(residuals, theta, v):
    """``2 J^T J v`` with ``J = d residuals / d theta`` at `theta`."""
    r, pullback = jax.vjp(residuals, theta)
    del r
    jv = jax.jvp(residuals, (theta,), (v,))[1]
    (jtjv,) = pullback(jv)
    return 2.0 * jtjv


def curvature_operator(flat_loss, kind: str, term: int | None = None):
    """``v -> M v`` at the run's parameters for ``kind`` ``"hessian"`` or ``"gauss_newton"``,
    of the whole loss or of one term (`term`, its index in spec order). Compiled once per
    run structure, kind and term: every Lanczos step and every later state reuse it."""
    if kind not in ("hessian", "gauss_newton"):
        raise ValueError(f"curvature kind must be 'hessian' or 'gauss_newton', got {kind!r}")
    return functools.partial(_product, flat_loss.spec, flat_loss.state, flat_loss.flat, kind=kind, term=term)


@eqx.filter_jit
def _product(spec, state, theta, v, *, kind, term):
    from ._objective import flat_loss

    fl = flat_loss(spec, state)
    if kind == "hessian":
        return hessian_vector_product(lambda t: fl.loss(t, term), theta, v)
    return gauss_newton_vector_product(lambda t: fl.residuals(t, term), theta, v)
