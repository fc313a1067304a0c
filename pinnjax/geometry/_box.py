"""Axis-aligned boxes in any dimension."""

from __future__ import annotations

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._base import AbstractDomain, as_float_tuple, check_names, float_dtype
from ._rfunctions import conjunction_all, slab, trim

# The most dimensions in which a Box's hard-constraint distance is its product of slabs
# (`Box._part_distance_within`); above it the product is too flat to be a useful distance.
SMOOTH_PRODUCT_MAX_DIM = 3


class Box(AbstractDomain):
    """The closed box [lower_0, upper_0] x ... x [lower_{d-1}, upper_{d-1}].

    Boundary parts: "<name>_min" and "<name>_max" for each coordinate name
    (default "x_min", "x_max", "y_min", ...); in 1-D "left"/"right" are
    accepted as aliases. `distance(x)` is the R0 conjunction (`_rfunctions.py`) of the
    slabs `(x_k - a_k)(b_k - x_k) / L_k`: signed, 0 on every face, slope 1 across a face
    away from its edges. A face's `part_distance` is the plane's distance trimmed to the face.
    """

    lower: tuple[float, ...] = eqx.field(static=True)
    upper: tuple[float, ...] = eqx.field(static=True)
    coord_names: tuple[str, ...] = eqx.field(static=True)

    def __init__(self, lower, upper, *, names=None):
        lower = as_float_tuple(lower, "Box lower")
        upper = as_float_tuple(upper, "Box upper")
        if len(lower) != len(upper):
            raise ValueError(
                f"Box lower and upper must have the same length, got {len(lower)} and {len(upper)}"
            )
        for k, (a, b) in enumerate(zip(lower, upper)):
            if not a < b:
                raise ValueError(
                    f"Box has an empty interior: need lower < upper in every dimension, "
                    f"got lower[{k}]={a} >= upper[{k}]={b}"
                )
        self.lower, self.upper = lower, upper
        self.coord_names = check_names(names, len(lower))

    @property
    def dim(self) -> int:
        return len(self.lower)

    @property
    def _lengths(self) -> tuple[float, ...]:
        return tuple(b - a for a, b in zip(self.lower, self.upper))

    @property
    def _face_areas(self) -> tuple[float, ...]:
        """Area of one face perpendicular to each axis (1 in 1-D)."""
        lengths = self._lengths
        return tuple(math.prod(lengths[:k] + lengths[k + 1 :]) for k in range(self.dim))

    def _bounds(self):
        return self.lower, self.upper

    def _contains(self, x, slack):
        lo, hi = self.bbox()
        return jnp.all((x >= lo - slack) & (x <= hi + slack))

    @property
    def _own_parts(self):
        return tuple(f"{name}_{side}" for name in self.coord_names for side in ("min", "max"))

    def _part_aliases(self):
        return {"left": self._own_parts[0], "right": self._own_parts[1]} if self.dim == 1 else {}

    def _face(self, part) -> tuple[int, int]:
        """(axis, side) of a face part; side 0 = lower, 1 = upper."""
        return divmod(self._own_parts.index(part), 2)

    def _on_part(self, x, part, tol):
        if part == "boundary":
            return self._on_boundary(x, tol)
        t = tol * self._scale
        axis, side = self._face(part)
        value = (self.lower, self.upper)[side][axis]
        return (jnp.abs(x[axis] - value) <= t) & self._contains(x, t)

    def normal(self, x):
        x = jnp.asarray(x)
        lo, hi = self.bbox()
        # Nearest face among the 2*dim faces, ordered (axis 0 min, axis 0 max, ...).
        gaps = jnp.abs(jnp.stack([x - lo, hi - x], axis=1).reshape(-1))
        axis, side = jnp.divmod(jnp.argmin(gaps), 2)
        return jax.nn.one_hot(axis, self.dim, dtype=float_dtype()) * (2.0 * side - 1.0)

    def _slabs(self, x, axes):
        return [slab(x[k], self.lower[k], self.upper[k]) for k in axes]

    def distance(self, x):
        return conjunction_all(self._slabs(jnp.asarray(x), range(self.dim)))

    def _part_distance(self, x, part):
        if part == "boundary":
            return jnp.abs(self.distance(x))
        axis, side = self._face(part)
        plane = x[axis] - (self.lower, self.upper)[side][axis]
        if self.dim == 1:
            return jnp.abs(plane)
        # The face is the part of the plane inside the other axes' slabs.
        return trim(plane, conjunction_all(self._slabs(x, [k for k in range(self.dim) if k != axis])))

    def _part_distance_within(self, x, part):
        """Inside the box, the whole boundary's distance as the product of the slabs,
        ``prod_k s_k * min_k(L_k / 4) / prod_k(L_k / 4)`` (each slab ``s_k`` peaks at ``L_k / 4``),
        for up to ``SMOOTH_PRODUCT_MAX_DIM`` dimensions. It is zero exactly on the faces and a
        polynomial (slope 1 across the faces of the shortest side, ``min_k L_k / L_j`` across
        the others), where the second derivatives of the R0 conjunction of the slabs grow like
        one over the distance to an edge (``sqrt(a^2 + b^2)`` in `_rfunctions.conjunction`).
        Outside the box it is also zero on the faces' extensions, so only a domain that lies
        inside this box may use it (the Box itself, a Difference's first operand, an
        Intersection's operands). In many dimensions the product collapses (about ``(2/3)^d``
        of its peak at a typical point), so there the R0 distance stays."""
        if part != "boundary" or self.dim > SMOOTH_PRODUCT_MAX_DIM:
            return self._part_distance(x, part)
        quarters = [length / 4 for length in self._lengths]
        product = functools.reduce(jnp.multiply, self._slabs(jnp.asarray(x), range(self.dim)))
        return jnp.abs(product) * (min(quarters) / math.prod(quarters))

    def volume(self) -> float:
        return math.prod(self._lengths)

    def boundary_measure(self, part=None) -> float:
        part = self._canon_part(part)
        if part == "boundary":
            return 2.0 * sum(self._face_areas)
        return self._face_areas[self._face(part)[0]]

    def _interior_spec(self):
        return self.dim, 1.0

    def _interior_map(self, u):
        lo, hi = self.bbox()
        return lo[None, :] + u * (hi - lo)[None, :], jnp.ones(u.shape[:1], bool)

    def _boundary_spec(self, part):
        # "boundary": one coordinate picks the face, dim-1 fill it.
        # A single face needs only its dim-1 free coordinates.
        return (self.dim, 1.0) if part == "boundary" else (max(self.dim - 1, 1), 1.0)

    def _boundary_map(self, u, part):
        lo, hi = self.bbox()
        m, d = u.shape[0], self.dim
        if part == "boundary":
            # Pick one of the 2d faces with probability proportional to its area.
            weights = np.repeat(np.asarray(self._face_areas), 2)
            cum = jnp.asarray(np.cumsum(weights) / weights.sum(), u.dtype)
            face = jnp.minimum(jnp.searchsorted(cum, u[:, 0], side="right"), 2 * d - 1)
            axis, side = face // 2, face % 2
            free = u[:, 1:]
        else:
            a, s = self._face(part)
            axis, side = jnp.full((m,), a), jnp.full((m,), s)
            free = u[:, : d - 1]
        # Coordinate j != axis takes free column j - (j > axis).
        j = jnp.arange(d)[None, :]
        col = jnp.clip(j - (j > axis[:, None]), 0, max(d - 2, 0))
        if d == 1:
            inner = jnp.zeros((m, 1), u.dtype)
        else:
            inner = jnp.take_along_axis(free, col, axis=1)
        points = lo[None, :] + inner * (hi - lo)[None, :]
        face_value = jnp.where(side == 1, hi[axis], lo[axis])
        points = jnp.where(j == axis[:, None], face_value[:, None], points)
        return points, jnp.ones((m,), bool)
