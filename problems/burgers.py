"""Viscous Burgers equation (PINNacle Burgers 1d-C)."""

from __future__ import annotations

import math

import jax.numpy as jnp

import pinnjax as pj

from ._common import has_default_parameters, pinnacle_reference


class Burgers1D(pj.Problem):
    """PINNacle **Burgers 1d-C**: ``u_t + u u_x - nu u_xx = 0`` with ``nu = 0.01 / pi`` on
    ``x in [-1, 1]``, ``t in [0, 1]``; ``u(x, 0) = -sin(pi x)``, ``u(-1, t) = u(1, t) = 0``.
    A shock forms at ``x = 0`` near ``t = 0.3``.

    Reference: PINNacle's ``burgers1d.dat`` (101 spatial nodes x 11 snapshots, t = 0, 0.1, ..., 1),
    valid for the default ``nu``; ``reference()`` is None for other values.
    """

    nu: float = 0.01 / math.pi

    domain = pj.Interval(-1.0, 1.0) * pj.TimeInterval(0.0, 1.0)
    needs = ("u", "u_t", "u_x", "u_xx")
    conditions = (pj.Dirichlet(0.0), pj.Initial(lambda x: -jnp.sin(jnp.pi * x[0])))

    def residual(self, x, d):
        del x
        return d.u_t + d.u * d.u_x - self.nu * d.u_xx

    def reference(self):
        if not has_default_parameters(self, ("nu",)):
            return None
        return pinnacle_reference("burgers1d.dat")
