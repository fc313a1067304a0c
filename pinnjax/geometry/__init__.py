"""Geometry: domains, boundary parts, normals and (quasi-)random sampling.

Domains are `equinox.Module`s holding only static data. Point-wise methods
take one point of shape (dim,) (use `jax.vmap` for batches); sampling methods
are pure functions of a PRNG key with static output shape, usable in `jax.jit`.

    square = Box([-0.5, -0.5], [0.5, 0.5])
    holes = Ball([0.3, 0.3], 0.1) | Ball([-0.3, 0.3], 0.1) | ...
    domain = Difference(square, holes, labels=("outer", "inner"))
    x = domain.sample_interior(key, 1000, method="sobol")
    xb = domain.sample_boundary(key, 200, part="inner")
    st = domain * TimeInterval(0.0, 1.0)   # points (x, y, t)
"""

from ._base import AbstractDomain
from ._ball import Ball
from ._box import Box
from ._csg import AbstractCSG, Difference, Intersection, Union
from ._interval import Interval, TimeInterval
from ._polygon import Polygon
from ._qmc import MAX_SOBOL_DIM, unit_samples
from ._spacetime import SpaceTime

__all__ = [
    "AbstractCSG",
    "AbstractDomain",
    "Ball",
    "Box",
    "Difference",
    "Intersection",
    "Interval",
    "MAX_SOBOL_DIM",
    "Polygon",
    "SpaceTime",
    "TimeInterval",
    "Union",
    "unit_samples",
]
