"""The Korteweg-de Vries equation (third order in space) with a soliton solution."""

from __future__ import annotations

import jax.numpy as jnp

import pinnjax as pj


class KdV(pj.Problem):
    """``u_t + 6 u u_x + u_xxx = 0`` on ``x in [-8, 8]``, ``t in [0, 2]``; Dirichlet on
    ``x = +-8`` and the initial value from the exact solution.

    Exact single soliton of speed ``c`` (default 2, amplitude ``c / 2``) starting at ``x0``
    (default -2, so it ends at ``x0 + 2 c = 2``):
    ``u = (c / 2) sech^2(sqrt(c) / 2 (x - c t - x0))``.
    The residual reads ``u_xxx`` from the engine's third-order recursion.
    """

    c: float = 2.0
    x0: float = -2.0

    domain = pj.Interval(-8.0, 8.0) * pj.TimeInterval(0.0, 2.0)
    needs = ("u", "u_t", "u_x", "u_xxx")

    @property
    def conditions(self):
        return (pj.Dirichlet(self.exact), pj.Initial(self.exact))

    def residual(self, x, d):
        del x
        return d.u_t + 6 * d.u * d.u_x + d.u_xxx

    def exact(self, x):
        xi = 0.5 * jnp.sqrt(self.c) * (x[0] - self.c * x[1] - self.x0)
        return 0.5 * self.c / jnp.cosh(xi) ** 2
