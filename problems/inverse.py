"""Inverse problems: unknown PDE coefficients learned from observations beside the network."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import pinnjax as pj


def _solution(x):
    """The solution for the true coefficient, at one point or a batch (last axis = x)."""
    return jnp.sin(jnp.pi * x[..., 0])


class InverseDiffusion(pj.Problem):
    """Identify a constant diffusion coefficient: ``-kappa u_xx = f`` on ``[0, 1]`` with
    ``f = true_kappa pi^2 sin(pi x)``, ``u(0) = u(1) = 0``, and ``n_obs`` (default 50)
    observations of ``u`` at the evenly spaced interior points ``x_i = i / (n_obs + 1)``.

    ``kappa`` is marked ``pj.unknown``: the trainer optimises it beside the network; it
    starts at 0.5 and the data are generated with ``true_kappa = 1.0`` (a class attribute, for
    reports). The observations are the exact solution ``u = sin(pi x)``, plus Gaussian noise of
    standard deviation ``noise`` (default 0) drawn with ``numpy.random.default_rng(seed)``, so they
    are the same on every run. With ``kappa = true_kappa`` the residual of the exact solution is
    zero; for any other ``kappa`` the PDE and the data cannot both be met.
    """

    kappa: jax.Array = pj.unknown(0.5)
    n_obs: int = eqx.field(default=50, static=True)
    noise: float = eqx.field(default=0.0, static=True)
    seed: int = eqx.field(default=0, static=True)
    # fixed data (default: made from n_obs, noise and seed): arrays of the problem, so the
    # compiled step takes them as arguments
    obs_points: np.ndarray | None = None
    obs_values: np.ndarray | None = None

    true_kappa = 1.0
    domain = pj.Interval(0.0, 1.0)
    needs = ("u_xx",)

    def __post_init__(self):
        if self.obs_points is None or self.obs_values is None:
            self.obs_points, self.obs_values = self.observations()

    @classmethod
    def exact_parameters(cls) -> dict:
        """Constructor arguments under which ``exact`` satisfies every term (for tests)."""
        return {"kappa": cls.true_kappa}

    def observations(self):
        """``(points (n_obs, 1), values (n_obs,))`` as numpy float64 arrays."""
        x = np.linspace(0.0, 1.0, self.n_obs + 2)[1:-1, None]
        u = np.sin(np.pi * x[:, 0])
        if self.noise:
            u = u + self.noise * np.random.default_rng(self.seed).standard_normal(u.shape)
        return x, u

    @property
    def conditions(self):
        return (pj.Dirichlet(0.0), pj.PointData(self.obs_points, self.obs_values, name="data"))

    def source(self, x):
        return self.true_kappa * jnp.pi**2 * jnp.sin(jnp.pi * x[0])

    def residual(self, x, d):
        return -self.kappa * d.u_xx - self.source(x)

    def exact(self, x):
        return _solution(x)


def _true_kappa_field(x):
    return 1.0 + 0.5 * np.sin(2.0 * np.pi * x)


class InverseDiffusionField(InverseDiffusion):
    """The noisy-data variant: identify a diffusion coefficient that varies in space,
    ``-(kappa(x) u_x)_x = f`` on ``[0, 1]``, ``u(0) = u(1) = 0``, from ``n_obs`` (default 50)
    observations of ``u = sin(pi x)`` with Gaussian noise of standard deviation ``noise``
    (default 0.05). ``kappa`` is unknown at ``nodes`` (default 17) evenly spaced points and
    linear between them; it starts at 0.5 everywhere. The data are made with the piecewise
    linear interpolant of ``1 + 0.5 sin(2 pi x)`` at the nodes (``true_kappa_nodes``), and
    ``f`` from it, so that kappa is exactly representable. Noise makes the unregularised
    kappa rough: ``loss.regularization`` (smoothness, tv, tikhonov) trades that off."""

    kappa: jax.Array = pj.unknown(factory=lambda: np.full(17, 0.5))
    noise: float = eqx.field(default=0.05, static=True)

    needs = ("u_x", "u_xx")

    def __check_init__(self):
        if np.ndim(self.kappa) != 1 or np.shape(self.kappa)[0] < 2:
            raise ValueError(f"kappa must be a 1-D grid of at least 2 node values, got shape {np.shape(self.kappa)}")

    @property
    def nodes(self) -> np.ndarray:
        return np.linspace(0.0, 1.0, np.shape(self.kappa)[0])

    def true_kappa_nodes(self) -> np.ndarray:
        return _true_kappa_field(self.nodes)

    @classmethod
    def exact_parameters(cls) -> dict:
        return {"kappa": _true_kappa_field(np.linspace(0.0, 1.0, 17)), "noise": 0.0}

    def kappa_at(self, x, values):
        """The interpolated coefficient and its slope at one point."""
        nodes = jnp.asarray(self.nodes, x.dtype)
        k = lambda t: jnp.interp(t, nodes, jnp.asarray(values, x.dtype))  # noqa: E731
        return k(x[0]), jax.grad(k)(x[0])

    def unknown_at(self, name, x):
        return self.kappa_at(x, self.kappa)[0] if name == "kappa" else super().unknown_at(name, x)

    def true_unknown(self, name, x):
        return self.kappa_at(x, self.true_kappa_nodes())[0] if name == "kappa" else None

    def source(self, x):
        k, k_x = self.kappa_at(x, self.true_kappa_nodes())
        u_x, u_xx = jnp.pi * jnp.cos(jnp.pi * x[0]), -jnp.pi**2 * jnp.sin(jnp.pi * x[0])
        return -(k_x * u_x + k * u_xx)

    def residual(self, x, d):
        k, k_x = self.kappa_at(x, self.kappa)
        return -(k_x * d.u_x + k * d.u_xx) - self.source(x)

    def kappa_error(self) -> float:
        """Relative L2 error of the learned kappa at the nodes."""
        k, true = np.asarray(self.kappa, np.float64), self.true_kappa_nodes()
        return float(np.linalg.norm(k - true) / np.linalg.norm(true))
