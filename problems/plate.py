"""Kirchhoff plate bending: the biharmonic equation, a fourth-order PDE."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

import pinnjax as pj


class BendingMomentFree(pj.problem.AbstractCondition):
    """``lap u = 0`` on the boundary: on a straight simply supported edge, where ``u = 0``
    makes the tangential curvature vanish, this is the edge's zero bending moment."""

    output: str = eqx.field(default="u", static=True)
    name: str | None = eqx.field(default="moment", static=True)
    weight: float = eqx.field(default=1.0, static=True)
    part = None

    def needs(self, output, coords):
        return (f"lap_{self.output}",)

    def residual(self, problem, x, d):
        del problem, x
        return d[f"lap_{self.output}"]


class KirchhoffPlate(pj.Problem):
    """Simply supported square plate ``[0, 1]^2`` under the load ``q = 4 pi^4 D sin(pi x) sin(pi y)``:
    ``D lap(lap w) = q``, with ``w = 0`` and zero bending moment (``lap w = 0``) on the edges.
    The residual is divided by ``4 pi^4 D`` (the load's amplitude), so it is O(1).

    Exact solution ``w = sin(pi x) sin(pi y)`` (Navier's solution, one term).

    ``expanded=True`` writes the operator as ``w_xxxx + 2 w_xxyy + w_yyyy`` (the mixed fourth
    derivative through the engine) instead of ``bilap_u``; the two are the same PDE.
    """

    expanded: bool = eqx.field(default=False, static=True)

    domain = pj.Box([0.0, 0.0], [1.0, 1.0])
    conditions = (pj.Dirichlet(0.0), BendingMomentFree())

    @property
    def needs(self):
        return ("u_xxxx", "u_xxyy", "u_yyyy") if self.expanded else ("bilap_u",)

    def residual(self, x, d):
        bilap = d.u_xxxx + 2 * d.u_xxyy + d.u_yyyy if self.expanded else d.bilap_u
        return bilap / (4 * jnp.pi**4) - jnp.sin(jnp.pi * x[0]) * jnp.sin(jnp.pi * x[1])

    def exact(self, x):
        return jnp.sin(jnp.pi * x[0]) * jnp.sin(jnp.pi * x[1])
