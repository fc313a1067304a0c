"""Tests for the problem zoo (``problems/``).

Every test runs in float64; residuals are evaluated with ``jax_numpy_rank_promotion="raise"``
(as conftest's ``strict_jax``, which cannot be used for whole tests here because the geometry's
samplers still broadcast implicitly). Random points come from the per-test ``key`` fixture (its
seed is printed on failure). Each tolerance is justified beside its assertion.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pinnjax as pj
from pinnjax.problems import PROBLEMS, UnknownProblemError, get_problem
from pinnjax.problems.allen_cahn import solve_allen_cahn

N_SAMPLES = 64


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


class Exact(eqx.Module):
    """A "network" that returns the problem's exact solution; the derivative engine does not
    recognise it, so its derivatives come from nested ``jax.jvp`` (exact up to round-off)."""

    p: object
    in_size: int
    out_size: int

    def __call__(self, x):
        u = jnp.atleast_1d(self.p.exact(x))
        if self.p.has_constraint:  # the network's part of u = g + D * network (0 where D = 0)
            g, D = self.p.constraint(x)
            safe = jnp.where(D == 0, 1.0, D)
            u = jnp.where(D == 0, 0.0, (u - g) / safe)
        return u


class Opaque(eqx.Module):
    """Wraps a network so that the engine falls back to nested ``jax.jvp`` for it."""

    net: object
    in_size: int
    out_size: int

    def __call__(self, x):
        return self.net(x)


@eqx.filter_jit
def _residuals(term, problem, model, samples):
    return term.residuals(problem, model, samples)


def residuals(term, problem, model, samples):
    """``term.residuals``, compiled (much faster than op-by-op dispatch of the vmapped nested
    jvp), with implicit rank promotion an error: a residual that broadcasts (N,) against (N, 1)
    or a point against a batch fails here instead of being silently wrong."""
    with jax.numpy_rank_promotion("raise"):
        return _residuals(term, problem, model, samples)


def exact_model(problem):
    return Exact(problem, problem.domain.dim, len(problem.outputs))


def _instances_with_exact():
    """Every shipped problem with an exact solution, at its defaults and at other parameters
    (so a formula that only holds for the defaults is caught)."""
    cases = []
    for name, cls in PROBLEMS.items():
        if cls().has_exact:
            kwargs = cls.exact_parameters() if hasattr(cls, "exact_parameters") else {}
            cases.append(pytest.param(name, kwargs, id=name))
    variants = [
        ("heat1d", {"alpha": 0.1}),
        ("heat2d", {"alpha": 0.3, "m1": 2, "m2": 3}),
        ("heatnd", {"dim": 2, "alpha": 0.2}),
        ("poissonnd", {"dim": 3}),
        ("wave1d", {"c": 1.0}),
        ("helmholtz2d", {"a1": 2.0, "a2": 3.0, "k": 4.0}),
        ("kdv", {"c": 1.0, "x0": 0.5}),
        ("inverse_diffusion", {"kappa": 1.0, "n_obs": 7}),
    ]
    cases += [pytest.param(n, kw, id=f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}") for n, kw in variants]
    return cases


# Round-off budget for the exact-solution residuals: the largest single term in any residual is
# about 3e2 (wave1d: c^2 (4 pi)^2 * 0.5 ~ 316; helmholtz2d variant: 13 pi^2 ~ 128), float64 eps is
# 2.2e-16 and nested jvp adds a few roundings per order, so the residuals are ~1e-13; 1e-9 leaves
# four orders of margin while any wrong coefficient or sign gives an O(1) residual.
EXACT_ATOL = 1e-9


@pytest.mark.parametrize("name, kwargs", _instances_with_exact())
def test_exact_solution_satisfies_problem(name, kwargs, key):
    problem = get_problem(name)(**kwargs)
    problem.check()
    model = exact_model(problem)
    for i, term in enumerate(problem.terms()):
        samples = term.sample(problem, jax.random.fold_in(key, i), N_SAMPLES)
        assert samples.dtype == jnp.float64
        assert bool(jnp.all(jnp.isfinite(samples))), term.name
        r = residuals(term, problem, model, samples)
        assert r.ndim == 2 and r.shape[0] == samples.shape[0], (term.name, r.shape)
        err = float(jnp.max(jnp.abs(r)))
        assert err < EXACT_ATOL, f"{name} {kwargs}: term {term.name!r} residual {err:.3e}"


def test_exact_solution_is_not_trivially_zero(key):
    """Guards the test above: a residual that ignored the solution would also vanish there. A
    perturbed solution (exact + 0.1 (x^2 + x^4)) must leave a clearly nonzero interior residual."""

    class Perturbed(eqx.Module):
        p: object
        in_size: int
        out_size: int

        def __call__(self, x):
            return jnp.atleast_1d(self.p.exact(x) + 0.1 * (x[0] ** 2 + x[0] ** 4))

    for name, cls in PROBLEMS.items():
        problem = cls(**cls.exact_parameters()) if hasattr(cls, "exact_parameters") else cls()
        if not problem.has_exact:
            continue
        model = Perturbed(problem, problem.domain.dim, 1)
        term = problem.terms()[0]
        r = residuals(term, problem, model, term.sample(problem, key, N_SAMPLES))
        # 0.1 x^2 contributes -0.2 kappa (or similar) through u_xx / lap_u / u_xxx (kdv: through
        # 6 u u_x = 1.2 u x); 0.1 x^4 gives the plate's bilap_u / (4 pi^4) 6e-3; so the residual
        # is at least ~5e-3 somewhere.
        assert float(jnp.max(jnp.abs(r))) > 1e-3, name


def test_inverse_residual_depends_on_kappa(key):
    cls = get_problem("inverse_diffusion")
    problem = cls()
    assert float(problem.kappa) == 0.5 and cls.true_kappa == 1.0
    term = problem.terms()[0]
    r = residuals(term, problem, exact_model(problem), term.sample(problem, key, N_SAMPLES))
    # -0.5 u'' - f = -0.5 pi^2 sin(pi x): O(1) away from the ends
    assert float(jnp.max(jnp.abs(r))) > 1.0


def test_inverse_unknowns_and_observations():
    cls = get_problem("inverse_diffusion")
    problem = cls()
    # the coefficient is the problem's only unknown (what the trainer optimises)
    leaves = jax.tree_util.tree_leaves(eqx.filter(problem, pj.problem.unknowns_filter(problem)))
    assert len(leaves) == 1 and leaves[0] is problem.kappa and problem.kappa.dtype == np.float64
    assert pj.problem.unknown_names(problem) == ("kappa",)
    data = [c for c in problem.get_conditions() if isinstance(c, pj.PointData)]
    assert len(data) == 1 and data[0].points.shape == (50, 1) and data[0].values.shape == (50,)
    inside = jax.vmap(problem.domain.contains)(data[0].points)
    assert bool(jnp.all(inside))
    # deterministic: same observations on every construction, and reproducible noise
    x1, u1 = cls(noise=0.01).observations()
    x2, u2 = cls(noise=0.01).observations()
    np.testing.assert_array_equal(u1, u2)
    _, u0 = problem.observations()
    assert 0 < np.abs(u1 - u0).max() < 0.1
    assert not np.array_equal(cls(noise=0.01, seed=1).observations()[1], u1)


# --- every shipped problem -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_registered_problem_checks(name):
    cls = get_problem(name)
    assert issubclass(cls, pj.Problem)
    assert cls.__doc__ and len(cls.__doc__) > 80, f"{name} needs a docstring with the PDE"
    problem = cls()
    problem.check()
    assert len(problem.terms()) >= 2
    assert problem.has_exact or problem.reference() is not None, f"{name} has nothing to evaluate against"


# One problem per distinct use of the engine (every problem costs two compilations, so not all
# of them): periodic pairs reading u_x, third order, u_tt with an initial velocity, a spatial
# Laplacian beside u_t in 5-D, u beside lap_u, point data with an unknown coefficient.
ENGINE_CASES = ["allen_cahn1d", "kdv", "wave1d", "heatnd", "helmholtz2d", "inverse_diffusion", "kirchhoff_plate"]


@pytest.mark.parametrize("name", ENGINE_CASES)
def test_engine_matches_nested_jvp_on_every_term(name, key):
    """A real MLP through the derivative engine gives the same residuals as nested jvp on every
    loss term: the engine supports the problem's derivative names. Float64; both paths differ
    only by round-off on O(1-100) residuals (~1e-13), so 1e-9 relative to the residual scale is
    generous."""
    problem = get_problem(name)()
    net = pj.MLP(problem.domain.dim, len(problem.outputs), width=16, depth=2, key=jax.random.fold_in(key, 99))
    opaque = Opaque(net, net.in_size, net.out_size)
    for i, term in enumerate(problem.terms()):
        # sampled inside jit, as a training step does (catches host-side numpy in a sampler)
        samples = eqx.filter_jit(term.sample)(problem, jax.random.fold_in(key, i), 16)
        fast = residuals(term, problem, net, samples)
        slow = residuals(term, problem, opaque, samples)
        assert bool(jnp.all(jnp.isfinite(fast))), (name, term.name)
        scale = 1.0 + float(jnp.max(jnp.abs(slow)))
        np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-9 * scale, err_msg=f"{name}: {term.name}")


def test_get_problem_suggests_close_names():
    assert get_problem("poisson2d") is PROBLEMS["poisson2d"]
    with pytest.raises(KeyError, match="poisson2d"):
        get_problem("poison2d")
    with pytest.raises(ValueError, match="did you mean 'poisson2d'"):
        get_problem("poison2d")
    with pytest.raises(UnknownProblemError, match="shipped"):
        get_problem("navier_stokes_3d_turbulence")


# --- errors a problem author makes ---------------------------------------------------------


def test_undeclared_derivative_fails_check():
    class Bad(pj.Problem):
        domain = pj.Interval(0.0, 1.0)
        needs = ("u_xx",)
        conditions = (pj.Dirichlet(0.0),)

        def residual(self, x, d):
            return d.u_xx + d.u_x

    with pytest.raises(pj.UndeclaredDerivativeError, match="'u_x'"):
        Bad().check()


def test_condition_on_missing_part_fails_check():
    class Bad(pj.Problem):
        domain = pj.Box([0.0, 0.0], [1.0, 1.0])
        needs = ("lap_u",)
        conditions = (pj.Dirichlet(0.0, part="top"),)

        def residual(self, x, d):
            return d.lap_u

    with pytest.raises(ValueError, match="'top'"):
        Bad().check()


# --- reference data ------------------------------------------------------------------------


REFERENCES = {
    # name: (n_nodes, n_times or None)
    "poisson2d_c": (1246, None),
    "poisson_boltzmann2d": (3236, None),
    "burgers1d": (101, 11),
    "heat2d_lt": (192, 501),
    "allen_cahn1d": (257, 201),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_reference_shape_and_location(name):
    problem = get_problem(name)()
    ref = problem.reference()
    n_nodes, n_times = REFERENCES[name]
    assert ref.n_nodes == n_nodes and (ref.times is None if n_times is None else ref.n_times == n_times)
    n = n_nodes * (n_times or 1)
    assert ref.points.shape == (n, problem.domain.dim) and ref.values.shape == (n, 1)
    assert np.all(np.isfinite(ref.values))
    pts = jnp.asarray(ref.points)
    # inside, or on the boundary within 1e-6 (relative to the domain size): COMSOL writes
    # boundary nodes to ~1e-16, and the 1e-6 band is far thinner than any mesh spacing (>1e-3)
    inside = jax.vmap(problem.domain.contains)(pts) | jax.vmap(lambda p: problem.domain.on_part(p, tol=1e-6))(pts)
    assert bool(jnp.all(inside)), f"{int((~inside).sum())} reference points outside the domain"
    assert problem.reference() is ref  # loaded once


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_reference_obeys_dirichlet_and_initial_conditions(name):
    """Reference nodes on each Dirichlet part carry the condition's value; the t0 snapshot carries
    the initial value. Ties the problem's conditions (parts, values) to the data file."""
    problem = get_problem(name)()
    ref = problem.reference()
    pts = jnp.asarray(ref.points)
    vals = ref.values[:, 0]
    checked = 0
    for c in problem.get_conditions():
        if isinstance(c, pj.Dirichlet):
            on = np.asarray(jax.vmap(lambda p: problem.domain.on_part(p, c.part, tol=1e-9))(pts))
            # COMSOL imposes Dirichlet values strongly at boundary nodes: exact to print precision
            tol = 1e-9
        elif isinstance(c, pj.Initial):
            on = np.asarray(ref.points[:, -1] == problem.domain.time.t0)
            # heat_longtime.dat stores its initial snapshot as the finite-element projection of
            # sin(4 pi x) sin(3 pi y) (max deviation 6.9e-4 at 192 nodes); burgers1d.dat writes
            # -sin(pi x) to 5-6 digits; the Allen-Cahn snapshot is the exact sample (FFT round-off)
            tol = 2e-3 if name == "heat2d_lt" else 1e-5
        else:
            continue
        if not on.any():
            continue  # heat2d_lt's nodes are all interior
        g = jax.vmap(lambda p: jnp.asarray(c.value(p) if callable(c.value) else c.value, p.dtype))(pts[on])
        np.testing.assert_allclose(vals[on], np.asarray(g), atol=tol, rtol=0, err_msg=f"{name}: {c.default_name()}")
        checked += 1
    assert checked >= 1


def test_poisson2d_c_reference_values():
    problem = get_problem("poisson2d_c")()
    ref = problem.reference()
    p, v = ref.points, ref.values[:, 0]
    outer = np.isclose(np.abs(p), 0.5, atol=1e-12).any(axis=1)
    centers = np.array([[0.3, 0.3], [-0.3, 0.3], [0.3, -0.3], [-0.3, -0.3]])
    dist = np.min(np.linalg.norm(p[:, None] - centers[None], axis=-1), axis=1) - 0.1
    assert outer.sum() > 50 and (dist < 1e-9).sum() > 50
    np.testing.assert_allclose(v[outer], 1.0, atol=1e-9)  # boundary nodes: imposed values
    np.testing.assert_allclose(v[dist < 1e-9], 0.0, atol=1e-9)
    # maximum principle for a harmonic function with boundary values 0 and 1
    assert v.min() >= -1e-9 and v.max() <= 1 + 1e-9
    # near a circle of radius r0 = 0.1, u grows like log(r / r0) / log(R / r0), with R ~ 0.2 the
    # distance from the centre to the outer square: slope 1 / (r0 ln 2) ~ 14 at the circle (the
    # file's largest u / distance within 0.02 is 12.3), so 0 <= u <= 20 * distance there
    near = (dist > 1e-9) & (dist < 0.02)
    assert near.sum() > 20 and np.all(v[near] <= 20 * dist[near])


def test_poisson2d_c_terms_sample_their_parts(key):
    """Each loss term of the perforated domain samples where it should (float64, so this also
    covers rejection sampling of a CSG domain under x64)."""
    problem = get_problem("poisson2d_c")()
    centers = jnp.array([[0.3, 0.3], [-0.3, 0.3], [0.3, -0.3], [-0.3, -0.3]])
    terms = {t.name: t for t in problem.terms()}
    assert set(terms) == {"residual", "outer", "circles"}
    pts = {n: t.sample(problem, jax.random.fold_in(key, i), 128) for i, (n, t) in enumerate(terms.items())}
    dist = {n: jnp.min(jnp.linalg.norm(p[:, None] - centers[None], axis=-1), axis=1) - 0.1 for n, p in pts.items()}
    for p in pts.values():
        assert p.dtype == jnp.float64 and bool(jnp.all(jnp.isfinite(p)))
    # points are placed on the boundary analytically: round-off only (1e-12 is 1e4 eps)
    np.testing.assert_allclose(jnp.max(jnp.abs(pts["outer"]), axis=1), 0.5, atol=1e-12)
    np.testing.assert_allclose(dist["circles"], 0.0, atol=1e-12)
    assert bool(jnp.all(jnp.max(jnp.abs(pts["residual"]), axis=1) <= 0.5)) and bool(jnp.all(dist["residual"] > 0))


def test_burgers_initial_snapshot():
    ref = get_problem("burgers1d")().reference()
    x = ref.space_points[:, 0]
    np.testing.assert_allclose(ref.times, np.linspace(0, 1, 11), atol=1e-12)
    # the file prints -sin(pi x) with 5-6 significant digits
    np.testing.assert_allclose(ref.snapshots()[0], -np.sin(np.pi * x), atol=1e-5)


def test_reference_only_for_file_parameters():
    assert get_problem("burgers1d")(nu=0.1).reference() is None
    assert get_problem("poisson_boltzmann2d")(k=2.0).reference() is None
    assert get_problem("heat2d_lt")(m1=1).reference() is None
    assert get_problem("burgers1d")(nu=0.01 / math.pi).reference() is not None


def test_allen_cahn_reference():
    ref = get_problem("allen_cahn1d")().reference()
    u = ref.snapshots()  # (n_t, n_x)
    x = ref.space_points[:, 0]
    # t = 0: the sampled initial value, up to FFT round-off (~1e-15)
    np.testing.assert_allclose(u[0], x**2 * np.cos(np.pi * x), atol=1e-12)
    # periodic: x = 1 repeats x = -1
    np.testing.assert_array_equal(u[:, 0], u[:, -1])
    # |u0| <= 1 and the stable states are +-1, so |u| <= 1 for all time (maximum principle);
    # 1e-6 allows the spectral discretisation's small overshoot
    assert np.abs(u).max() <= 1 + 1e-6
    # metastable plateaus at +-1 by t = 1
    assert u[-1].min() < -0.99 and u[-1].max() > 0.98
    # self-convergence: half the modes and twice the step change the reference by ~1e-5 in L2
    # relative norm, so the reference is orders of magnitude below any PINN error (>1e-3)
    xc, _, uc = solve_allen_cahn(n_modes=512, step=1e-3)
    coarse = np.concatenate([uc[:, ::2], uc[:, :1]], axis=1)
    rel = np.linalg.norm(coarse - u) / np.linalg.norm(u)
    assert rel < 1e-4, rel


def test_allen_cahn_solver_reaction_only():
    """With eps = 0 each point solves u' = gamma (u - u^3), whose exact solution is
    u0 e^{gamma t} / sqrt(1 + u0^2 (e^{2 gamma t} - 1)): checks the time integrator and the
    signs of the reaction term. ETDRK4 with step 1e-3 is accurate to ~1e-10 here; 1e-8 is safe."""
    x, t, u = solve_allen_cahn(eps=0.0, gamma=5.0, n_modes=64, step=1e-3, n_snapshots=11)
    u0 = x**2 * np.cos(np.pi * x)
    e = np.exp(5.0 * t)[:, None]
    exact = u0 * e / np.sqrt(1 + u0**2 * (e**2 - 1))
    np.testing.assert_allclose(u, exact, atol=1e-8, rtol=0)


def test_plate_bilaplacian_and_expanded_forms_agree(key):
    """The plate's residual from ``bilap_u`` (the engine's biharmonic block) equals the one
    from ``u_xxxx + 2 u_xxyy + u_yyyy`` (fourth derivatives and a mixed multi-index), on a real
    network; float64 round-off on O(1) residuals, so 1e-9."""
    plate, expanded = get_problem("kirchhoff_plate")(), get_problem("kirchhoff_plate")(expanded=True)
    net = pj.nn.PirateNet(2, 1, 8, 2, key=key)
    net = eqx.tree_at(lambda m: m.alpha, net, jnp.asarray([0.4, -0.3]))
    term, term_expanded = plate.terms()[0], expanded.terms()[0]
    samples = term.sample(plate, key, 32)
    a = residuals(term, plate, net, samples)
    b = residuals(term_expanded, expanded, net, samples)
    assert float(jnp.max(jnp.abs(a))) > 1e-2  # not trivially zero
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-9 * (1.0 + float(jnp.max(jnp.abs(a)))))


def test_burgers_cole_hopf_solves_the_pde_and_is_near_the_pinnacle_file():
    """The exact Burgers reference (Cole-Hopf by Gauss-Hermite quadrature) against two
    independent checks: its finite-difference residual of ``u_t + u u_x - nu u_xx`` is small
    away from the shock, it meets the boundary and initial values, and it lies within the
    PINNacle file's own accuracy (the COMSOL values, 1.33e-2 apart in relative L2)."""
    from pinnjax.data import l2_relative_error
    from pinnjax.problems.burgers import burgers_cole_hopf

    nu = 0.01 / math.pi
    x = np.array([-0.8, -0.5, -0.2, 0.3, 0.6, 0.9])
    t = np.array([0.05, 0.2, 0.4, 0.6, 0.8, 1.0])
    X, T = (a.ravel() for a in np.meshgrid(x, t))
    h = 1e-4
    u = burgers_cole_hopf(X, T)
    u_t = (burgers_cole_hopf(X, T + h) - burgers_cole_hopf(X, T - h)) / (2 * h)
    u_x = (burgers_cole_hopf(X + h, T) - burgers_cole_hopf(X - h, T)) / (2 * h)
    u_xx = (burgers_cole_hopf(X + h, T) - 2 * u + burgers_cole_hopf(X - h, T)) / h**2
    residual = u_t + u * u_x - nu * u_xx
    scale = np.abs(u_t) + np.abs(u * u_x) + 1e-3
    assert np.max(np.abs(residual) / scale) < 1e-4
    assert np.max(np.abs(burgers_cole_hopf(np.array([-1.0, 1.0]), np.array([0.5, 0.5])))) < 1e-12
    x0 = np.linspace(-1, 1, 9)
    np.testing.assert_allclose(burgers_cole_hopf(x0, np.full(9, 1e-8)), -np.sin(np.pi * x0), atol=1e-3)

    from pinnjax.data import load_pinnacle, pinnacle_path

    exact = get_problem("burgers1d")().reference()
    comsol = load_pinnacle(pinnacle_path("burgers1d.dat"))
    err = float(l2_relative_error(exact.values, comsol.values))
    assert 5e-3 < err < 3e-2
