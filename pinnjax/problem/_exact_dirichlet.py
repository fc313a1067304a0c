"""Exact Dirichlet conditions: ``u = g + D * network`` built from Dirichlet data per boundary
part, on any domain whose parts have distance functions (Interval, Box, Ball and their CSG
combinations; see ``pinnjax/geometry/_rfunctions.py``).

With part distances ``phi_1..phi_m`` (each >= 0, zero exactly on its part) and values
``g_1..g_m``, the transfinite interpolation (Rvachev; Sukumar & Srivastava, CMAME 2022)

    g = sum_i g_i w_i,   w_i = prod_{j != i} phi_j / sum_k prod_{j != k} phi_j

equals ``g_i`` on part ``i`` (there every other weight has the factor ``phi_i = 0``), and

    D = prod_j phi_j / sum_k prod_{j != k} phi_j = 1 / sum_i (1 / phi_i)

(the harmonic conjunction, `_rfunctions.harmonic_conjunction_all`) is zero on every part and
positive elsewhere in the domain. The distances are the domain's `_part_distance_within`:
valid inside the domain only, and smooth there (a box's product of slabs, a hole's Euclidean
distance). On Poisson 2d-C (a square with four holes, gaps of 0.1 between them and the
square) the R0 conjunction and quadratic disk distances of `part_distance` left a held-out
residual of 1.3e2 after 1,000 Adam + 300 ENGD steps; these smooth ones left 2.0e-2.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ..geometry._rfunctions import harmonic_conjunction_all
from ._conditions import Dirichlet, _value_at


def exact_dirichlet(domain, values: dict):
    """``x -> (g, D)`` for ``u = g + D * network`` with ``u = values[part]`` on each boundary
    part (None or "boundary": the whole boundary). A value is a number or a function of one
    point. As a problem's hard constraint::

        def constraint(self, x):
            return pj.exact_dirichlet(self.domain, {"outer": 1.0, "inner": 0.0})(x)

    Raises ValueError naming an unknown part or a part without a distance function."""
    if not values:
        raise ValueError("exact_dirichlet needs at least one boundary part and its value")
    parts = [domain._canon_part(part) for part in values]
    if len(set(parts)) != len(parts):
        raise ValueError(f"exact_dirichlet: a boundary part is given twice in {list(values)}")
    _check_distances(domain, tuple(parts))
    data = list(values.values())

    def constraint(x):
        phis = [domain._part_distance_within(x, part) for part in parts]
        gs = [_value_at(g, x) for g in data]
        return _transfinite(phis, gs), harmonic_conjunction_all(phis)

    return constraint


def _transfinite(phis, gs):
    """``sum_i g_i prod_{j != i} phi_j / sum_k prod_{j != k} phi_j`` (module docs). Where two
    parts meet (two phis zero, a corner on the boundary) the weights are 0 / 0: there the mean
    of those parts' values."""
    if len(phis) == 1:
        return gs[0]
    others = [functools.reduce(jnp.multiply, phis[:i] + phis[i + 1 :]) for i in range(len(phis))]
    denom = functools.reduce(jnp.add, others)
    numer = functools.reduce(jnp.add, [g * w for g, w in zip(gs, others)])
    on = [(phi == 0).astype(denom.dtype) for phi in phis]
    corner = functools.reduce(jnp.add, [g * z for g, z in zip(gs, on)]) / jnp.maximum(functools.reduce(jnp.add, on), 1.0)
    safe = jnp.where(denom > 0, denom, 1.0)  # no 0 / 0 in the untaken branch's derivatives
    return jnp.where(denom > 0, numer / safe, corner)


@functools.lru_cache(maxsize=256)
def _check_distances(domain, parts: tuple[str, ...]) -> None:
    """A part without a distance function is a ValueError naming it (traced abstractly)."""
    x = jax.ShapeDtypeStruct((domain.dim,), jnp.zeros(()).dtype)
    for part in parts:
        try:
            jax.eval_shape(lambda p, part=part: domain._part_distance_within(p, part), x)
        except NotImplementedError as exc:
            raise ValueError(
                f"boundary part {part!r} of {type(domain).__name__} has no distance function ({exc})"
            ) from None


# --- a problem's Dirichlet conditions as its hard constraint (model.hard_constraint) ---------


IMPOSE = ("all", "constant")  # which Dirichlet conditions a hard constraint imposes


def is_constant_data(value) -> bool:
    """Whether Dirichlet data is a number (not a function of x). Only such data can be imposed
    exactly without evaluating a function of ``x`` inside the domain: the transfinite ``g``
    evaluates each part's data away from the part, so data given as a closed-form solution (a manufactured problem's
    ``Dirichlet(self.exact)``) would hand the network the answer in the interior."""
    return value is not None and not callable(value)


def is_imposed(condition, impose: str) -> bool:
    """Whether a hard constraint that imposes `impose` ("all" | "constant") takes `condition`."""
    return isinstance(condition, Dirichlet) and (impose == "all" or is_constant_data(condition.value))


def dirichlet_values(problem, impose: str = "all") -> dict[str, dict]:
    """``{output: {part: value}}`` from a problem's Dirichlet conditions (its other conditions
    stay loss terms), all of them or (``impose="constant"``) those with constant data; an output
    without one is ``{}``. ValueError if there is none to impose, or two on one output and part."""
    out = {name: {} for name in problem.outputs}
    for c in problem.get_conditions():
        if not is_imposed(c, impose):
            continue
        part = problem.domain._canon_part(c.part)
        if part in out[c.output]:
            raise ValueError(f"two Dirichlet conditions of {type(problem).__name__} on output {c.output!r}, part {part!r}")
        out[c.output][part] = c.value
    if not any(out.values()):
        which = "Dirichlet condition" if impose == "all" else "Dirichlet condition with constant data"
        raise ValueError(f"{type(problem).__name__} has no {which} to impose exactly")
    return out


def _constraint_from_conditions(self, x):
    """``(g, D)`` per output from the problem's Dirichlet conditions (``exact_dirichlet``);
    ``(0, 1)`` (no constraint) for an output without one."""
    free = (jnp.zeros((), x.dtype), jnp.ones((), x.dtype))
    values = dirichlet_values(self, self._exact_dirichlet_constraint).values()
    pairs = [exact_dirichlet(self.domain, v)(x) if v else free for v in values]
    if len(pairs) == 1:
        return pairs[0]
    return jnp.stack([g for g, _ in pairs]), jnp.stack([d for _, d in pairs])


@functools.cache
def _exact_dirichlet_class(cls, impose: str):
    """``cls`` with ``constraint`` from its Dirichlet conditions; same name, fields and pytree
    layout, so checkpoints and configs are those of ``cls``."""
    namespace = {
        "constraint": _constraint_from_conditions,
        "_exact_dirichlet_constraint": impose,
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
    }
    return type(cls.__name__, (cls,), namespace)


def with_exact_dirichlet(problem, impose: str = "all"):
    """`problem` with its Dirichlet conditions imposed exactly: ``u = g + D * network`` with
    ``g``, ``D`` from ``exact_dirichlet`` on the conditions' parts. `impose`: ``"all"`` of them,
    or only those whose data are numbers (``"constant"``, `is_constant_data`; the others stay
    loss terms). The imposed terms are then exactly zero and the trainer drops them; every other
    condition (initial, Neumann, ...) stays a loss term. ValueError if there is no Dirichlet
    condition to impose, or one on a part without a distance function. What
    ``model.hard_constraint: true`` (``constant``) does for a problem that defines no
    ``constraint`` of its own."""
    if impose not in IMPOSE:
        raise ValueError(f"with_exact_dirichlet: impose must be one of {', '.join(IMPOSE)}, got {impose!r}")
    if is_exact_dirichlet(problem):
        return problem
    if problem.has_constraint:
        raise ValueError(f"{type(problem).__name__} defines its own constraint(self, x)")
    for values in dirichlet_values(problem, impose).values():
        if values:
            exact_dirichlet(problem.domain, values)  # parts exist and have distances
    out = object.__new__(_exact_dirichlet_class(type(problem), impose))
    for name, value in vars(problem).items():  # the instance's fields, as they are
        object.__setattr__(out, name, value)
    return out


def imposes_exactly(problem, condition) -> bool:
    """Whether `condition` of `problem` holds exactly by its hard constraint (from
    ``with_exact_dirichlet``), so that its loss term is zero and not trained."""
    impose = getattr(type(problem), "_exact_dirichlet_constraint", None)
    return impose is not None and is_imposed(condition, impose)


def is_exact_dirichlet(problem) -> bool:
    """Whether `problem` came from ``with_exact_dirichlet`` (its Dirichlet terms are zero)."""
    return getattr(type(problem), "_exact_dirichlet_constraint", None) is not None
