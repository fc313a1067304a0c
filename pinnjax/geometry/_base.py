"""Abstract base class for all domains, and shared helpers."""

from __future__ import annotations

import abc
import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._qmc import METHODS, unit_samples

# Rejection sampling gives up after this many top-up rounds (only reachable if
# the acceptance estimate made at construction was badly wrong); unfilled rows
# are then NaN rather than silently wrong.
_MAX_ROUNDS = 1000


def float_dtype():
    """Default float dtype (float64 when x64 is enabled, else float32)."""
    return jnp.zeros(()).dtype


def default_coord_names(dim: int) -> tuple[str, ...]:
    if dim <= 3:
        return ("x", "y", "z")[:dim]
    return tuple(f"x{i}" for i in range(dim))


def check_names(names, dim: int, default=None) -> tuple[str, ...]:
    """Validate user coordinate names (or return the defaults)."""
    if names is None:
        return default if default is not None else default_coord_names(dim)
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    if len(names) != dim or not all(isinstance(s, str) and s for s in names):
        raise ValueError(f"names must be {dim} non-empty strings, got {names!r}")
    if len(set(names)) != dim:
        raise ValueError(f"names must be distinct, got {names!r}")
    return names


def as_float_tuple(values, what: str) -> tuple[float, ...]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        arr = arr[None]
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{what} must be a non-empty 1-D list of numbers, got {values!r}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} must be finite, got {values!r}")
    return tuple(float(v) for v in arr)


def rejection_fill(key, n: int, dim: int, unit_dim: int, rate: float, method: str, map_fn):
    """Exactly `n` valid points from a proposal `map_fn(u) -> (points, valid)`.

    `u` are (m, unit_dim) unit-cube samples drawn with `method`. If `rate` (the
    expected fraction of valid proposals) is 1 the proposal is used as is.
    Otherwise a static batch of m ~ n / rate proposals is drawn, valid ones are
    written into the output in order, and a `lax.while_loop` draws further
    batches (with keys folded from `key`) until all n rows are filled.
    """
    dtype = float_dtype()
    if rate >= 1.0:
        points, _ = map_fn(unit_samples(key, n, unit_dim, method, dtype))
        return points
    m = min(int(math.ceil(1.2 * n / max(rate, 1e-6))) + 16, 64 * n + 1024)

    def cond(state):
        i, count, _ = state
        return (count < n) & (i < _MAX_ROUNDS)

    def body(state):
        i, count, out = state
        u = unit_samples(jax.random.fold_in(key, i), m, unit_dim, method, dtype)
        points, valid = map_fn(u)
        rank = count + jnp.cumsum(valid) - 1
        # Row n is out of bounds and dropped: invalid points and surplus.
        index = jnp.where(valid & (rank < n), rank, n)
        out = out.at[index].set(points.astype(dtype), mode="drop")
        return i + 1, jnp.minimum(count + jnp.sum(valid, dtype=jnp.int32), n), out

    init = (jnp.int32(0), jnp.int32(0), jnp.full((n, dim), jnp.nan, dtype))
    return lax.while_loop(cond, body, init)[2]


def _check_sampling_args(n, method):
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int (static), got {n!r}")
    if method not in METHODS:
        raise ValueError(f"unknown sampling method {method!r}; expected one of {METHODS}")


# Domains hold only static data, so they are hashable and can be static jit
# arguments: eager calls then compile once per (domain, n, method, part).
@functools.partial(jax.jit, static_argnums=(0, 2, 3))
def _sample_interior_jit(domain, key, n, method):
    unit_dim, rate = domain._interior_spec()
    return rejection_fill(key, n, domain.dim, unit_dim, rate, method, domain._interior_map)


@functools.partial(jax.jit, static_argnums=(0, 2, 3, 4))
def _sample_boundary_jit(domain, key, n, method, part):
    unit_dim, rate = domain._boundary_spec(part)
    map_fn = functools.partial(domain._boundary_map, part=part)
    return rejection_fill(key, n, domain.dim, unit_dim, rate, method, map_fn)


class AbstractDomain(eqx.Module):
    """A closed domain in R^dim.

    Point-wise methods (`contains`, `on_part`, `normal`, `distance`) take ONE
    point of shape (dim,); batch them with `jax.vmap`. Sampling methods are
    pure functions of the PRNG key with static output shape (n, dim), usable
    under `jax.jit` with n / method / part static.

    Operators: `a - b` (Difference), `a | b` (Union), `a & b` (Intersection),
    `space * TimeInterval(t0, t1)` (SpaceTime).

    Tolerances: `tol` of `on_part` and the small slack that makes `contains`
    include boundary points despite rounding are scaled by
    max(1, largest |bbox coordinate|).
    """

    coord_names: eqx.AbstractVar[tuple[str, ...]]

    # ---- abstract interface -------------------------------------------------

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Number of coordinates of a point."""

    @abc.abstractmethod
    def _bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Bounding box as python floats."""

    @abc.abstractmethod
    def _contains(self, x, slack: float):
        """Membership of the set grown (slack > 0) or shrunk (slack < 0) by |slack|."""

    @property
    @abc.abstractmethod
    def _own_parts(self) -> tuple[str, ...]:
        """Named boundary parts, not including "boundary"."""

    @abc.abstractmethod
    def _part_aliases(self) -> dict[str, str]:
        """Extra accepted part names -> canonical part names."""

    @abc.abstractmethod
    def _on_part(self, x, part: str, tol: float):
        """`on_part` for a canonical part name (including "boundary")."""

    @abc.abstractmethod
    def normal(self, x):
        """Outward unit normal at a boundary point x, shape (dim,)."""

    @abc.abstractmethod
    def distance(self, x):
        """Signed approximate distance: > 0 inside, 0 on the boundary, < 0 outside,
        normalised to first order (|grad| = 1 on the boundary away from corners); see
        `_rfunctions.py`."""

    def _part_distance(self, x, part: str):
        """`part_distance` for a canonical part name; domains with named parts override it."""
        if part == "boundary":
            return jnp.abs(self.distance(x))
        raise NotImplementedError(f"{type(self).__name__} has no distance to its boundary part {part!r}")

    def _part_distance_within(self, x, part: str):
        """A distance to a part that need be valid (>= 0, zero exactly on the part) only for
        ``x`` inside this domain: what a hard constraint evaluates. Domains where that allows a
        smoother function than `_part_distance` override it (a Box's product of slabs)."""
        return self._part_distance(x, part)

    def _part_distance_without(self, x, part: str):
        """Like `_part_distance_within`, valid only for ``x`` outside this domain: for a hole
        cut out of another domain (a Ball's Euclidean distance)."""
        return self._part_distance(x, part)

    @abc.abstractmethod
    def volume(self) -> float:
        """Interior measure (length / area / volume); estimated for CSG."""

    @abc.abstractmethod
    def boundary_measure(self, part: str | None = None) -> float:
        """Measure of a boundary part; estimated for CSG."""

    @abc.abstractmethod
    def _interior_spec(self) -> tuple[int, float]:
        """(unit-cube dims used by `_interior_map`, expected acceptance rate)."""

    @abc.abstractmethod
    def _interior_map(self, u):
        """Map (m, unit_dim) unit samples to (points, valid) proposals."""

    @abc.abstractmethod
    def _boundary_spec(self, part: str) -> tuple[int, float]:
        """Like `_interior_spec` for a canonical boundary part."""

    @abc.abstractmethod
    def _boundary_map(self, u, part: str):
        """Like `_interior_map` for a canonical boundary part."""

    # ---- shared implementation ----------------------------------------------

    @property
    def boundary_parts(self) -> tuple[str, ...]:
        """Valid `part` names; "boundary" is the whole boundary."""
        return ("boundary",) + self._own_parts

    def _canon_part(self, part) -> str:
        if part is None or part == "boundary":
            return "boundary"
        if part in self._own_parts:
            return part
        aliases = self._part_aliases()
        if part in aliases:
            return aliases[part]
        raise ValueError(
            f"unknown boundary part {part!r} for {type(self).__name__}; "
            f"valid parts: {self.boundary_parts}"
        )

    @property
    def _scale(self) -> float:
        lo, hi = self._bounds()
        return max(1.0, max(abs(v) for v in lo + hi))

    @property
    def _slack(self) -> float:
        return 32 * float(jnp.finfo(float_dtype()).eps) * self._scale

    @property
    def _diameter(self) -> float:
        lo, hi = self._bounds()
        return math.dist(lo, hi)

    def bbox(self):
        """(lower, upper) corners of the bounding box, each of shape (dim,)."""
        lo, hi = self._bounds()
        return jnp.asarray(lo, float_dtype()), jnp.asarray(hi, float_dtype())

    def contains(self, x):
        """Whether the point x (shape (dim,)) is in the closed domain."""
        return self._contains(jnp.asarray(x), self._slack)

    def _on_boundary(self, x, tol: float):
        """Generic boundary test: inside the grown set, outside the shrunk one."""
        t = tol * self._scale
        return self._contains(x, t) & ~self._contains(x, -t)

    def on_part(self, x, part=None, tol: float = 1e-6):
        """Whether x lies on boundary part `part` (None: whole boundary)."""
        return self._on_part(jnp.asarray(x), self._canon_part(part), tol)

    def part_distance(self, x, part=None):
        """Unsigned approximate distance from x to boundary part `part` (None: the whole
        boundary): >= 0, zero exactly on that part, first-order normalised there. The
        building block of `pinnjax.exact_dirichlet`."""
        return self._part_distance(jnp.asarray(x), self._canon_part(part))

    def sample_interior(self, key, n: int, *, method: str = "uniform"):
        """`n` points in the interior, shape (n, dim)."""
        _check_sampling_args(n, method)
        return _sample_interior_jit(self, key, n, method)

    def sample_boundary(self, key, n: int, *, part=None, method: str = "uniform"):
        """`n` points on boundary part `part`, uniform w.r.t. boundary measure."""
        _check_sampling_args(n, method)
        return _sample_boundary_jit(self, key, n, method, self._canon_part(part))

    def __sub__(self, other):
        from ._csg import Difference

        return Difference(self, other)

    def __or__(self, other):
        from ._csg import Union

        return Union(self, other)

    def __and__(self, other):
        from ._csg import Intersection

        return Intersection(self, other)

    def __mul__(self, other):
        from ._interval import TimeInterval
        from ._spacetime import SpaceTime

        if isinstance(other, TimeInterval):
            return SpaceTime(self, other)
        return NotImplemented
