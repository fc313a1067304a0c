"""Simple polygons in 2-D."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._base import AbstractDomain, check_names
from ._rfunctions import conjunction_all, trim


def _segments_intersect(p1, p2, q1, q2) -> bool:
    """Whether closed segments p1p2 and q1q2 share a point (exact-ish, float64)."""

    def orient(a, b, c):
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    def on_segment(a, b, c):  # c collinear with ab: is it between a and b?
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(
            a[1], b[1]
        )

    d1, d2 = orient(q1, q2, p1), orient(q1, q2, p2)
    d3, d4 = orient(p1, p2, q1), orient(p1, p2, q2)
    if ((d1 > 0) != (d2 > 0)) and d1 != 0 and d2 != 0 and ((d3 > 0) != (d4 > 0)) and d3 != 0 and d4 != 0:
        return True
    return (
        (d1 == 0 and on_segment(q1, q2, p1))
        or (d2 == 0 and on_segment(q1, q2, p2))
        or (d3 == 0 and on_segment(p1, p2, q1))
        or (d4 == 0 and on_segment(p1, p2, q2))
    )


class Polygon(AbstractDomain):
    """A closed simple polygon given by its vertices (clockwise or counterclockwise).

    Boundary parts: "edge0", ..., "edge{k-1}", where edge i joins vertex i to
    vertex i+1 (mod k) in the order given ("edges" is an alias of "boundary").
    `distance` is the R0 conjunction of the edges' trimmed distances, signed by membership:
    first-order normalised on the edges away from the vertices, smooth inside and outside,
    only continuous across the boundary (enough for `u = g + D * network` inside).
    """

    vertices: tuple[tuple[float, float], ...] = eqx.field(static=True)
    coord_names: tuple[str, ...] = eqx.field(static=True)
    _orientation: float = eqx.field(static=True)  # +1 counterclockwise, -1 clockwise
    _area: float = eqx.field(static=True)

    def __init__(self, vertices, *, names=None):
        v = np.asarray(vertices, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != 2:
            raise ValueError(f"Polygon vertices must have shape (k, 2), got {v.shape}")
        k = v.shape[0]
        if k < 3:
            raise ValueError(f"Polygon needs at least 3 vertices, got {k}")
        if not np.all(np.isfinite(v)):
            raise ValueError("Polygon vertices must be finite")
        w = np.roll(v, -1, axis=0)
        for i in range(k):
            if np.all(v[i] == w[i]):
                raise ValueError(f"Polygon edge{i} has zero length (repeated vertex {i})")
        # Shoelace formula.
        signed_area = 0.5 * float(np.sum(v[:, 0] * w[:, 1] - w[:, 0] * v[:, 1]))
        extent = float(np.prod(v.max(0) - v.min(0)))
        if abs(signed_area) <= 1e-12 * max(extent, 1e-300):
            raise ValueError("Polygon has an empty interior: its area is zero")
        for i in range(k):
            for j in range(i + 1, k):
                if j == i + 1 or (i == 0 and j == k - 1):
                    continue  # adjacent edges share a vertex
                if _segments_intersect(v[i], w[i], v[j], w[j]):
                    raise ValueError(
                        f"Polygon is not simple: edge{i} and edge{j} intersect"
                    )
        self.vertices = tuple((float(a), float(b)) for a, b in v)
        self.coord_names = check_names(names, 2)
        self._orientation = 1.0 if signed_area > 0 else -1.0
        self._area = abs(signed_area)

    @property
    def dim(self) -> int:
        return 2

    def _edges(self, dtype):
        """Edge start points p (k, 2) and edge vectors e (k, 2)."""
        p = jnp.asarray(self.vertices, dtype)
        return p, jnp.roll(p, -1, axis=0) - p

    @property
    def _lengths(self) -> np.ndarray:
        v = np.asarray(self.vertices)
        return np.linalg.norm(np.roll(v, -1, axis=0) - v, axis=1)

    def _bounds(self):
        v = np.asarray(self.vertices)
        return tuple(float(a) for a in v.min(0)), tuple(float(b) for b in v.max(0))

    def _edge_distances(self, x):
        """Distance from x to every edge, shape (k,)."""
        p, e = self._edges(x.dtype)
        s = jnp.clip(jnp.sum((x[None, :] - p) * e, axis=1) / jnp.sum(e * e, axis=1), 0.0, 1.0)
        return jnp.linalg.norm(x[None, :] - (p + s[:, None] * e), axis=1)

    def _inside(self, x):
        # Even-odd rule: count edges crossed by the ray from x towards +x.
        p, e = self._edges(x.dtype)
        y0, y1 = p[:, 1], p[:, 1] + e[:, 1]
        straddles = (y0 > x[1]) != (y1 > x[1])
        dy = jnp.where(straddles, e[:, 1], 1.0)
        x_cross = p[:, 0] + (x[1] - y0) * e[:, 0] / dy
        return jnp.sum(straddles & (x[0] < x_cross)) % 2 == 1

    def _contains(self, x, slack):
        near = jnp.min(self._edge_distances(x)) <= abs(slack)
        if slack >= 0:
            return self._inside(x) | near
        return self._inside(x) & ~near

    @property
    def _own_parts(self):
        return tuple(f"edge{i}" for i in range(len(self.vertices)))

    def _part_aliases(self):
        return {"edges": "boundary"}

    def _on_part(self, x, part, tol):
        d = self._edge_distances(x)
        if part != "boundary":
            d = d[self._own_parts.index(part)]
        return jnp.min(d) <= tol * self._scale

    def normal(self, x):
        x = jnp.asarray(x)
        _, e = self._edges(x.dtype)
        e = e[jnp.argmin(self._edge_distances(x))]
        # Rotating a counterclockwise edge by -90 degrees points outward.
        n = self._orientation * jnp.stack([e[1], -e[0]])
        return n / jnp.linalg.norm(n)

    def _segment_distances(self, x):
        """Unsigned approximate distance to every edge, shape (k,): the signed distance to
        the edge's line, trimmed (`_rfunctions.trim`) by the disk whose diameter is the edge,
        `t = ((L/2)^2 - |x - midpoint|^2) / L` (Sukumar & Srivastava's segment)."""
        p, e = self._edges(x.dtype)
        length = jnp.linalg.norm(e, axis=1)
        rel = x[None, :] - p
        line = self._orientation * (e[:, 0] * rel[:, 1] - e[:, 1] * rel[:, 0]) / length
        to_mid = rel - 0.5 * e
        t = (0.25 * length * length - jnp.sum(to_mid * to_mid, axis=1)) / length
        return trim(line, t)

    def distance(self, x):
        x = jnp.asarray(x)
        segments = self._segment_distances(x)
        unsigned = conjunction_all([segments[i] for i in range(segments.shape[0])])
        # Signed by membership: smooth on each side, continuous (zero) across the boundary.
        return jnp.where(self._inside(x), unsigned, -unsigned)

    def _part_distance(self, x, part):
        if part == "boundary":
            return jnp.abs(self.distance(x))
        return self._segment_distances(x)[self._own_parts.index(part)]

    def volume(self) -> float:
        return self._area

    def boundary_measure(self, part=None) -> float:
        part = self._canon_part(part)
        if part == "boundary":
            return float(self._lengths.sum())
        return float(self._lengths[self._own_parts.index(part)])

    def _interior_spec(self):
        # Rejection from the bounding box; acceptance = area / box area.
        lo, hi = self._bounds()
        return 2, self._area / ((hi[0] - lo[0]) * (hi[1] - lo[1]))

    def _interior_map(self, u):
        lo, hi = self.bbox()
        points = (lo[None, :] + u * (hi - lo)[None, :]).astype(u.dtype)
        return points, jax.vmap(self._inside)(points)

    def _boundary_spec(self, part):
        return 1, 1.0

    def _boundary_map(self, u, part):
        p, e = self._edges(u.dtype)
        lengths = self._lengths
        if part == "boundary":
            # Arc-length parametrisation of the whole perimeter by u0.
            cum = np.concatenate([[0.0], np.cumsum(lengths)])
            s = u[:, 0] * cum[-1]
            i = jnp.clip(jnp.searchsorted(jnp.asarray(cum[1:-1], u.dtype), s, side="right"), 0, len(lengths) - 1)
            frac = jnp.clip((s - jnp.asarray(cum[:-1], u.dtype)[i]) / jnp.asarray(lengths, u.dtype)[i], 0.0, 1.0)
        else:
            i = jnp.full(u.shape[:1], self._own_parts.index(part))
            frac = u[:, 0]
        return p[i] + frac[:, None] * e[i], jnp.ones(u.shape[:1], bool)
