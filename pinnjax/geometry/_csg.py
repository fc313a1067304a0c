"""Constructive solid geometry: `Difference`, `Union`, `Intersection`.

Implementation notes
--------------------
A CSG tree is flattened to its primitive "leaves". The boundary of the result
R is contained in the union of the leaves' boundaries, so boundary points are
proposed from the leaves (each source weighted by its exact measure) and a
proposal p on leaf L with normal n is kept iff it lies on the boundary of R,
tested by a probe across L's surface:

    contains_R(p + delta n) != contains_R(p - delta n).

This handles holes, notches and shared faces (two boxes side by side: both
probes are inside R, so the shared face is dropped) without special cases.
Where the surfaces of two sources coincide and both pass, only the earlier
source keeps the point, so the measure is not counted twice. Probes misjudge only points
within ~delta (1e-4 of the diameter) of another surface.

Interior points are drawn by rejection from the result's bounding box. The
acceptance rates of the interior (at construction) and of each boundary part
(on first use, cached) are estimated with a fixed key and 4096 points; they
set the static oversampling and give the estimates returned by `volume` and
`boundary_measure`. An interior estimate of zero raises ValueError
("empty interior").

`distance` combines the operands' signed distances with R0 functions (`_rfunctions.py`):
Difference `a ^ -b`, Union `a v b`, Intersection `a ^ b`. `part_distance` of a part is the
R0 conjunction of the (unsigned) distances of the operand parts it means; in a Union each is
trimmed by the other operand (`trim(piece, -other.distance)`), since an operand's surface
inside the other operand is interior to the union.
"""

from __future__ import annotations

import abc
import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._base import AbstractDomain, check_names, float_dtype
from ._rfunctions import conjunction, conjunction_all, disjunction, harmonic_conjunction_all, trim

_N_ESTIMATE = 4096  # points used for acceptance-rate estimates


def _leaves(domain) -> tuple[AbstractDomain, ...]:
    if isinstance(domain, AbstractCSG):
        return _leaves(domain.a) + _leaves(domain.b)
    return (domain,)


def _base_parts(domain) -> tuple[str, ...]:
    """Leaf-level part names, merged (deduplicated) through the CSG tree."""
    if isinstance(domain, AbstractCSG):
        names = _base_parts(domain.a) + _base_parts(domain.b)
        return tuple(dict.fromkeys(names))
    return domain._own_parts


def _sources(domain, part: str) -> tuple[tuple[int, str], ...]:
    """Resolve a canonical part to (leaf index, leaf part) pairs."""
    if not isinstance(domain, AbstractCSG):
        return ((0, part),)
    a, b = domain.a, domain.b
    offset = len(_leaves(a))

    def from_b(srcs):
        return tuple((i + offset, p) for i, p in srcs)

    la, lb = domain.labels
    if part == "boundary":
        return _sources(a, "boundary") + from_b(_sources(b, "boundary"))
    if part == la:
        return _sources(a, "boundary")
    if part == lb:
        return from_b(_sources(b, "boundary"))
    if part.startswith(la + "."):
        return _sources(a, a._canon_part(part[len(la) + 1 :]))
    if part.startswith(lb + "."):
        return from_b(_sources(b, b._canon_part(part[len(lb) + 1 :])))
    out = ()
    if part in _base_parts(a):
        out += _sources(a, a._canon_part(part))
    if part in _base_parts(b):
        out += from_b(_sources(b, b._canon_part(part)))
    return out


class AbstractCSG(AbstractDomain):
    """Boolean combination of two domains `a` and `b` of the same dimension.

    Boundary part names (all listed in `boundary_parts`):
      - every leaf-level part name of a or b (e.g. "x_min", "sphere"); a name
        used by both operands (e.g. "sphere" in a union of disks) means all
        of them;
      - the operand labels (default "a" and "b"; set with `labels=`, e.g.
        `Difference(square, holes, labels=("outer", "inner"))`): the part
        of the result's boundary coming from that operand;
      - "<label>.<part>" for each part of that operand, to pick one operand's
        part when names collide (e.g. "inner.a.sphere").
    Every part means only the points that are on the boundary of the result.
    `normal` points out of the result (for a hole: into the hole).
    """

    a: AbstractDomain
    b: AbstractDomain
    labels: tuple[str, str] = eqx.field(static=True)
    coord_names: tuple[str, ...] = eqx.field(static=True)
    _lo: tuple[float, ...] = eqx.field(static=True)
    _hi: tuple[float, ...] = eqx.field(static=True)

    def __init__(self, a, b, *, labels=("a", "b"), names=None):
        from ._interval import TimeInterval
        from ._spacetime import SpaceTime

        cls = type(self).__name__
        for operand in (a, b):
            if not isinstance(operand, AbstractDomain):
                raise TypeError(f"{cls} operands must be domains, got {type(operand).__name__}")
            if isinstance(operand, (SpaceTime, TimeInterval)):
                raise TypeError(
                    f"{cls} combines spatial domains; build the space first, then `space * TimeInterval`"
                )
        if a.dim != b.dim:
            raise ValueError(f"{cls} operands must have the same dim, got {a.dim} and {b.dim}")
        labels = tuple(labels)
        if (
            len(labels) != 2
            or labels[0] == labels[1]
            or not all(isinstance(s, str) and s and "." not in s for s in labels)
            or "boundary" in labels
        ):
            raise ValueError(f"labels must be two distinct non-empty names without '.', got {labels!r}")
        self.a, self.b, self.labels = a, b, labels
        clash = set(labels) & set(_base_parts(self))
        if clash:
            raise ValueError(f"{cls} labels {sorted(clash)} clash with boundary part names")
        self.coord_names = check_names(names, a.dim, default=a.coord_names)
        lo, hi = self._proposal_box()
        if not all(l < h for l, h in zip(lo, hi)):
            raise ValueError(f"{cls} has an empty interior (bounding boxes do not overlap)")
        self._lo, self._hi = lo, hi

    @abc.abstractmethod
    def _proposal_box(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """A box containing the result."""

    @property
    def _rate(self) -> float:
        """Fraction of the bounding box inside the result, estimated on first use (not at
        construction, so that defining a domain, e.g. importing a problem, starts no JAX
        backend). A domain is static data, so the estimate is cached per domain."""
        return _interior_rate(self, jnp.dtype(float_dtype()).name)

    @property
    def _delta(self) -> float:
        """Probe step: small relative to the domain, large relative to rounding."""
        return max(1e-4 * self._diameter, 100 * float(jnp.finfo(float_dtype()).eps) * self._scale)

    def _probe(self, x, leaf):
        """Whether x (on `leaf`'s boundary) is on the boundary of the result."""
        n = leaf.normal(x)
        return self.contains(x + self._delta * n) != self.contains(x - self._delta * n)

    @property
    def dim(self) -> int:
        return self.a.dim

    def _bounds(self):
        return self._lo, self._hi

    @property
    def _own_parts(self):
        la, lb = self.labels
        prefixed = tuple(f"{la}.{p}" for p in self.a._own_parts)
        prefixed += tuple(f"{lb}.{p}" for p in self.b._own_parts)
        return _base_parts(self) + self.labels + prefixed

    def _part_aliases(self):
        return {}

    def _on_part(self, x, part, tol):
        leaves = _leaves(self)
        hits = [leaves[i]._on_part(x, p, tol) & self._probe(x, leaves[i]) for i, p in _sources(self, part)]
        return jnp.any(jnp.stack(hits))

    def normal(self, x):
        x = jnp.asarray(x)
        leaves = _leaves(self)
        # Normal of the first leaf whose surface through x bounds the result,
        # flipped to point out of the result (e.g. into a hole).
        on = jnp.stack([leaf._on_part(x, "boundary", 1e-5) & self._probe(x, leaf) for leaf in leaves])
        normals = jnp.stack([leaf.normal(x) for leaf in leaves])
        n = normals[jnp.argmax(on)]
        return jnp.where(self.contains(x + self._delta * n), -n, n)

    @abc.abstractmethod
    def _combine(self, a, b):
        """The R-function of this operation on the operands' signed distances."""

    def distance(self, x):
        """R-function of the operands' signed distances (`_rfunctions.py`)."""
        x = jnp.asarray(x)
        return self._combine(self.a.distance(x), self.b.distance(x))

    def _part_distance(self, x, part):
        return self._operand_part_distance(x, part, None)

    def _part_distance_within(self, x, part):
        """As `_part_distance`, for ``x`` inside the result: each operand gives its distance for
        the side of it the result lies on (`_operand_sides`), e.g. a Box's smooth product for
        the square of a square with holes, a Ball's Euclidean distance for a hole."""
        return self._operand_part_distance(x, part, "within")

    def _part_distance_without(self, x, part):
        return self._operand_part_distance(x, part, "without")

    def _operand_sides(self, side):
        """On which side of operands a and b a point on `side` of the result lies ("within",
        "without"; None where that is not known)."""
        del side
        return None, None

    def _operand_part_distance(self, x, part, side):
        sides = self._operand_sides(side)
        by_side = {None: "_part_distance", "within": "_part_distance_within", "without": "_part_distance_without"}
        if part == "boundary":
            if None in sides:
                return jnp.abs(self.distance(x))
            # on this side the result's boundary is the nearer of the operands' boundaries
            return harmonic_conjunction_all([getattr(op, by_side[s])(x, "boundary") for op, s in zip((self.a, self.b), sides)])
        # The operand parts this name means, as in `_sources`.
        la, lb = self.labels
        pieces = []
        for op, label, other, op_side in zip((self.a, self.b), (la, lb), (self.b, self.a), sides):
            if part == label:
                sub = "boundary"
            elif part.startswith(label + "."):
                sub = op._canon_part(part[len(label) + 1 :])
            elif part in _base_parts(op) and part not in (la, lb):
                sub = op._canon_part(part)
            else:
                continue
            pieces.append(self._trimmed(getattr(op, by_side[op_side])(x, sub), other.distance(x)))
        # Zero where any piece is zero (both conjunctions of unsigned values stay >= 0); the
        # hard-constraint sides take the smooth harmonic one (`_rfunctions.py`).
        return conjunction_all(pieces) if side is None else harmonic_conjunction_all(pieces)

    def _trimmed(self, piece, other_distance):
        """An operand's part distance, cut to where that part bounds the result: only a union
        needs it (an operand's surface inside the other operand is interior to the union)."""
        del other_distance
        return piece

    def volume(self) -> float:
        """Estimate: bounding-box volume times the estimated acceptance rate."""
        return self._rate * math.prod(h - l for l, h in zip(self._lo, self._hi))

    def _weights(self, part):
        """Sources of a canonical part and their exact (leaf) measures."""
        leaves = _leaves(self)
        srcs = _sources(self, part)
        return srcs, [leaves[i].boundary_measure(p) for i, p in srcs]

    def boundary_measure(self, part=None) -> float:
        """Estimate of the measure of a part of the result's boundary."""
        part = self._canon_part(part)
        return _boundary_acceptance(self, part) * sum(self._weights(part)[1])

    def _interior_spec(self):
        return self.dim, self._rate

    def _interior_map(self, u):
        lo = jnp.asarray(self._lo, u.dtype)
        hi = jnp.asarray(self._hi, u.dtype)
        points = lo[None, :] + u * (hi - lo)[None, :]
        return points, jax.vmap(self.contains)(points)

    def _boundary_unit_dim(self, part) -> int:
        leaves = _leaves(self)
        return 1 + max(leaves[i]._boundary_spec(p)[0] for i, p in _sources(self, part))

    def _boundary_spec(self, part):
        rate = _boundary_acceptance(self, part)
        if rate == 0.0:
            raise ValueError(
                f"boundary part {part!r} of {type(self).__name__} is (almost) empty: "
                f"none of {_N_ESTIMATE} test points lies on the boundary of the result"
            )
        return self._boundary_unit_dim(part), rate

    def _boundary_map(self, u, part):
        leaves = _leaves(self)
        srcs, weights = self._weights(part)
        # u0 picks a source with probability proportional to its measure.
        cum = jnp.asarray(np.cumsum(weights) / np.sum(weights), u.dtype)
        choice = jnp.minimum(jnp.searchsorted(cum, u[:, 0], side="right"), len(srcs) - 1)
        all_points, all_valid = [], []
        for j, (i, p) in enumerate(srcs):
            leaf = leaves[i]
            unit_dim, _ = leaf._boundary_spec(p)
            points, valid = leaf._boundary_map(u[:, 1 : 1 + unit_dim], p)
            valid = valid & jax.vmap(lambda x: self._probe(x, leaf))(points)
            # Coincident surfaces: the earlier source owns the point.
            for i2, p2 in srcs[:j]:
                if i2 != i:
                    valid = valid & ~jax.vmap(leaves[i2]._on_part, (0, None, None))(points, p2, 1e-5)
            all_points.append(points)
            all_valid.append(valid)
        rows = jnp.arange(u.shape[0])
        return jnp.stack(all_points)[choice, rows], jnp.stack(all_valid)[choice, rows]


@functools.lru_cache(maxsize=1024)
def _boundary_acceptance(domain: AbstractCSG, part: str) -> float:
    """Fraction of boundary proposals of `part` that are kept (fixed key).

    Computed once per (domain, part), eagerly even when called during a jit
    trace, with exactly the proposal used for sampling.
    """
    unit_dim = domain._boundary_unit_dim(part)

    @jax.jit  # one compiled program is much cheaper than op-by-op dispatch here
    def kept_fraction(key):
        u = jax.random.uniform(key, (_N_ESTIMATE, unit_dim), float_dtype())
        return jnp.mean(domain._boundary_map(u, part)[1])

    with jax.ensure_compile_time_eval():
        return float(kept_fraction(jax.random.PRNGKey(1)))


class Difference(AbstractCSG):
    """`a - b`: points of a not in the interior of b. See `AbstractCSG` for part names."""

    def _proposal_box(self):
        return self.a._bounds()

    def _contains(self, x, slack):
        return self.a._contains(x, slack) & ~self.b._contains(x, -slack)

    def _combine(self, a, b):
        return conjunction(a, -b)  # A minus B = A and (not B)

    def _operand_sides(self, side):
        # inside a - b is inside a and outside b; outside it nothing is known
        return ("within", "without") if side == "within" else (None, None)


class Union(AbstractCSG):
    """`a | b`: points in a or b. See `AbstractCSG` for part names."""

    def _proposal_box(self):
        (la, ha), (lb, hb) = self.a._bounds(), self.b._bounds()
        return tuple(map(min, la, lb)), tuple(map(max, ha, hb))

    def _contains(self, x, slack):
        return self.a._contains(x, slack) | self.b._contains(x, slack)

    def _combine(self, a, b):
        return disjunction(a, b)

    def _operand_sides(self, side):
        # outside a | b is outside both; inside it, either
        return ("without", "without") if side == "without" else (None, None)

    def _trimmed(self, piece, other_distance):
        return trim(piece, -other_distance)  # keep the piece outside the other operand


class Intersection(AbstractCSG):
    """`a & b`: points in both a and b. See `AbstractCSG` for part names."""

    def _proposal_box(self):
        (la, ha), (lb, hb) = self.a._bounds(), self.b._bounds()
        return tuple(map(max, la, lb)), tuple(map(min, ha, hb))

    def _contains(self, x, slack):
        return self.a._contains(x, slack) & self.b._contains(x, slack)

    def _combine(self, a, b):
        return conjunction(a, b)

    def _operand_sides(self, side):
        return ("within", "within") if side == "within" else (None, None)


@functools.lru_cache(maxsize=256)
def _interior_rate(domain: AbstractCSG, dtype: str) -> float:
    # Deterministic (fixed key); runs eagerly even when traced under jit.
    with jax.ensure_compile_time_eval():
        u = jax.random.uniform(jax.random.PRNGKey(0), (_N_ESTIMATE, domain.dim), dtype)
        rate = float(jnp.mean(domain._interior_map(u)[1]))
    if rate == 0.0:
        raise ValueError(
            f"{type(domain).__name__} has an empty interior: none of {_N_ESTIMATE} test points "
            "of the bounding box is inside"
        )
    return rate
