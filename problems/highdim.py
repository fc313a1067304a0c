"""High-dimensional problems on the unit ball in ``d`` dimensions (``dim``, any d), with exact
solutions and a hard constraint: Poisson, sine-Gordon and Allen-Cahn (the test problems of
Hu, Shi, Karniadakis & Kawaguchi, SDGD 2024, and Shi et al., STDE 2024).

All three share the exact solution (SDGD's "two-body" solution; by default its coefficients
are centred)

    u*(x) = (1 - |x|^2) w(x),   w(x) = sum_{i<d-1} c_i sin(phi_i),
    phi_i = x_i + cos(x_{i+1}) + x_{i+1} cos(x_i),

with ``c`` standard normal draws (seed 0) minus their mean. Uniform points of a d-ball have
coordinates of size ``1/sqrt(d)``, so ``phi_i ~ 1 + x_i + x_{i+1}``: with ``sum c_i = 0`` the
constant ``sin(1) sum c_i`` drops out and ``w ~ cos(1) sum_i (c_i + c_{i-1}) x_i`` is of order
one at every d (it does not collapse to a constant or to zero as d grows).

``centred=False`` keeps the draws as they are: the solution as SDGD and STDE publish it. There
``w`` is dominated by the constant ``sin(1) sum c_i`` (of size ``sqrt(d)``): the best
``(1 - |x|^2) a`` leaves 1.9% of ``u*`` at d = 1,000 (9.5% at d = 100) and the best
``(1 - |x|^2)(a + b . x)`` leaves 0.095% (1.6%), by ``scripts/highdim_linear_part.py
--published``. So its relative errors say less about what a solver learns than the centred
ones do; it is shipped to compare with the published figures.

``u* = 0`` on the sphere, which the hard constraint ``u = (1 - |x|^2) * network(x)`` (twice the unit ball's
``distance``) satisfies exactly, so there is no boundary loss.

The source terms use the closed form of the Laplacian (O(d) per point):
``lap u* = D lap w - 4 x . grad w - 2 d w`` with ``D = 1 - |x|^2`` and
``lap sin(phi) = cos(phi) lap phi - sin(phi) |grad phi|^2``; the tests check it against
``jax.hessian``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import pinnjax as pj


def coefficients(dim: int, centred: bool = True) -> np.ndarray:
    """The ``d - 1`` coefficients ``c_i`` of the exact solution (a fixed draw), minus their
    mean unless ``centred`` is False (the published solution)."""
    c = np.random.default_rng(0).standard_normal(dim - 1)
    return c - c.mean() if centred else c


def two_body(x, c):
    """``w(x)``, its Laplacian and ``x . grad w`` at one point (closed form, module docs)."""
    a, b = x[:-1], x[1:]  # x_i, x_{i+1}
    phi = a + jnp.cos(b) + b * jnp.cos(a)
    da = 1.0 - b * jnp.sin(a)  # d phi / d x_i
    db = jnp.cos(a) - jnp.sin(b)  # d phi / d x_{i+1}
    lap_phi = -b * jnp.cos(a) - jnp.cos(b)
    s, co = jnp.sin(phi), jnp.cos(phi)
    w = jnp.sum(c * s)
    lap_w = jnp.sum(c * (co * lap_phi - s * (da * da + db * db)))
    x_grad_w = jnp.sum(c * co * (a * da + b * db))
    return w, lap_w, x_grad_w


class _UnitBallProblem(pj.Problem):
    """``lap u + N(u) = f`` on the unit d-ball with the exact solution of the module docs."""

    dim: int = 100
    centred: bool = True  # False: SDGD's published coefficients (module docs)

    needs = ("u", "lap_u")
    # u = 0 on the sphere; the hard constraint holds it exactly, so the shipped configs draw no
    # boundary points (sampling.boundary: 0 drops this term)
    conditions = (pj.Dirichlet(0.0),)

    @classmethod
    def exact_parameters(cls) -> dict:
        """A small dimension for the tests that differentiate the exact solution by nested jvp."""
        return {"dim": 6}

    def __check_init__(self):
        if isinstance(self.dim, bool) or int(self.dim) != self.dim or self.dim < 2:
            raise ValueError(f"{type(self).__name__}: parameter 'dim' must be an integer >= 2, got {self.dim!r}")
        if not isinstance(self.centred, bool):
            raise ValueError(f"{type(self).__name__}: parameter 'centred' must be true or false, got {self.centred!r}")

    @property
    def domain(self):
        return pj.Ball([0.0] * self.dim, 1.0)

    def constraint(self, x):
        return jnp.zeros((), x.dtype), 1.0 - jnp.sum(x * x)

    def _exact_and_laplacian(self, x):
        c = jnp.asarray(coefficients(self.dim, self.centred), x.dtype)
        w, lap_w, x_grad_w = two_body(x, c)
        D = 1.0 - jnp.sum(x * x)
        return D * w, D * lap_w - 4.0 * x_grad_w - 2.0 * self.dim * w

    def nonlinearity(self, u):
        """``N(u)`` of ``lap u + N(u) = f``."""
        return jnp.zeros_like(u)

    def residual(self, x, d):
        u_star, lap_star = self._exact_and_laplacian(x)
        f = lap_star + self.nonlinearity(u_star)
        return d.lap_u + self.nonlinearity(d.u) - f

    def exact(self, x):
        return self._exact_and_laplacian(x)[0]


class PoissonBall(_UnitBallProblem):
    """Poisson ``lap u = f`` on the unit ball in ``dim`` dimensions (default 100), ``u = 0`` on
    the sphere (hard constraint); exact solution in ``problems/highdim.py``."""


class SineGordonBall(_UnitBallProblem):
    """Sine-Gordon ``lap u + sin(u) = f`` on the unit ball in ``dim`` dimensions (default 100),
    ``u = 0`` on the sphere (hard constraint); exact solution in ``problems/highdim.py``."""

    def nonlinearity(self, u):
        return jnp.sin(u)


class AllenCahnBall(_UnitBallProblem):
    """Allen-Cahn ``lap u + u - u^3 = f`` on the unit ball in ``dim`` dimensions (default 100),
    ``u = 0`` on the sphere (hard constraint); exact solution in ``problems/highdim.py``."""

    def nonlinearity(self, u):
        return u - u**3
