"""Balls (disks in 2-D) in any dimension."""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
from jax.scipy.special import ndtri

from ._base import AbstractDomain, as_float_tuple, check_names


def _gaussian(u):
    """Standard normal samples from unit samples by the inverse CDF."""
    eps = float(jnp.finfo(u.dtype).eps)
    return ndtri(jnp.clip(u, eps, 1.0 - eps))


def _unit_vectors(u):
    g = _gaussian(u)
    return g / jnp.linalg.norm(g, axis=1, keepdims=True)


class Ball(AbstractDomain):
    """The closed ball |x - center| <= radius (a disk in 2-D).

    Boundary part: "sphere". `distance(x) = (r^2 - |x - c|^2) / (2 r)`: signed, slope 1
    across the sphere.
    """

    center: tuple[float, ...] = eqx.field(static=True)
    radius: float = eqx.field(static=True)
    coord_names: tuple[str, ...] = eqx.field(static=True)

    def __init__(self, center, radius, *, names=None):
        self.center = as_float_tuple(center, "Ball center")
        try:
            radius = float(radius)
        except (TypeError, ValueError):
            raise ValueError(f"Ball radius must be a number, got {radius!r}") from None
        if not (math.isfinite(radius) and radius > 0):
            raise ValueError(f"Ball has an empty interior: radius must be > 0, got {radius}")
        self.radius = radius
        self.coord_names = check_names(names, len(self.center))

    @property
    def dim(self) -> int:
        return len(self.center)

    def _c(self, dtype):
        return jnp.asarray(self.center, dtype)

    def _bounds(self):
        return (
            tuple(c - self.radius for c in self.center),
            tuple(c + self.radius for c in self.center),
        )

    def _contains(self, x, slack):
        return jnp.linalg.norm(x - self._c(x.dtype)) <= self.radius + slack

    @property
    def _own_parts(self):
        return ("sphere",)

    def _part_aliases(self):
        return {}

    def _on_part(self, x, part, tol):
        r = jnp.linalg.norm(x - self._c(x.dtype))
        return jnp.abs(r - self.radius) <= tol * self._scale

    def normal(self, x):
        x = jnp.asarray(x)
        v = x - self._c(x.dtype)
        return v / jnp.linalg.norm(v)

    def distance(self, x):
        x = jnp.asarray(x)
        r2 = jnp.sum((x - self._c(x.dtype)) ** 2)
        return (self.radius**2 - r2) / (2.0 * self.radius)

    def _part_distance(self, x, part):
        del part  # "sphere" is the whole boundary
        return jnp.abs(self.distance(x))

    def _part_distance_without(self, x, part):
        """Outside the ball, the Euclidean distance ``|x - c| - r``: its Laplacian is
        ``(d - 1) / |x - c|``, at most ``(d - 1) / r``, where the quadratic `distance` has
        ``-d / r`` everywhere and grows like ``|x - c|^2 / (2 r)`` away from the ball (a
        hole's distance enters a hard constraint's data ``g`` and its ``D``)."""
        del part
        x = jnp.asarray(x)
        r2 = jnp.sum((x - self._c(x.dtype)) ** 2)
        # the centre is never outside the ball: the floor only keeps its gradient finite
        return jnp.abs(jnp.sqrt(jnp.maximum(r2, jnp.finfo(x.dtype).tiny)) - self.radius)

    def volume(self) -> float:
        d = self.dim
        return math.pi ** (d / 2) / math.gamma(d / 2 + 1) * self.radius**d

    def boundary_measure(self, part=None) -> float:
        self._canon_part(part)
        return self.dim * self.volume() / self.radius

    def _interior_spec(self):
        return (2 if self.dim == 2 else self.dim + 1), 1.0

    def _interior_map(self, u):
        d, c = self.dim, self._c(u.dtype)
        if d == 2:
            # Polar map with r = R sqrt(u0): area-preserving.
            r = self.radius * jnp.sqrt(u[:, 0])
            theta = 2 * jnp.pi * u[:, 1]
            points = c[None, :] + r[:, None] * jnp.stack([jnp.cos(theta), jnp.sin(theta)], 1)
        else:
            # Uniform direction times R u^(1/d): P(|x| < s) = (s / R)^d.
            r = self.radius * u[:, d] ** (1.0 / d)
            points = c[None, :] + r[:, None] * _unit_vectors(u[:, :d])
        return points, jnp.ones(u.shape[:1], bool)

    def _boundary_spec(self, part):
        return {1: 1, 2: 1, 3: 2}.get(self.dim, self.dim), 1.0

    def _sphere_directions(self, u):
        d = self.dim
        if d == 1:
            return jnp.where(u[:, :1] < 0.5, -1.0, 1.0).astype(u.dtype)
        if d == 2:
            theta = 2 * jnp.pi * u[:, 0]
            return jnp.stack([jnp.cos(theta), jnp.sin(theta)], 1)
        if d == 3:
            # Archimedes: z uniform in [-1, 1] gives uniform area on the sphere.
            z = 1 - 2 * u[:, 0]
            phi = 2 * jnp.pi * u[:, 1]
            rho = jnp.sqrt(jnp.maximum(1 - z**2, 0.0))
            return jnp.stack([rho * jnp.cos(phi), rho * jnp.sin(phi), z], 1)
        return _unit_vectors(u)

    def _boundary_map(self, u, part):
        points = self._c(u.dtype)[None, :] + self.radius * self._sphere_directions(u)
        return points, jnp.ones(u.shape[:1], bool)
