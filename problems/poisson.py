"""Poisson problems: 1-D and 2-D with exact solutions, the PINNacle Poisson 2d-C and 2d-CG
(Poisson-Boltzmann) benchmarks on perforated squares, and n-D Poisson (PINNacle PNd)."""

from __future__ import annotations

import jax.numpy as jnp

import pinnjax as pj

from ._common import has_default_parameters, pinnacle_reference


class Poisson1D(pj.Problem):
    """``-u'' = pi^2 sin(pi x)`` on ``[-1, 1]``, ``u(-1) = u(1) = 0``.

    Exact solution ``u = sin(pi x)``.
    """

    domain = pj.Interval(-1.0, 1.0)
    needs = ("u_xx",)
    conditions = (pj.Dirichlet(0.0),)

    def residual(self, x, d):
        return -d.u_xx - jnp.pi**2 * jnp.sin(jnp.pi * x[0])

    def exact(self, x):
        return jnp.sin(jnp.pi * x[0])


class Poisson2D(pj.Problem):
    """``u_xx + u_yy = -2 pi^2 sin(pi x) sin(pi y)`` on ``[-1, 1]^2``, ``u = 0`` on the boundary.

    Exact solution ``u = sin(pi x) sin(pi y)``.
    """

    domain = pj.Box([-1.0, -1.0], [1.0, 1.0])
    needs = ("lap_u",)
    conditions = (pj.Dirichlet(0.0),)

    def residual(self, x, d):
        return d.lap_u + 2 * jnp.pi**2 * jnp.sin(jnp.pi * x[0]) * jnp.sin(jnp.pi * x[1])

    def exact(self, x):
        return jnp.sin(jnp.pi * x[0]) * jnp.sin(jnp.pi * x[1])


def _disks(circles):
    """Union of disks ``(cx, cy, r)``."""
    disks = [pj.Ball([cx, cy], r) for cx, cy, r in circles]
    out = disks[0]
    for disk in disks[1:]:
        out = out | disk
    return out


class Poisson2DC(pj.Problem):
    """PINNacle **Poisson 2d-C**: ``u_xx + u_yy = 0`` on the square ``[-0.5, 0.5]^2`` minus four
    disks of radius 0.1 centred at ``(+-0.3, +-0.3)``.

    Dirichlet ``u = 1`` on the outer square (boundary part ``"outer"``) and ``u = 0`` on the four
    circles (part ``"inner"``).

    Reference: PINNacle's COMSOL solution ``poisson1_cg_data.dat`` (1,246 nodes).
    """

    domain = pj.Difference(
        pj.Box([-0.5, -0.5], [0.5, 0.5]),
        _disks([(0.3, 0.3, 0.1), (-0.3, 0.3, 0.1), (0.3, -0.3, 0.1), (-0.3, -0.3, 0.1)]),
        labels=("outer", "inner"),
    )
    needs = ("lap_u",)
    conditions = (
        pj.Dirichlet(1.0, part="outer", name="outer"),
        pj.Dirichlet(0.0, part="inner", name="circles"),
    )

    def residual(self, x, d):
        del x
        return d.lap_u

    def reference(self):
        return pinnacle_reference("poisson1_cg_data.dat")


_PB_CIRCLES = ((0.5, 0.5, 0.2), (0.4, -0.4, 0.4), (-0.2, -0.7, 0.1), (-0.6, 0.5, 0.3))


class PoissonBoltzmann2D(pj.Problem):
    """PINNacle **Poisson 2d-CG** (Poisson-Boltzmann): ``-(u_xx + u_yy) + k^2 u = f`` with
    ``f = A (mu1^2 + x^2 + mu2^2 + y^2) sin(mu1 pi x) sin(mu2 pi y)`` on ``[-1, 1]^2`` minus four
    disks (centre x, centre y, radius) (0.5, 0.5, 0.2), (0.4, -0.4, 0.4), (-0.2, -0.7, 0.1),
    (-0.6, 0.5, 0.3).

    Dirichlet ``u = 0.2`` on the outer square (part ``"outer"``), ``u = 1`` on the circles
    (part ``"inner"``).

    Reference: PINNacle's COMSOL solution ``poisson_boltzmann2d.dat`` (3,236 nodes), valid for the
    default ``k = 8``, ``A = 10``, ``mu = (1, 4)``; ``reference()`` is None for other values.
    """

    k: float = 8.0
    A: float = 10.0
    mu: tuple[float, float] = (1.0, 4.0)

    domain = pj.Difference(pj.Box([-1.0, -1.0], [1.0, 1.0]), _disks(_PB_CIRCLES), labels=("outer", "inner"))
    needs = ("u", "lap_u")
    conditions = (
        pj.Dirichlet(0.2, part="outer", name="outer"),
        pj.Dirichlet(1.0, part="inner", name="circles"),
    )

    def source(self, x):
        m1, m2 = self.mu
        return (
            self.A
            * (m1**2 + x[0] ** 2 + m2**2 + x[1] ** 2)
            * jnp.sin(m1 * jnp.pi * x[0])
            * jnp.sin(m2 * jnp.pi * x[1])
        )

    def residual(self, x, d):
        return -d.lap_u + self.k**2 * d.u - self.source(x)

    def reference(self):
        if not has_default_parameters(self, ("k", "A", "mu")):
            return None
        return pinnacle_reference("poisson_boltzmann2d.dat")


class PoissonND(pj.Problem):
    """n-D Poisson (PINNacle **PNd**): ``-lap u = (pi/2)^2 sum_k sin(pi x_k / 2)`` on ``[0, 1]^n``
    (``dim = n``, default 5), Dirichlet from the exact solution on the whole boundary.

    Exact solution ``u = sum_k sin(pi x_k / 2)``.
    """

    dim: int = 5

    needs = ("lap_u",)

    @property
    def domain(self):
        return pj.Box([0.0] * self.dim, [1.0] * self.dim)

    @property
    def conditions(self):
        return (pj.Dirichlet(self.exact),)

    def residual(self, x, d):
        return -d.lap_u - (jnp.pi / 2) ** 2 * jnp.sum(jnp.sin(jnp.pi * x / 2))

    def exact(self, x):
        return jnp.sum(jnp.sin(jnp.pi * x / 2))
