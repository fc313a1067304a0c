"""Space-time cylinders `space x [t0, t1]`; time is the last coordinate."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from ._base import AbstractDomain, check_names, float_dtype
from ._interval import TimeInterval


class SpaceTime(AbstractDomain):
    """Points (x..., t) with x in `space` and t in `time`; usually `space * time`.

    Boundary parts:
      - "initial": spatial interior (closure) at t = t0;
      - "final": spatial interior at t = t1;
      - every spatial part p of `space`: p x [t0, t1];
      - "boundary" (or None): the whole spatial boundary x [t0, t1]
        (NOT including the initial / final slices).

    `normal` is the spatial normal with a 0 time component on the lateral
    boundary, and -e_t / +e_t on the initial / final slices.
    `distance` is the spatial distance; `time_distance` is (t - t0)/(t1 - t0).
    """

    space: AbstractDomain
    time: TimeInterval
    coord_names: tuple[str, ...] = eqx.field(static=True)

    def __init__(self, space, time, *, names=None):
        if not isinstance(space, AbstractDomain) or isinstance(space, (SpaceTime, TimeInterval)):
            raise TypeError(f"SpaceTime space must be a spatial domain, got {type(space).__name__}")
        if not isinstance(time, TimeInterval):
            raise TypeError(f"SpaceTime time must be a TimeInterval, got {type(time).__name__}")
        clash = {"initial", "final"} & set(space.boundary_parts)
        if clash:
            raise ValueError(f"spatial boundary part names {sorted(clash)} clash with time parts")
        self.space, self.time = space, time
        self.coord_names = check_names(names, space.dim + 1, default=space.coord_names + time.coord_names)

    @property
    def dim(self) -> int:
        return self.space.dim + 1

    def _bounds(self):
        lo, hi = self.space._bounds()
        return lo + (self.time.t0,), hi + (self.time.t1,)

    def _contains(self, x, slack):
        return self.space._contains(x[:-1], slack) & self.time._contains(x[-1:], slack)

    @property
    def _own_parts(self):
        return ("initial", "final") + self.space._own_parts

    def _part_aliases(self):
        return self.space._part_aliases()

    def _on_part(self, x, part, tol):
        xs, t = x[:-1], x[-1]
        if part in ("initial", "final"):
            t_part = self.time.t0 if part == "initial" else self.time.t1
            at_time = jnp.abs(t - t_part) <= tol * self._scale
            return at_time & self.space._contains(xs, tol * self.space._scale)
        in_time = self.time._contains(x[-1:], tol * self._scale)
        return self.space._on_part(xs, part, tol) & in_time

    def normal(self, x):
        x = jnp.asarray(x)
        xs, t = x[:-1], x[-1]
        lateral = jnp.concatenate([self.space.normal(xs), jnp.zeros((1,), x.dtype)])
        e_t = jnp.zeros((self.dim,), x.dtype).at[-1].set(1.0)
        on_side = self.space._on_part(xs, "boundary", 1e-5)
        initial = t <= 0.5 * (self.time.t0 + self.time.t1)
        return jnp.where(on_side, lateral, jnp.where(initial, -e_t, e_t)).astype(float_dtype())

    def distance(self, x):
        """Spatial distance function of `space` (ignores t)."""
        return self.space.distance(jnp.asarray(x)[:-1])

    def _part_distance(self, x, part):
        if part in ("initial", "final"):
            return self.time._part_distance(x[-1:], part)
        return self.space._part_distance(x[:-1], part)

    def _part_distance_within(self, x, part):
        if part in ("initial", "final"):
            return self.time._part_distance(x[-1:], part)
        return self.space._part_distance_within(x[:-1], part)

    def time_distance(self, x):
        """(t - t0) / (t1 - t0) for the point x = (x..., t)."""
        return self.time.time_distance(jnp.asarray(x)[-1])

    def volume(self) -> float:
        return self.space.volume() * self.time.volume()

    def boundary_measure(self, part=None) -> float:
        part = self._canon_part(part)
        if part in ("initial", "final"):
            return self.space.volume()
        return self.space.boundary_measure(part) * self.time.volume()

    def _interior_spec(self):
        unit_dim, rate = self.space._interior_spec()
        return unit_dim + 1, rate

    def _with_time(self, u, mapped, t):
        points, valid = mapped
        return jnp.concatenate([points, t[:, None].astype(points.dtype)], axis=1), valid

    def _time_from_unit(self, u):
        return self.time.t0 + u * (self.time.t1 - self.time.t0)

    def _interior_map(self, u):
        k = u.shape[1] - 1
        return self._with_time(u, self.space._interior_map(u[:, :k]), self._time_from_unit(u[:, k]))

    def _boundary_spec(self, part):
        if part in ("initial", "final"):
            return self.space._interior_spec()
        unit_dim, rate = self.space._boundary_spec(part)
        return unit_dim + 1, rate

    def _boundary_map(self, u, part):
        if part in ("initial", "final"):
            t_part = self.time.t0 if part == "initial" else self.time.t1
            return self._with_time(u, self.space._interior_map(u), jnp.full(u.shape[:1], t_part))
        k = u.shape[1] - 1
        mapped = self.space._boundary_map(u[:, :k], part)
        return self._with_time(u, mapped, self._time_from_unit(u[:, k]))
