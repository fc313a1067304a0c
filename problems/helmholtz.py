"""The 2-D Helmholtz equation with a manufactured solution."""

from __future__ import annotations

import jax.numpy as jnp

import pinnjax as pj


class Helmholtz2D(pj.Problem):
    """``u_xx + u_yy + k^2 u = q`` on ``[-1, 1]^2``, ``u = 0`` on the boundary, with
    ``q = (k^2 - (a1^2 + a2^2) pi^2) sin(a1 pi x) sin(a2 pi y)`` (``a1 = 1``, ``a2 = 4``,
    ``k = 1``, as in Wang, Teng & Perdikaris 2021).

    Exact solution ``u = sin(a1 pi x) sin(a2 pi y)``.
    """

    a1: float = 1.0
    a2: float = 4.0
    k: float = 1.0

    domain = pj.Box([-1.0, -1.0], [1.0, 1.0])
    needs = ("u", "lap_u")
    conditions = (pj.Dirichlet(0.0),)

    def source(self, x):
        return (self.k**2 - (self.a1**2 + self.a2**2) * jnp.pi**2) * self.exact(x)

    def residual(self, x, d):
        return d.lap_u + self.k**2 * d.u - self.source(x)

    def exact(self, x):
        return jnp.sin(self.a1 * jnp.pi * x[0]) * jnp.sin(self.a2 * jnp.pi * x[1])
