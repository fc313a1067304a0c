"""A PDE problem as data: a domain, a residual written for one point, conditions, and
optionally an exact solution or reference data, unknown coefficients and a hard constraint.

Fields marked ``unknown(...)`` (a coefficient, a grid of values, a field network) are trained
beside the solution network, which is how inverse problems are written. Every other array of
a problem is fixed data: part of the state the compiled step takes as an argument, never
trained and never baked into the compiled program."""

from __future__ import annotations

import abc
import functools

import equinox as eqx
import jax
import jax.numpy as jnp

from ..derivatives import (
    Estimator,
    Jet,
    Request,
    auto_chunk,
    closure,
    estimator_forward,
    jet_add,
    jet_batch,
    jet_mul,
    propagate,
    restrict,
)
from ..derivatives._fallback import jet_autodiff
from ._conditions import AbstractCondition
from ._names import DerivativeTable, Fields, NameSpace


class Problem(eqx.Module):
    """Base class of every problem. Subclasses set, as class attributes or properties:

    - ``domain``: a ``pinnjax.geometry`` domain (space, or space * TimeInterval)
    - ``outputs``: output names, default ``("u",)``
    - ``needs``: the derivative names the residual reads (``("u_t", "u_xx")``)
    - ``conditions``: a tuple of conditions (Dirichlet, Neumann, Initial, ...)

    and implement ``residual(self, x, d)`` for one point ``x`` with ``d.u_t``, ``d.u_xx``...
    returning a scalar or a tuple of components. Optional: ``exact(self, x)`` (the solution at
    one point), ``reference(self)`` (a ``ReferenceData`` to evaluate against), and
    ``constraint(self, x) -> (g, D)`` for a hard constraint ``u = g(x) + D(x) * network(x)``.
    """

    outputs = ("u",)
    needs = ()
    conditions = ()
    residual_names = None

    @abc.abstractmethod
    def residual(self, x, d):
        """PDE residual at one point ``x`` from its derivatives ``d``."""

    # --- names ---------------------------------------------------------------------------

    @property
    def coords(self) -> tuple[str, ...]:
        return tuple(self.domain.coord_names)

    @property
    def time_axis(self) -> int | None:
        """The time coordinate's index, from the domain's type (``space * TimeInterval``, time
        last, or a bare ``TimeInterval``); None for a steady problem, whatever its parts are
        called."""
        from ..geometry import SpaceTime, TimeInterval

        if isinstance(self.domain, SpaceTime):
            return self.domain.dim - 1
        return 0 if isinstance(self.domain, TimeInterval) else None

    @property
    def namespace(self) -> NameSpace:
        return NameSpace(self.coords, tuple(self.outputs), self.time_axis)

    @property
    def has_exact(self) -> bool:
        return type(self).exact is not Problem.exact

    def exact(self, x):
        """The exact solution at one point, shape (n_outputs,) or scalar."""
        raise NotImplementedError(f"{type(self).__name__} has no exact solution")

    def reference(self):
        """Reference data (points, values) to evaluate against, or None."""
        return None

    @property
    def has_constraint(self) -> bool:
        return type(self).constraint is not Problem.constraint

    def constraint(self, x):
        """``(g(x), D(x))`` for the hard constraint ``u = g + D * network``."""
        raise NotImplementedError

    # --- unknowns as fields (pointwise uncertainty bands) -----------------------------------

    def unknown_at(self, name: str, x):
        """The unknown `name` at one point `x`, where it is a field of space: a field network
        is called; a grid of values needs the problem's interpolation (override this); None
        where the unknown is not a field. The Laplace band of ``diagnostics`` linearises it
        in the unknown's entries (exact for an interpolation, linear in the node values)."""
        value = getattr(self, name)
        return value(x) if isinstance(value, eqx.Module) and callable(value) else None

    def true_unknown(self, name: str, x):
        """The true value of the unknown `name` at one point, where the problem knows it
        (drawn beside the band), else None."""
        del name, x
        return None

    # --- evaluation ------------------------------------------------------------------------

    def solution_jet_batch(self, model, xs, request: Request, *, estimator: Estimator | None = None,
                           key=None) -> Jet:
        """Jet of the solution at a batch of points ``xs`` (N, dim), batch axis first: the
        network through the engine's batched pass, seen through the hard constraint.
        ``estimator``: estimate the contractions (``lap_u``) from random directions drawn from
        ``key`` (the constraint's ``g`` and ``D`` are then lifted onto the same directions)."""
        request = request.estimated(estimator)
        if request.estimator is not None:
            constraint = self.constraint if self.has_constraint else None
            return propagate(estimator_forward(model), xs, request, key=key, constraint=constraint,
                             chunk=auto_chunk(model, xs.shape[0], request))
        if not self.has_constraint:
            return jet_batch(model, xs, request)
        full = closure(request)
        n = jet_batch(model, xs, full)

        def factor(i):
            fn = lambda p: jnp.atleast_1d(self.constraint(p)[i]).astype(p.dtype)  # noqa: E731
            return jax.vmap(lambda p: jet_autodiff(fn, p, full))(xs)

        return restrict(jet_add(factor(0), jet_mul(factor(1), n, full)), full, request)

    def solution_jet(self, model, x, request: Request) -> Jet:
        """Jet of the solution at one point."""
        return jax.tree.map(lambda a: a[0], self.solution_jet_batch(model, x[None], request))

    def fields(self, model, x, table: DerivativeTable, *, estimator: Estimator | None = None, key=None) -> Fields:
        """The ``d`` a residual reads, at one point (or a stack of points, leading axes kept)."""
        flat = x.reshape(-1, x.shape[-1])
        j = self.solution_jet_batch(model, flat, table.request, estimator=estimator, key=key)
        return Fields(jax.tree.map(lambda a: a.reshape(x.shape[:-1] + a.shape[1:]), j), table)

    def predict(self, model, xs):
        """Solution at a batch of points, (N, n_outputs)."""
        table = self.namespace.table(tuple(self.outputs))
        return self.solution_jet_batch(model, xs, table.request).value

    def exact_batch(self, xs):
        return jax.vmap(lambda p: jnp.atleast_1d(self.exact(p)))(xs)

    # --- loss terms ----------------------------------------------------------------------

    def terms(self) -> tuple["Term", ...]:
        """The loss terms: the PDE residual, then each condition, with unique names."""
        terms = [Term("residual", None, 1.0)]
        seen = {"residual"}
        for c in self.get_conditions():
            base = c.name or c.default_name()
            name, k = base, 2
            while name in seen:
                name, k = f"{base}{k}", k + 1
            seen.add(name)
            terms.append(Term(name, c, c.weight))
        return tuple(terms)

    def get_conditions(self) -> tuple[AbstractCondition, ...]:
        conds = self.conditions
        return tuple(conds() if callable(conds) else conds)

    def check(self) -> None:
        """Validate the problem: names parse, conditions fit the domain, residual reads only
        what it declared (traced once, abstractly)."""
        ns = self.namespace
        table = ns.table(tuple(self.needs))
        for c in self.get_conditions():
            if not isinstance(c, AbstractCondition):
                raise TypeError(f"conditions must be pinnjax conditions, got {c!r}")
            c.check(self)
            ns.table(c.needs(c.output, self.coords))
        # trace the residual once on placeholder derivatives: an undeclared name raises here
        x = jax.ShapeDtypeStruct((self.domain.dim,), jnp.zeros(()).dtype)
        jax.eval_shape(lambda p: self.residual(p, Fields(_placeholder_jet(table.request, len(self.outputs), p), table)), x)


class Term(eqx.Module):
    """One loss term: the PDE residual (``condition is None``) or a condition."""

    name: str = eqx.field(static=True)
    condition: AbstractCondition | None
    weight: float = eqx.field(static=True)

    @property
    def kind(self) -> str:
        return "interior" if self.condition is None else self.condition.kind

    def table(self, problem: Problem) -> DerivativeTable:
        return _table(problem.namespace, self.needs(problem))

    def needs(self, problem):
        if self.condition is None:
            return tuple(problem.needs)
        return tuple(self.condition.needs(self.condition.output, problem.coords))

    def sample(self, problem: Problem, key, n: int, method: str = "uniform"):
        if self.condition is None:
            return problem.domain.sample_interior(key, n, method=method)
        return self.condition.sample(problem.domain, key, n, method)

    def residuals(self, problem: Problem, model, samples, *, estimator: Estimator | None = None,
                  key=None) -> jax.Array:
        """Residual components at every sample: (N, k). The derivatives at all samples come
        from one batched pass of the engine; the residual is then written per sample.
        ``estimator`` / ``key``: contractions (``lap_u``) from random directions."""
        table = self.table(problem)
        points = samples if self.condition is None else self.condition.points_of(samples)
        d = problem.fields(model, points, table, estimator=estimator, key=key)  # leading axes of `points` kept

        def one(s, j):
            fields = Fields(j, table)
            if self.condition is None:
                r = problem.residual(s, fields)
            else:
                r = self.condition.residual(problem, s, fields)
            if isinstance(r, (tuple, list)):
                r = jnp.stack([jnp.asarray(c) for c in r])
            return jnp.atleast_1d(r)

        return jax.vmap(one)(samples, d.jet)


@functools.lru_cache(maxsize=512)
def _table(ns: NameSpace, needs: tuple) -> DerivativeTable:
    return ns.table(needs)


def _placeholder_jet(request: Request, n_out: int, x) -> Jet:
    z = jnp.zeros((n_out,), x.dtype)
    cols = lambda n: jnp.zeros((n_out, n), x.dtype)  # noqa: E731
    return Jet(z, cols(len(request.first)), cols(len(request.second)), cols(len(request.mixed)),
               cols(len(request.contractions)), cols(len(request.third)), cols(len(request.fourth)),
               cols(len(request.multi)), cols(1 if request.bilaplacian else 0))
