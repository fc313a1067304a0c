"""Heat equations: 1-D, 2-D and n-D with separable exact solutions, and the PINNacle Heat 2d-LT
(long time, nonlinear source) benchmark."""

from __future__ import annotations

import jax.numpy as jnp

import pinnjax as pj

from ._common import has_default_parameters, pinnacle_reference


class Heat1D(pj.Problem):
    """``u_t = alpha u_xx`` on ``x in [0, 1]``, ``t in [0, 1]`` (``alpha = 0.4``), ``u = 0`` at
    ``x = 0, 1``, ``u(x, 0) = sin(pi x)``.

    Exact solution ``u = exp(-alpha pi^2 t) sin(pi x)``.
    """

    alpha: float = 0.4

    domain = pj.Interval(0.0, 1.0) * pj.TimeInterval(0.0, 1.0)
    needs = ("u_t", "u_xx")
    conditions = (pj.Dirichlet(0.0), pj.Initial(lambda x: jnp.sin(jnp.pi * x[0])))

    def residual(self, x, d):
        del x
        return d.u_t - self.alpha * d.u_xx

    def exact(self, x):
        return jnp.exp(-self.alpha * jnp.pi**2 * x[1]) * jnp.sin(jnp.pi * x[0])


class Heat2D(pj.Problem):
    """``u_t = alpha (u_xx + u_yy)`` on ``[0, 1]^2 x [0, 1]`` (``alpha = 0.1``), ``u = 0`` on the
    sides, ``u(x, y, 0) = sin(m1 pi x) sin(m2 pi y)`` (``m1 = m2 = 1``).

    Exact solution ``u = exp(-alpha (m1^2 + m2^2) pi^2 t) sin(m1 pi x) sin(m2 pi y)``.
    """

    alpha: float = 0.1
    m1: int = 1
    m2: int = 1

    domain = pj.Box([0.0, 0.0], [1.0, 1.0]) * pj.TimeInterval(0.0, 1.0)
    needs = ("u_t", "lap_u")

    @property
    def conditions(self):
        return (pj.Dirichlet(0.0), pj.Initial(self.exact))

    def residual(self, x, d):
        del x
        return d.u_t - self.alpha * d.lap_u

    def exact(self, x):
        rate = self.alpha * (self.m1**2 + self.m2**2) * jnp.pi**2
        return jnp.exp(-rate * x[2]) * jnp.sin(self.m1 * jnp.pi * x[0]) * jnp.sin(self.m2 * jnp.pi * x[1])


class HeatND(pj.Problem):
    """n-D heat equation ``u_t = alpha lap u`` on ``[0, 1]^n x [0, 1]`` (``dim = n``, default 5,
    ``alpha = 0.1``); Dirichlet on the sides and the initial value from the exact solution.

    Exact solution ``u = exp(-alpha pi^2 t) (1/n) sum_k sin(pi x_k)``: every term decays at the
    same rate, so the mean stays O(1) in any dimension (a product of sines would vanish as n grows).
    """

    dim: int = 5
    alpha: float = 0.1

    needs = ("u_t", "lap_u")

    @property
    def domain(self):
        return pj.Box([0.0] * self.dim, [1.0] * self.dim) * pj.TimeInterval(0.0, 1.0)

    @property
    def conditions(self):
        return (pj.Dirichlet(self.exact), pj.Initial(self.exact))

    def residual(self, x, d):
        del x
        return d.u_t - self.alpha * d.lap_u

    def exact(self, x):
        return jnp.exp(-self.alpha * jnp.pi**2 * x[-1]) * jnp.mean(jnp.sin(jnp.pi * x[:-1]))


class Heat2DLongTime(pj.Problem):
    """PINNacle **Heat 2d-LT** (long time, nonlinear source):
    ``u_t = 0.001 (u_xx + u_yy) + 5 sin(k u^2) (1 + 2 sin(pi t / 4)) sin(m1 pi x) sin(m2 pi y)``
    with ``k = 1``, ``m1 = 4``, ``m2 = 2`` on ``[0, 1]^2 x [0, 100]``.

    Initial ``u = sin(4 pi x) sin(3 pi y)``; Dirichlet ``u = 0`` on the sides.

    Reference: PINNacle's COMSOL solution ``heat_longtime.dat`` (192 nodes x 501 snapshots,
    t = 0, 0.2, ..., 100), valid for the default ``k, m1, m2``; ``reference()`` is None otherwise.
    No published method solves it (L2RE about 1). The reference is a solution of this PDE: an
    independent finite-difference solve agrees with it to about 1% at every snapshot checked
    (``scripts/check_heat2d_lt_reference.py``). That solve also shows why it is hard: with the
    forcing's period 8, u swings twelve times between plateaus near +-sqrt(pi) and near 0, with
    sharp fronts between the cells of ``sin(4 pi x) sin(2 pi y)``.
    """

    k: float = 1.0
    m1: int = 4
    m2: int = 2

    domain = pj.Box([0.0, 0.0], [1.0, 1.0]) * pj.TimeInterval(0.0, 100.0)
    needs = ("u", "u_t", "lap_u")
    conditions = (
        pj.Dirichlet(0.0),
        pj.Initial(lambda x: jnp.sin(4 * jnp.pi * x[0]) * jnp.sin(3 * jnp.pi * x[1])),
    )

    def residual(self, x, d):
        forcing = (
            5.0
            * jnp.sin(self.k * d.u**2)
            * (1 + 2 * jnp.sin(jnp.pi * x[2] / 4))
            * jnp.sin(self.m1 * jnp.pi * x[0])
            * jnp.sin(self.m2 * jnp.pi * x[1])
        )
        return d.u_t - 0.001 * d.lap_u - forcing

    def reference(self):
        if not has_default_parameters(self, ("k", "m1", "m2")):
            return None
        return pinnacle_reference("heat_longtime.dat")
