"""The 1-D wave equation (PINNacle Wave 1d-C)."""

from __future__ import annotations

import jax.numpy as jnp

import pinnjax as pj


class Wave1D(pj.Problem):
    """PINNacle **Wave 1d-C**: ``u_tt = c^2 u_xx`` (``c = 2``) on ``x in [0, 1]``,
    ``t in [0, 1]``; ``u(0, t) = u(1, t) = 0``; ``u(x, 0) = sin(pi x) + 0.5 sin(4 pi x)``,
    ``u_t(x, 0) = 0``.

    Exact solution (a sum of standing waves, equal to d'Alembert's)
    ``u = sin(pi x) cos(c pi t) + 0.5 sin(4 pi x) cos(4 c pi t)``.
    """

    c: float = 2.0

    domain = pj.Interval(0.0, 1.0) * pj.TimeInterval(0.0, 1.0)
    needs = ("u_tt", "u_xx")
    conditions = (
        pj.Dirichlet(0.0),
        pj.Initial(lambda x: jnp.sin(jnp.pi * x[0]) + 0.5 * jnp.sin(4 * jnp.pi * x[0]), velocity=0.0),
    )

    def residual(self, x, d):
        del x
        return d.u_tt - self.c**2 * d.u_xx

    def exact(self, x):
        s, t = x[0], x[1]
        return jnp.sin(jnp.pi * s) * jnp.cos(self.c * jnp.pi * t) + 0.5 * jnp.sin(4 * jnp.pi * s) * jnp.cos(
            4 * self.c * jnp.pi * t
        )
