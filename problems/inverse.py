"""Inverse problems: unknown PDE coefficients learned from observations beside the network."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import pinnjax as pj


def _as_float(value):
    """A strongly typed float array in the default float dtype (a weakly typed 0.5 would change
    type after the first optimiser update and make a jitted step compile twice)."""
    return jnp.asarray(value, dtype=jnp.zeros(()).dtype)


def _solution(x):
    """The solution for the true coefficient, at one point or a batch (last axis = x)."""
    return jnp.sin(jnp.pi * x[..., 0])


class InverseDiffusion(pj.Problem):
    """Identify a constant diffusion coefficient: ``-kappa u_xx = f`` on ``[0, 1]`` with
    ``f = true_kappa pi^2 sin(pi x)``, ``u(0) = u(1) = 0``, and ``n_obs`` (default 50)
    observations of ``u`` at the evenly spaced interior points ``x_i = i / (n_obs + 1)``.

    ``kappa`` is an array field, hence an unknown the trainer optimises beside the network; it
    starts at 0.5 and the data are generated with ``true_kappa = 1.0`` (a class attribute, for
    reports). The observations are the exact solution ``u = sin(pi x)``, plus Gaussian noise of
    standard deviation ``noise`` (default 0) drawn with ``numpy.random.default_rng(seed)``, so they
    are the same on every run. With ``kappa = true_kappa`` the residual of the exact solution is
    zero; for any other ``kappa`` the PDE and the data cannot both be met.
    """

    kappa: jax.Array = eqx.field(default_factory=lambda: 0.5, converter=_as_float)
    n_obs: int = eqx.field(default=50, static=True)
    noise: float = eqx.field(default=0.0, static=True)
    seed: int = eqx.field(default=0, static=True)

    true_kappa = 1.0
    domain = pj.Interval(0.0, 1.0)
    needs = ("u_xx",)

    def observations(self):
        """``(points (n_obs, 1), values (n_obs,))`` as numpy float64 arrays."""
        x = np.linspace(0.0, 1.0, self.n_obs + 2)[1:-1, None]
        u = np.sin(np.pi * x[:, 0])
        if self.noise:
            u = u + self.noise * np.random.default_rng(self.seed).standard_normal(u.shape)
        return x, u

    @property
    def conditions(self):
        x, u = self.observations()
        dtype = jnp.zeros(()).dtype  # float64 under jax_enable_x64, else float32
        return (
            pj.Dirichlet(0.0),
            pj.PointData(jnp.asarray(x, dtype), jnp.asarray(u, dtype), name="data"),
        )

    def source(self, x):
        return self.true_kappa * jnp.pi**2 * jnp.sin(jnp.pi * x[0])

    def residual(self, x, d):
        return -self.kappa * d.u_xx - self.source(x)

    def exact(self, x):
        return _solution(x)
