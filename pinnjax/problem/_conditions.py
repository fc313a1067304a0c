"""Conditions: each is a loss term that samples its own points and returns a residual there.

A condition is written for one *sample*: usually one point ``x`` of shape (dim,) with its
``Fields`` ``d``; a periodic condition's sample is a pair of points, shape (2, dim). Values
``g`` are a number or a function of one point.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp


def _value_at(g, x):
    """``g(x)`` for a callable, else the constant, as an array."""
    return jnp.asarray(g(x) if callable(g) else g, dtype=x.dtype)


class AbstractCondition(eqx.Module):
    """A loss term other than the PDE residual.

    ``kind`` says which sample count from the sampling config it uses: ``"boundary"``,
    ``"initial"`` or ``"data"`` (its own points). Every condition has the static fields
    ``output``, ``name`` (the loss term's name; default the class name) and ``weight``."""

    kind = "boundary"

    @abc.abstractmethod
    def needs(self, output: str, coords: tuple[str, ...]) -> tuple[str, ...]:
        """Derivative names the residual reads."""

    @abc.abstractmethod
    def residual(self, problem, x, d) -> jax.Array:
        """Residual at one sample: scalar or (k,)."""

    def sample(self, domain, key, n: int, method: str) -> jax.Array:
        """(n, dim) points (or (n, 2, dim) pairs) for this condition."""
        return domain.sample_boundary(key, n, part=self.part, method=method)

    def points_of(self, sample: jax.Array) -> jax.Array:
        """Where the network is evaluated for a sample (the sample itself, except for data)."""
        return sample

    def check(self, problem) -> None:
        """Raise a named error if the condition does not fit the problem."""
        domain = problem.domain
        part = getattr(self, "part", None)
        if part not in (None, "boundary") and part not in domain.boundary_parts:
            raise ValueError(
                f"{type(self).__name__} is on boundary part {part!r}, which the domain does not have; "
                f"its parts are {domain.boundary_parts}"
            )
        if self.output not in problem.outputs:
            raise ValueError(f"{type(self).__name__} names output {self.output!r}; outputs are {problem.outputs}")

    def default_name(self) -> str:
        return type(self).__name__.lower()


class Dirichlet(AbstractCondition):
    """``u = g`` on a boundary part."""

    value: float | Callable = 0.0
    part: str | None = eqx.field(default=None, static=True)
    output: str = eqx.field(default="u", static=True)
    name: str | None = eqx.field(default=None, static=True)
    weight: float = eqx.field(default=1.0, static=True)

    def needs(self, output, coords):
        return (self.output,)

    def residual(self, problem, x, d):
        return d[self.output] - _value_at(self.value, x)


class Neumann(AbstractCondition):
    """``du/dn = g`` on a boundary part (outward normal from the domain)."""

    value: float | Callable = 0.0
    part: str | None = eqx.field(default=None, static=True)
    output: str = eqx.field(default="u", static=True)
    name: str | None = eqx.field(default=None, static=True)
    weight: float = eqx.field(default=1.0, static=True)

    def needs(self, output, coords):
        return (f"grad_{self.output}",)

    def residual(self, problem, x, d):
        n = problem.domain.normal(x)
        return jnp.dot(d[f"grad_{self.output}"], n) - _value_at(self.value, x)


class Robin(AbstractCondition):
    """``a u + b du/dn = g`` on a boundary part."""

    a: float = 1.0
    b: float = 1.0
    value: float | Callable = 0.0
    part: str | None = eqx.field(default=None, static=True)
    output: str = eqx.field(default="u", static=True)
    name: str | None = eqx.field(default=None, static=True)
    weight: float = eqx.field(default=1.0, static=True)

    def needs(self, output, coords):
        return (self.output, f"grad_{self.output}")

    def residual(self, problem, x, d):
        n = problem.domain.normal(x)
        du_dn = jnp.dot(d[f"grad_{self.output}"], n)
        return self.a * d[self.output] + self.b * du_dn - _value_at(self.value, x)


class Initial(AbstractCondition):
    """``u(x, t0) = g(x)`` and, for second-order-in-time PDEs, ``u_t(x, t0) = v(x)``."""

    value: float | Callable = 0.0
    velocity: float | Callable | None = None
    output: str = eqx.field(default="u", static=True)
    name: str | None = eqx.field(default=None, static=True)
    weight: float = eqx.field(default=1.0, static=True)

    kind = "initial"

    def needs(self, output, coords):
        return (self.output,) + ((f"{self.output}_{coords[-1]}",) if self.velocity is not None else ())

    def sample(self, domain, key, n, method):
        return domain.sample_boundary(key, n, part="initial", method=method)

    def check(self, problem):
        super().check(problem)
        if "initial" not in problem.domain.boundary_parts:
            raise ValueError("Initial condition needs a space-time domain (space * TimeInterval(t0, t1))")

    def residual(self, problem, x, d):
        r = d[self.output] - _value_at(self.value, x)
        if self.velocity is None:
            return r
        t = problem.coords[-1]
        return jnp.stack([r, d[f"{self.output}_{t}"] - _value_at(self.velocity, x)])


class Periodic(AbstractCondition):
    """``u`` (and its derivative along ``axis``, with ``derivative=True``) equal on the two
    faces ``x_axis = lower`` and ``x_axis = upper`` of the domain's bounding box."""

    axis: int = eqx.field(default=0, static=True)
    derivative: bool = eqx.field(default=True, static=True)
    output: str = eqx.field(default="u", static=True)
    name: str | None = eqx.field(default=None, static=True)
    weight: float = eqx.field(default=1.0, static=True)
    part = None

    def needs(self, output, coords):
        return (self.output,) + ((f"{self.output}_{coords[self.axis]}",) if self.derivative else ())

    def check(self, problem):
        super().check(problem)
        if not 0 <= self.axis < problem.domain.dim:
            raise ValueError(f"Periodic axis {self.axis} out of range for a {problem.domain.dim}-D domain")

    def sample(self, domain, key, n, method):
        lo, hi = domain.bbox()  # jnp arrays: np.asarray fails when sampling inside a jitted step
        x = domain.sample_interior(key, n, method=method)
        a = x.at[:, self.axis].set(lo[self.axis])
        b = x.at[:, self.axis].set(hi[self.axis])
        return jnp.stack([a, b], axis=1)

    def residual(self, problem, x, d):
        u = d[self.output]
        r = [u[0] - u[1]]
        if self.derivative:
            du = d[f"{self.output}_{problem.coords[self.axis]}"]
            r.append(du[0] - du[1])
        return jnp.stack(r)


class PointData(AbstractCondition):
    """Observations ``u(x_i) = u_i`` at given points (inverse problems, data assimilation).
    ``n`` points are drawn from them each step (all of them when ``batch`` is None)."""

    points: jax.Array
    values: jax.Array
    output: str = eqx.field(default="u", static=True)
    batch: int | None = eqx.field(default=None, static=True)
    name: str | None = eqx.field(default=None, static=True)
    weight: float = eqx.field(default=1.0, static=True)

    kind = "data"
    part = None

    def __check_init__(self):
        if self.points.ndim != 2 or self.values.shape != (self.points.shape[0],):
            raise ValueError(
                f"PointData needs points (N, dim) and values (N,), got {self.points.shape} and {self.values.shape}"
            )

    def needs(self, output, coords):
        return (self.output,)

    def check(self, problem):
        super().check(problem)
        if self.points.shape[1] != problem.domain.dim:
            raise ValueError(f"PointData points have {self.points.shape[1]} coordinates, the domain {problem.domain.dim}")

    def sample(self, domain, key, n, method):
        idx = jnp.arange(self.points.shape[0])
        if self.batch is not None and self.batch < self.points.shape[0]:
            idx = jax.random.choice(key, self.points.shape[0], (self.batch,), replace=False)
        # points and values travel together: index i of the sample is row idx[i]
        return jnp.concatenate([self.points[idx], self.values[idx, None].astype(self.points.dtype)], axis=1)

    def points_of(self, sample):
        return sample[..., :-1]

    def residual(self, problem, x, d):
        return d[self.output] - x[-1]  # x is the sample: the point and its observed value
