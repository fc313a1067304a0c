"""R-functions (Rvachev): Boolean operations on approximate distance functions.

Every domain's `distance(x)` is a *signed, first-order normalised* approximate distance:
positive inside, zero exactly on the boundary, negative outside, with |grad distance| = 1 on
the boundary away from corners (Sukumar & Srivastava, "Exact imposition of boundary
conditions with distance functions in physics-informed deep neural networks", CMAME 389,
2022). CSG domains combine their operands' distances with the R0 system below,
which keeps all three properties (an R-function's sign depends only on its arguments' signs,
and on the zero set of one argument its gradient is that argument's gradient).

A part's distance (`part_distance`) is *unsigned*: >= 0 everywhere and zero exactly on that
part, so that parts can be trimmed and combined without caring which side is inside.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp


def conjunction(a, b):
    """R0 conjunction ``a ^ b = a + b - sqrt(a^2 + b^2)``: positive iff both are, zero where
    one is zero and the other >= 0 (the intersection of the regions ``a >= 0``, ``b >= 0``)."""
    return a + b - jnp.sqrt(a * a + b * b)


def disjunction(a, b):
    """R0 disjunction ``a v b = a + b + sqrt(a^2 + b^2)``: positive iff one is (the union)."""
    return a + b + jnp.sqrt(a * a + b * b)


def conjunction_all(values):
    """``v_0 ^ v_1 ^ ...`` folded left; for unsigned part distances: zero where any is zero."""
    out = values[0]
    for v in values[1:]:
        out = conjunction(out, v)
    return out


def harmonic_conjunction_all(values):
    """``1 / sum_i (1 / v_i)`` for unsigned distances ``v_i >= 0``, written
    ``prod_i v_i / sum_k prod_{j != k} v_j`` so that it is zero (not 0 / 0) where any is zero:
    zero exactly where one is, equal to ``v_i`` to first order near where only ``v_i`` is, and
    smooth wherever the sum is positive. The R0 conjunction's second derivatives grow like
    ``1 / sqrt(a^2 + b^2)`` where two distances are small together (a narrow gap between two
    parts), which a hard constraint's ``D`` carries into the residual; this one's stay of the
    order of the parts' own (Sukumar & Srivastava 2022 combine distances the same way in their
    transfinite weights). What the hard-constraint distances (`_part_distance_within`) use."""
    if len(values) == 1:
        return values[0]
    others = [_product(values[:i] + values[i + 1 :]) for i in range(len(values))]
    denom = functools.reduce(jnp.add, others)
    safe = jnp.where(denom > 0, denom, 1.0)  # no 0 / 0 in the untaken branch's derivatives
    return jnp.where(denom > 0, _product(values) / safe, 0.0)


def _product(values):
    return functools.reduce(jnp.multiply, values)


def slab(x, lo, hi):
    """``(x - lo)(hi - x) / (hi - lo)``: signed distance to the slab ``lo <= x <= hi``,
    normalised (slope 1 at both ends)."""
    return (x - lo) * (hi - x) / (hi - lo)


def trim(f, t):
    """Unsigned distance to the piece ``{f = 0, t >= 0}`` of the surface ``f = 0``
    (Sukumar & Srivastava's trimmed line segment, here for any surface and trimming function):
    ``sqrt(f^2 + ((sqrt(t^2 + f^4) - t) / 2)^2)``. Where ``f = 0`` it is ``(|t| - t) / 2``:
    zero on the piece, ``|t|`` beyond it; near the piece it is ``|f|`` to first order."""
    f2 = f * f
    lift = 0.5 * (jnp.sqrt(t * t + f2 * f2) - t)
    return jnp.sqrt(f2 + lift * lift)
