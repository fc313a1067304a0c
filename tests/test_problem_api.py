"""The problem API end to end on manufactured solutions: hard constraints (Leibniz through
the engine), Neumann/Robin/periodic/data conditions, systems, the named derivative views, and
a problem on the PINNacle Poisson 2d-C geometry. References are jax.hessian / nested jacfwd of
the composed function, in float64."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pinnjax as pj
import pinnjax.problem
from pinnjax.problems.poisson import Poisson2DC



@pytest.fixture(autouse=True)
def x64():
    """float64 for every test here (the geometry samplers rely on rank promotion, so the
    stricter ``strict_jax`` does not fit; the engine's own tests use it)."""
    with jax.enable_x64(True):
        yield

# Residuals of exact solutions are sums of O(10) terms of size <= ~50 in float64: 1e-9
# absolute leaves a margin of ~1e4 over the rounding actually seen (~1e-13).
TOL = 1e-9


class Exact(eqx.Module):
    """A 'network' returning a known function (the engine falls back to nested jvp)."""

    fn: object = eqx.field(static=True)
    in_size: int = eqx.field(static=True)
    out_size: int = eqx.field(static=True)

    def __call__(self, x):
        return jnp.atleast_1d(self.fn(x))


def all_terms_vanish(problem, model, key, n=64):
    problem.check()
    for i, term in enumerate(problem.terms()):
        samples = term.sample(problem, jax.random.fold_in(key, i), n)
        r = term.residuals(problem, model, samples)
        assert r.shape[0] == samples.shape[0]
        assert float(jnp.max(jnp.abs(r))) < TOL, (term.name, float(jnp.max(jnp.abs(r))))


def harmonic(x):
    return jnp.exp(x[0]) * jnp.sin(x[1])  # lap = 0


class LaplaceOnPoisson2DCGeometry(pj.Problem):
    """Laplace on the PINNacle 2d-C geometry with the harmonic solution exp(x) sin(y)."""

    domain = Poisson2DC.domain
    needs = ("lap_u",)
    conditions = (pj.Dirichlet(harmonic, part="outer"), pj.Dirichlet(harmonic, part="inner"))

    def residual(self, x, d):
        return d.lap_u

    def exact(self, x):
        return harmonic(x)


def test_problem_on_pinnacle_poisson_2d_c_geometry(key):
    p = LaplaceOnPoisson2DCGeometry()
    all_terms_vanish(p, Exact(p.exact, 2, 1), key)


def disk_solution(x):
    return x[0] ** 2 + x[1] ** 3  # lap = 2 + 6 y


class DiskNeumannRobin(pj.Problem):
    """Poisson on the unit disk: Neumann on the sphere and Robin on the sphere, both exact."""

    domain = pj.Ball([0.0, 0.0], 1.0)
    needs = ("lap_u",)

    @property
    def conditions(self):
        def dudn(x):  # outward normal of the unit circle is x itself
            return jnp.dot(jnp.array([2 * x[0], 3 * x[1] ** 2]), x)

        return (
            pj.Neumann(dudn, part="sphere"),
            pj.Robin(a=2.0, b=0.5, value=lambda x: 2.0 * disk_solution(x) + 0.5 * dudn(x), part="sphere"),
        )

    def residual(self, x, d):
        return d.lap_u - (2.0 + 6.0 * x[1])


def test_neumann_and_robin_conditions(key):
    p = DiskNeumannRobin()
    all_terms_vanish(p, Exact(disk_solution, 2, 1), key)
    # and they are not vacuous: a wrong solution violates them
    wrong = Exact(lambda x: disk_solution(x) + 0.1 * x[0], 2, 1)
    term = p.terms()[1]
    r = term.residuals(p, wrong, term.sample(p, key, 32))
    assert float(jnp.max(jnp.abs(r))) > 1e-2


class PeriodicInX(pj.Problem):
    domain = pj.Interval(0.0, 2.0) * pj.TimeInterval(0.0, 1.0)
    needs = ("u_t", "u_xx")
    conditions = (pj.Periodic(axis=0), pj.Initial(lambda x: jnp.sin(jnp.pi * x[0])))

    def residual(self, x, d):
        return d.u_t - 0.1 * d.u_xx

    def exact(self, x):
        return jnp.exp(-0.1 * jnp.pi**2 * x[1]) * jnp.sin(jnp.pi * x[0])


def test_periodic_and_initial_conditions(key):
    p = PeriodicInX()
    all_terms_vanish(p, Exact(p.exact, 2, 1), key)
    samples = p.terms()[1].sample(p, key, 8)
    assert samples.shape == (8, 2, 2)  # pairs of points on the two faces
    np.testing.assert_array_equal(samples[:, 0, 0], 0.0)
    np.testing.assert_array_equal(samples[:, 1, 0], 2.0)


class Stokes(pj.Problem):
    """A 2-output system: u = (sin y, sin x) is divergence-free; u_xx + u_yy = -u."""

    domain = pj.Box([0.0, 0.0], [1.0, 1.0])
    outputs = ("u", "v")
    needs = ("u", "v", "u_x", "v_y", "lap_u", "lap_v")
    conditions = (pj.Dirichlet(lambda x: jnp.sin(x[1]), output="u"), pj.Dirichlet(lambda x: jnp.sin(x[0]), output="v"))

    def residual(self, x, d):
        return (d.u_x + d.v_y, d.lap_u + d.u, d.lap_v + d.v)


def test_system_of_several_outputs(key):
    p = Stokes()
    model = Exact(lambda x: jnp.stack([jnp.sin(x[1]), jnp.sin(x[0])]), 2, 2)
    all_terms_vanish(p, model, key)
    r = p.terms()[0].residuals(p, model, p.domain.sample_interior(key, 16))
    assert r.shape == (16, 3)


class Constrained(pj.Problem):
    """Hard constraint u = g + D * N on a box; the residual reads every kind of derivative."""

    domain = pj.Box([0.0, 0.0, 0.0], [1.0, 2.0, 1.0])
    needs = ("u", "u_x", "u_yy", "u_xz", "lap_u", "u_yyy", "u_zzzz", "hess_u", "grad_u", "hessdiag_u",
             "u_xxy", "u_xyz", "u_yyzz", "u_xxxz", "bilap_u")

    def residual(self, x, d):
        return d.u

    def constraint(self, x):
        g = jnp.sin(x[0]) + x[1] * x[2]
        D = x[0] * (1 - x[0]) * jnp.cos(x[1]) * (x[2] + 2.0)
        return g, D


def test_hard_constraint_derivatives_through_leibniz(key):
    """The engine's jet of N combined by Leibniz's rule equals autodiff of g + D * N, for every
    kind of derivative (mixed third/fourth and the biharmonic included)."""
    p = Constrained()
    p.check()
    net = pj.MLP(3, 1, 8, 2, "tanh", key=key, dtype=jnp.float64)

    def u(x):
        g, D = p.constraint(x)
        return g + D * net(x)[0]

    table = p.namespace.table(p.needs)
    x = jax.random.uniform(jax.random.fold_in(key, 1), (3,), dtype=jnp.float64)
    d = jax.jit(lambda x: p.fields(net, x, table))(x)

    @jax.jit  # the references in one compiled program (op by op, nested jacfwd took seconds)
    def references(x):
        H = jax.hessian(u)(x)
        d3 = jax.jacfwd(jax.jacfwd(jax.jacfwd(u)))(x)
        d4 = jax.jacfwd(jax.jacfwd(jax.jacfwd(jax.jacfwd(u))))(x)
        return {
            "u": u(x), "u_x": jax.grad(u)(x)[0], "u_yy": H[1, 1], "u_xz": H[0, 2],
            "lap_u": jnp.trace(H), "u_yyy": d3[1, 1, 1], "u_zzzz": d4[2, 2, 2, 2],
            "hess_u": H, "grad_u": jax.grad(u)(x), "hessdiag_u": jnp.diag(H),
            "u_xxy": d3[0, 0, 1], "u_xyz": d3[0, 1, 2], "u_yyzz": d4[1, 1, 2, 2], "u_xxxz": d4[0, 0, 0, 2],
            "bilap_u": jnp.einsum("iikk->", d4),
        }

    checks = references(x)
    for name, want in checks.items():
        # float64 rounding through a small network and products of O(1) factors
        np.testing.assert_allclose(d[name], want, rtol=1e-10, atol=1e-10, err_msg=name)
    # the constraint holds exactly on the face x = 0, whatever the network
    pts = p.domain.sample_boundary(key, 16, part="x_min")
    np.testing.assert_allclose(p.predict(net, pts)[:, 0], jax.vmap(lambda q: p.constraint(q)[0])(pts), atol=1e-12)


def test_point_data_condition(key):
    xs = jnp.linspace(0.0, 1.0, 20, dtype=jnp.float64)[:, None]
    obs = pj.PointData(xs, jnp.sin(xs[:, 0]), batch=8)

    class Data(pj.Problem):
        domain = pj.Interval(0.0, 1.0)
        needs = ("u_xx",)
        conditions = (obs,)

        def residual(self, x, d):
            return d.u_xx + jnp.sin(x[0])

    p = Data()
    all_terms_vanish(p, Exact(lambda x: jnp.sin(x[0]), 1, 1), key)
    term = p.terms()[1]
    assert term.sample(p, key, 999).shape == (8, 2)  # batch of 8 (point, value) rows


def test_bad_derivative_names_are_named():
    ns = pj.problem.NameSpace(("x", "y"), ("u",), None)
    with pytest.raises(ValueError, match="unknown derivative name 'u_q'"):
        ns.table(("u_q",))
    with pytest.raises(ValueError, match="did you mean 'lap_u'"):
        ns.table(("lap_v",))
    with pytest.raises(ValueError, match="up to fourth order, this is order 5"):
        ns.table(("u_xxyyx",))


def test_mixed_higher_and_biharmonic_names_parse_into_the_request():
    ns = pj.problem.NameSpace(("x", "y", "t"), ("u",), 2)
    table = ns.table(("u_xxy", "u_yxy", "u_xxyy", "u_xyt", "bilap_u", "u_xxxx"))
    r = table.request
    assert r.multi == ((0, 0, 1), (0, 1, 1), (0, 0, 1, 1), (0, 1, 2))
    assert r.bilaplacian == (1.0, 1.0, 0.0)  # spatial: not the time axis
    assert r.fourth == (0,)
    assert [table.slot(n).index for n in ("u_xxy", "u_yxy", "u_xxyy", "u_xyt")] == [0, 1, 2, 3]
