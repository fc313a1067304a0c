"""The static side of a run: everything the compiled step needs to know from the config and
the problem, as one hashable value (a jit static argument), and the optimisers built from it."""

from __future__ import annotations

import dataclasses
import difflib

import jax.numpy as jnp

from ..config import ConfigError, RunConfig
from ..derivatives import Estimator
from ..problem import imposes_exactly
from ._phases import Phase, phase_index, phases_from_config


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """Hashable, so that two runs with the same settings share one compiled step."""

    # loss terms, in `problem.terms()` order (terms with no points are dropped)
    term_names: tuple[str, ...]
    term_kinds: tuple[str, ...]
    counts: tuple[int, ...]  # samples per term
    fixed_weights: tuple[float, ...]
    dtype: str
    # sampling
    method: str
    resample_every: int
    rad: bool
    rad_every: int
    rad_k: float
    rad_c: float
    rad_pool: int
    # weighting
    balancing: str
    balance_every: int
    balance_momentum: float
    causal: bool
    causal_eps: float
    causal_chunks: int
    regularization: tuple | None  # (method, weight, points) of loss.regularization, or None
    time_axis: int | None
    time_bounds: tuple[float, float] | None
    # optimisation: the phases in order (train.phases, or Adam then L-BFGS)
    phases: tuple[Phase, ...]
    scan_steps: int
    log_every: int
    # derivatives.laplacian: the contractions (lap_u) estimated from random directions, or None
    laplacian: Estimator | None = None
    # where it runs (set by fit): the 1-D device mesh the points are split over (None: one
    # device) and the matmul precision of the compiled step (None: JAX's default)
    mesh: object = None
    matmul_precision: str | None = None

    @property
    def total_steps(self) -> int:
        return self.phases[-1].end

    @property
    def phase_ends(self) -> tuple[int, ...]:
        return tuple(ph.end for ph in self.phases)

    @property
    def n_terms(self) -> int:
        return len(self.term_names)

    @property
    def interior_index(self) -> int | None:
        return self.term_kinds.index("interior") if "interior" in self.term_kinds else None

    @property
    def jnp_dtype(self):
        return jnp.float64 if self.dtype == "float64" else jnp.float32


def constrained_problem(problem, cfg: RunConfig):
    """The problem as a run trains it: with ``model.hard_constraint`` and no ``constraint`` of
    its own, its Dirichlet conditions imposed exactly (``with_exact_dirichlet``)."""
    from ..problem import with_exact_dirichlet
    from ..problem._exact_dirichlet import is_imposed

    hard = cfg.model.hard_constraint
    if hard is False or problem.has_constraint:
        return problem
    impose = "all" if hard is True else "constant"
    if impose == "constant" and not any(is_imposed(c, impose) for c in problem.get_conditions()):
        return problem  # nothing to impose: every Dirichlet datum is a function of x (or none)
    try:
        return with_exact_dirichlet(problem, impose)
    except ValueError as exc:
        raise ConfigError(
            f"key 'model.hard_constraint' is {str(hard).lower()} but {type(problem).__name__} defines no "
            f"constraint(self, x) -> (g, D), and none can be built from its conditions: {exc}"
        ) from None


def make_spec(problem, cfg: RunConfig) -> TrainSpec:
    """Validate the config against the problem and freeze what the step needs."""
    s, lc, t = cfg.sampling, cfg.loss, cfg.train
    regularization = None
    if lc.regularization != "none":
        regularization = (lc.regularization, float(lc.regularization_weight), lc.regularization_points)
    terms = problem.terms() + _regularization_terms(problem, regularization)
    names = [term.name for term in terms]
    unknown = sorted(set(lc.weights) - set(names))
    if unknown:
        hints = [difflib.get_close_matches(u, names, n=1) for u in unknown]
        hint = "".join(f" (did you mean {h[0]!r} for {u!r}?)" for u, h in zip(unknown, hints) if h)
        raise ConfigError(
            f"key 'loss.weights' names unknown term(s) {unknown}; this problem's terms are {names}{hint}"
        )
    problem = constrained_problem(problem, cfg)
    per_kind = {"interior": s.interior, "boundary": s.boundary, "initial": s.initial}
    kept = []
    for term in terms:
        if imposes_exactly(problem, term.condition):  # zero by the hard constraint: not trained
            continue
        if term.kind == "data":
            n = int(getattr(term.condition, "batch", None) or s.interior)  # data terms pick their own points
        elif term.kind in per_kind:
            n = per_kind[term.kind]
        else:
            raise ConfigError(f"problem term {term.name!r} has unknown kind {term.kind!r}")
        if n == 0:
            continue  # sampling.<kind> = 0 switches those terms off
        kept.append((term, n))
    if not kept:
        raise ConfigError("no loss terms left: every sampling count (sampling.interior, .boundary, .initial) is 0")
    time_axis, time_bounds = problem.time_axis, None
    if lc.causal:
        if time_axis is None:
            raise ConfigError(
                f"key 'loss.causal' is true but {type(problem).__name__} is steady: causal weighting needs "
                "a time-dependent problem (domain = space * TimeInterval)"
            )
        lo, hi = problem.domain.bbox()
        time_bounds = (float(lo[time_axis]), float(hi[time_axis]))
    kinds = [term.kind for term, _ in kept]
    phases = phases_from_config(t, s)
    if (s.rad or lc.causal or any(ph.rad for ph in phases)) and "interior" not in kinds:
        raise ConfigError("keys 'sampling.rad' and 'loss.causal' need the interior (PDE residual) term")
    laplacian = _laplacian_estimator(cfg, phases)
    return TrainSpec(
        term_names=tuple(term.name for term, _ in kept),
        term_kinds=tuple(kinds),
        counts=tuple(n for _, n in kept),
        fixed_weights=tuple(float(lc.weights.get(term.name, term.weight)) for term, _ in kept),
        dtype=cfg.model.dtype,
        method=s.method,
        resample_every=s.resample_every,
        rad=s.rad or any(ph.rad for ph in phases),
        rad_every=s.rad_every,
        rad_k=float(s.rad_k),
        rad_c=float(s.rad_c),
        rad_pool=s.rad_pool,
        balancing=lc.balancing,
        balance_every=lc.balance_every,
        balance_momentum=float(lc.balance_momentum),
        causal=lc.causal,
        causal_eps=float(lc.causal_eps),
        causal_chunks=lc.causal_chunks,
        regularization=regularization,
        time_axis=time_axis,
        time_bounds=time_bounds,
        phases=phases,
        scan_steps=t.scan_steps,
        log_every=t.log_every,
        laplacian=laplacian,
    )


def _laplacian_estimator(cfg: RunConfig, phases) -> Estimator | None:
    """``derivatives.laplacian``'s Estimator (None: exact), checked against the phases."""
    dc = cfg.derivatives
    if dc.laplacian == "exact":
        return None
    gauss_newton = [ph.name for ph in phases if ph.name in ("lm", "engd")]
    if gauss_newton:
        raise ConfigError(
            f"key 'derivatives.laplacian' is {dc.laplacian!r} but phase(s) {gauss_newton} build the residual "
            "Jacobian point by point, which would not see the same random directions; use exact there"
        )
    if dc.laplacian == "sparse" and dc.directions != "rademacher":
        raise ConfigError("key 'derivatives.directions' applies to hutchinson only (sparse samples axes)")
    return Estimator(dc.laplacian, dc.samples, dc.directions)


def _regularization_terms(problem, regularization) -> tuple:
    """The ``regularization`` term that ``loss.regularization`` adds, checked against the problem."""
    if regularization is None:
        return ()
    from ..problem import Regularization, Term, unknown_names

    method, weight, points = regularization
    networks = [n for n in unknown_names(problem) if callable(getattr(problem, n))]
    cond = Regularization(method, weight=weight, batch=points if networks else 1)
    try:
        cond.check(problem)
    except ValueError as exc:
        raise ConfigError(f"key 'loss.regularization' is {method!r} but {exc}") from None
    return (Term(cond.name, cond, weight),)


def active_terms(problem, spec: TrainSpec):
    """The problem's terms that this run trains, in spec order."""
    by_name = {term.name: term for term in problem.terms() + _regularization_terms(problem, spec.regularization)}
    return tuple(by_name[name] for name in spec.term_names)


def learning_rate(spec: TrainSpec, step: int) -> float:
    """The step size of `step` (host side, for logging; NaN for phases without one)."""
    ph = spec.phases[phase_index(spec.phases, step)]
    return ph.optimiser.learning_rate(step - ph.start)
