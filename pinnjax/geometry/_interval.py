"""1-D domains: `Interval` (space) and `TimeInterval` (time)."""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp

from ._base import AbstractDomain, check_names, float_dtype
from ._rfunctions import slab


def _check_interval(lo, hi, what: str) -> tuple[float, float]:
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        raise ValueError(f"{what} endpoints must be numbers, got {lo!r}, {hi!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{what} endpoints must be finite, got {lo}, {hi}")
    if not lo < hi:
        raise ValueError(f"{what} has an empty interior: need start < end, got {lo} >= {hi}")
    return lo, hi


# Shared 1-D implementations; `ends` are the names of the (low, high) parts.


def _contains_1d(lo, hi, x, slack):
    return (x[0] >= lo - slack) & (x[0] <= hi + slack)


def _on_part_1d(dom, lo, hi, ends, x, part, tol):
    t = tol * dom._scale
    at_lo = jnp.abs(x[0] - lo) <= t
    at_hi = jnp.abs(x[0] - hi) <= t
    if part == ends[0]:
        return at_lo
    if part == ends[1]:
        return at_hi
    return at_lo | at_hi


def _normal_1d(lo, hi, x):
    # Outward normal of the nearer endpoint.
    return jnp.where(x[:1] < 0.5 * (lo + hi), -1.0, 1.0).astype(float_dtype())


def _distance_1d(lo, hi, x):
    return slab(x[0], lo, hi)


def _part_distance_1d(lo, hi, ends, x, part):
    if part == ends[0]:
        return jnp.abs(x[0] - lo)
    if part == ends[1]:
        return jnp.abs(hi - x[0])
    return jnp.abs(_distance_1d(lo, hi, x))


def _interior_map_1d(lo, hi, u):
    return lo + u * (hi - lo), jnp.ones(u.shape[:1], bool)


def _boundary_map_1d(lo, hi, ends, u, part):
    if part == ends[0]:
        x = jnp.full_like(u[:, :1], lo)
    elif part == ends[1]:
        x = jnp.full_like(u[:, :1], hi)
    else:  # both endpoints with equal (counting-measure) weight
        x = jnp.where(u[:, :1] < 0.5, lo, hi).astype(u.dtype)
    return x, jnp.ones(u.shape[:1], bool)


class Interval(AbstractDomain):
    """The closed interval [a, b].

    Boundary parts: "left" (x = a) and "right" (x = b); "<name>_min" /
    "<name>_max" (e.g. "x_min") are accepted as aliases.
    `distance(x) = (x - a)(b - x) / (b - a)`: slope 1 at both ends (signed, normalised).
    """

    a: float = eqx.field(static=True)
    b: float = eqx.field(static=True)
    coord_names: tuple[str, ...] = eqx.field(static=True)

    def __init__(self, a, b, *, names=None):
        self.a, self.b = _check_interval(a, b, "Interval")
        self.coord_names = check_names(names, 1)

    @property
    def dim(self) -> int:
        return 1

    def _bounds(self):
        return (self.a,), (self.b,)

    def _contains(self, x, slack):
        return _contains_1d(self.a, self.b, x, slack)

    @property
    def _own_parts(self):
        return ("left", "right")

    def _part_aliases(self):
        name = self.coord_names[0]
        return {f"{name}_min": "left", f"{name}_max": "right"}

    def _on_part(self, x, part, tol):
        return _on_part_1d(self, self.a, self.b, self._own_parts, x, part, tol)

    def normal(self, x):
        return _normal_1d(self.a, self.b, jnp.asarray(x))

    def distance(self, x):
        return _distance_1d(self.a, self.b, jnp.asarray(x))

    def _part_distance(self, x, part):
        return _part_distance_1d(self.a, self.b, self._own_parts, x, part)

    def volume(self) -> float:
        return self.b - self.a

    def boundary_measure(self, part=None) -> float:
        return 2.0 if self._canon_part(part) == "boundary" else 1.0

    def _interior_spec(self):
        return 1, 1.0

    def _interior_map(self, u):
        return _interior_map_1d(self.a, self.b, u)

    def _boundary_spec(self, part):
        return 1, 1.0

    def _boundary_map(self, u, part):
        return _boundary_map_1d(self.a, self.b, self._own_parts, u, part)


class TimeInterval(AbstractDomain):
    """The time interval [t0, t1]; coordinate name "t" by default.

    Use `space * TimeInterval(t0, t1)` to build a `SpaceTime` domain. On its
    own it is a 1-D domain with boundary parts "initial" (t0) and "final" (t1).
    """

    t0: float = eqx.field(static=True)
    t1: float = eqx.field(static=True)
    coord_names: tuple[str, ...] = eqx.field(static=True)

    def __init__(self, t0, t1, *, names=None):
        self.t0, self.t1 = _check_interval(t0, t1, "TimeInterval")
        self.coord_names = check_names(names, 1, default=("t",))

    @property
    def dim(self) -> int:
        return 1

    def _bounds(self):
        return (self.t0,), (self.t1,)

    def _contains(self, x, slack):
        return _contains_1d(self.t0, self.t1, x, slack)

    @property
    def _own_parts(self):
        return ("initial", "final")

    def _part_aliases(self):
        return {}

    def _on_part(self, x, part, tol):
        return _on_part_1d(self, self.t0, self.t1, self._own_parts, x, part, tol)

    def normal(self, x):
        return _normal_1d(self.t0, self.t1, jnp.asarray(x))

    def distance(self, x):
        return _distance_1d(self.t0, self.t1, jnp.asarray(x))

    def _part_distance(self, x, part):
        return _part_distance_1d(self.t0, self.t1, self._own_parts, x, part)

    def time_distance(self, t):
        """(t - t0) / (t1 - t0): 0 at the initial time, 1 at the final time."""
        return (jnp.asarray(t) - self.t0) / (self.t1 - self.t0)

    def volume(self) -> float:
        return self.t1 - self.t0

    def boundary_measure(self, part=None) -> float:
        return 2.0 if self._canon_part(part) == "boundary" else 1.0

    def _interior_spec(self):
        return 1, 1.0

    def _interior_map(self, u):
        return _interior_map_1d(self.t0, self.t1, u)

    def _boundary_spec(self, part):
        return 1, 1.0

    def _boundary_map(self, u, part):
        return _boundary_map_1d(self.t0, self.t1, self._own_parts, u, part)
