"""Exact Dirichlet conditions on CSG domains: R-function distances, part distances, the
transfinite interpolation of per-part data, and ``model.hard_constraint`` built from a
problem's Dirichlet conditions. All in float64 (``strict_jax``)."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pinnjax as pj
from pinnjax.cli import main
from pinnjax.config import ConfigError, config_from_dict
from pinnjax.geometry import AbstractDomain, Ball, Box
from pinnjax.train import make_spec
from problems import AllenCahn1D, Heat1D, Poisson2DC

pytestmark = pytest.mark.usefixtures("strict_jax")

# float64 boundary points carry rounding of a few ulps (cos / sin of the disk sampler), and
# every distance here is Lipschitz with a constant of order one: 1e-12 is far above that
# rounding and far below the smallest interior value checked.
ROUND_OFF = 1e-12


def _difference():
    return Poisson2DC().domain  # square minus four disks, parts "outer" / "inner"


def _union():
    # an L-shaped union of overlapping boxes and a disk bulging out of the second box
    boxes = pj.Union(Box([0.0, 0.0], [2.0, 1.0]), Box([1.0, 0.5], [3.0, 2.0]), labels=("low", "high"))
    return pj.Union(boxes, Ball([3.0, 1.25], 0.5), labels=("boxes", "cap"))


def _intersection():
    # a quarter of a disk cut by a box whose corner is the disk's centre
    return pj.Intersection(Box([0.0, 0.0], [2.0, 2.0]), Ball([0.0, 0.0], 1.5), labels=("box", "disk"))


DOMAINS = {
    "difference": (_difference, ("outer", "inner")),
    "union": (_union, ("boxes.low", "boxes.high", "cap")),
    "intersection": (_intersection, ("box", "disk")),
}


def _vmap(fn, xs):
    return np.asarray(jax.vmap(fn)(xs))


def _part_values(parts):
    """Dirichlet data per part: a function of x on every other part, constants between."""
    return {part: (lambda x, k=k: jnp.sin(x[0] + k) + x[1] ** 2) if k % 2 else float(k) for k, part in enumerate(parts)}


def _probe(domain, parts):
    """Per point, in one compiled pass: the signed distance, its gradient just inside (1e-10
    along the inward normal: a Polygon's distance is signed by membership, so only one-sided
    gradients exist on its boundary), the outward normal, every part's distance, and the
    constraint's (g, D) for the data of `_part_values`."""
    constraint = pj.exact_dirichlet(domain, _part_values(parts))

    def one(x):
        n = domain.normal(x)
        return (domain.distance(x), jax.grad(domain.distance)(x - 1e-10 * n), n,
                jnp.stack([domain.part_distance(x, part) for part in parts])) + constraint(x)

    return jax.jit(jax.vmap(one))


@pytest.mark.parametrize("name", DOMAINS)
def test_distances_and_interpolated_data_on_every_part(name, key):
    domain, parts = DOMAINS[name][0](), DOMAINS[name][1]
    values = _part_values(parts)
    probe = _probe(domain, parts)
    D, _, _, phis, g, D_c = map(np.asarray, probe(domain.sample_interior(key, 400)))
    assert np.all(D > 0) and np.all(phis > 0) and np.all(D_c > 0) and np.all(np.isfinite(g))
    for i, part in enumerate(parts):
        xb = domain.sample_boundary(jax.random.fold_in(key, i), 200, part=part)
        D, grad, normal, phis, g, D_c = map(np.asarray, probe(xb))
        np.testing.assert_allclose(D, 0.0, atol=ROUND_OFF, err_msg=part)
        np.testing.assert_allclose(D_c, 0.0, atol=ROUND_OFF, err_msg=part)
        np.testing.assert_allclose(phis[:, i], 0.0, atol=ROUND_OFF, err_msg=part)  # the part's own distance
        want = np.asarray(jax.vmap(lambda x: jnp.asarray(values[part](x) if callable(values[part]) else values[part]))(xb))
        # g is off by phi_i / phi_j ~ 1e-16 / (distance to the nearest other part) at worst
        np.testing.assert_allclose(g, want, atol=1e-9, err_msg=part)
        # away from where this part meets another (> 0.05 from it), the other parts' distances are
        # positive, and grad D = -normal (first-order normalisation: the R0 functions are only
        # normalised away from corners; 1e-10 inside, the gradient turns by ~1e-10 / (distance
        # to a corner), and the seeds are fixed)
        others = np.delete(phis, i, axis=1)
        smooth = np.all(others > 0.05, axis=1)
        assert smooth.sum() > 50, part
        np.testing.assert_allclose(grad[smooth], -normal[smooth], atol=1e-5, err_msg=part)
    # outside the domain the signed distance is negative
    lo, hi = domain.bbox()
    box = jax.random.uniform(key, (2000, 2), jnp.float64, lo - 0.5, hi + 0.5)
    out = np.asarray(box)[~_vmap(domain.contains, box)]
    assert out.shape[0] > 100 and np.all(_vmap(domain.distance, jnp.asarray(out)) < 0)


def test_interpolation_at_a_corner_where_two_parts_meet():
    # the face x_min (value 1) meets y_min (value 3) at the origin: weights 0 / 0 there
    constraint = pj.exact_dirichlet(Box([0.0, 0.0], [1.0, 1.0]), {"x_min": 1.0, "y_min": 3.0, "x_max": 0.0, "y_max": 0.0})
    g, D = constraint(jnp.zeros(2))
    assert float(g) == 2.0 and float(D) == 0.0  # the mean of the two values, and no NaN
    assert np.isfinite(np.asarray(jax.grad(lambda x: constraint(x)[0])(jnp.array([0.3, 0.2])))).all()


class _UnionProblem(pj.Problem):
    """lap u = 0 on `_union()` with a function of x on one part and constants on the others."""

    domain = _union()
    needs = ("u", "u_x", "lap_u")
    conditions = (
        pj.Dirichlet(lambda x: jnp.cos(x[0]) * x[1], part="boxes.low"),
        pj.Dirichlet(2.0, part="boxes.high"),
        pj.Dirichlet(-1.0, part="cap"),
    )

    def residual(self, x, d):
        return d.lap_u


@pytest.mark.parametrize("make", [Poisson2DC, _UnionProblem])
def test_solution_jet_through_the_engine_equals_autodiff(make, key):
    """u = g + D * network: the engine's value, u_x and lap_u (network by the forward pass,
    g and D through Leibniz) equal jax.hessian of the composed function at interior points."""
    problem = pj.with_exact_dirichlet(make())
    assert problem.has_constraint and type(problem).__name__ == make.__name__
    net = pj.MLP(2, 1, 16, 2, "tanh", key=key, dtype=jnp.float64)

    def u(x):
        g, D = problem.constraint(x)
        return g + D * net(x)[0]

    xs = problem.domain.sample_interior(jax.random.fold_in(key, 1), 8)
    table = problem.namespace.table(("u", "u_x", "lap_u"))
    d = jax.jit(lambda xs: problem.fields(net, xs, table))(xs)
    # the references in one compiled program (op by op, through the R-functions, they took seconds)
    value, grad, H = jax.jit(lambda xs: (jax.vmap(u)(xs), jax.vmap(jax.grad(u))(xs), jax.vmap(jax.hessian(u))(xs)))(xs)
    # float64 rounding through the R-functions (sqrt of sums of squares) and a small network
    np.testing.assert_allclose(d["u"], value, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(d["u_x"], grad[:, 0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(d["lap_u"], jnp.trace(H, axis1=1, axis2=2), rtol=1e-9, atol=1e-10)


def test_hard_constraint_drops_the_dirichlet_terms_only_and_names_bad_problems():
    cfg = config_from_dict({"problem": {"name": "poisson2d_c"}, "model": {"hard_constraint": True}})
    assert make_spec(Poisson2DC(), cfg).term_names == ("residual",)
    plain = config_from_dict({"problem": {"name": "poisson2d_c"}})
    assert make_spec(Poisson2DC(), plain).term_names == ("residual", "outer", "circles")
    # a condition that is not Dirichlet stays a loss term
    hard_heat = config_from_dict({"problem": {"name": "heat1d"}, "model": {"hard_constraint": True}})
    assert make_spec(Heat1D(), hard_heat).term_names == ("residual", "initial")
    with pytest.raises(ConfigError, match=r"key 'model.hard_constraint'.*AllenCahn1D has no Dirichlet condition"):
        make_spec(AllenCahn1D(), config_from_dict({"problem": {"name": "allen_cahn1d"}, "model": {"hard_constraint": True}}))
    with pytest.raises(ValueError, match="unknown boundary part 'top'"):
        pj.exact_dirichlet(_difference(), {"top": 1.0})

    class NoFaceDistances(Box):
        _part_distance = AbstractDomain._part_distance  # only the whole boundary

    with pytest.raises(ValueError, match="boundary part 'x_min' of NoFaceDistances has no distance function"):
        pj.exact_dirichlet(NoFaceDistances([0.0], [1.0]), {"x_min": 1.0, "x_max": 0.0})


def test_cli_run_with_hard_constraint_holds_the_data_to_round_off(tmp_path, capsys):
    """A few Adam steps of the shipped poisson2d_c config with model.hard_constraint=true:
    the trained u equals 1 on the square and 0 on the circles to round-off, wherever evaluated."""
    config = os.path.join(os.path.dirname(__file__), "..", "configs", "poisson2d_c.yaml")
    out = tmp_path / "run"
    overrides = ["model.hard_constraint=true", "train.phases=[{optimiser: adam, steps: 20}]", "train.scan_steps=10",
                 "train.log_every=10", "sampling.interior=64", "eval.every=20", "output.plots=false"]
    args = ["run", config, "--out", str(out)] + [a for o in overrides for a in ("--set", o)]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        status = main(args)
    finally:
        os.chdir(cwd)
    assert status in (0, None), capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.isfinite(metrics["final_loss"])
    history = (out / "history.csv").read_text().splitlines()[0]
    assert "loss_residual" in history and "loss_outer" not in history  # no boundary terms trained
    solution = pj.load(out)  # the constraint comes back with the run's config
    assert solution.problem.has_constraint
    key = jax.random.PRNGKey(0)
    for part, value in (("outer", 1.0), ("inner", 0.0)):
        xb = np.asarray(solution.problem.domain.sample_boundary(key, 256, part=part))
        np.testing.assert_allclose(np.asarray(solution(xb))[:, 0], value, atol=ROUND_OFF, err_msg=part)


class _TwoOutputs(pj.Problem):
    """u has Dirichlet data on the square, v none."""

    domain = Box([0.0, 0.0], [1.0, 1.0])
    outputs = ("u", "v")
    needs = ("u", "v", "lap_u")
    conditions = (pj.Dirichlet(lambda x: 1.0 + x[0] * x[1], output="u"),)

    def residual(self, x, d):
        return d.lap_u + d.v


def test_exact_dirichlet_leaves_other_conditions_and_outputs_free(key):
    """Heat 1-D: u = 0 exactly at x = 0, 1 for any network and time (its initial condition stays
    a loss term, see above); two outputs: the one without Dirichlet data is the network's own."""
    heat = pj.with_exact_dirichlet(Heat1D())
    net = pj.MLP(2, 1, 8, 2, "tanh", key=key, dtype=jnp.float64)
    t = jax.random.uniform(key, (16,), jnp.float64)
    for x0 in (0.0, 1.0):
        xs = jnp.stack([jnp.full_like(t, x0), t], axis=1)
        np.testing.assert_allclose(heat.predict(net, xs)[:, 0], 0.0, atol=ROUND_OFF)
    two = pj.with_exact_dirichlet(_TwoOutputs())
    net2 = pj.MLP(2, 2, 8, 2, "tanh", key=key, dtype=jnp.float64)
    xb = two.domain.sample_boundary(key, 32)
    xi = two.domain.sample_interior(key, 8)
    np.testing.assert_allclose(two.predict(net2, xb)[:, 0], 1.0 + xb[:, 0] * xb[:, 1], atol=ROUND_OFF)
    np.testing.assert_allclose(two.predict(net2, xi)[:, 1], jax.vmap(net2)(xi)[:, 1], rtol=1e-14)


def _box_product(x, lower, upper):
    """Independent formula: prod_k (x_k - a_k)(b_k - x_k) / L_k, scaled so that its peak is
    min_k L_k / 4 (numpy, not the library's slabs)."""
    lower, upper, x = np.asarray(lower), np.asarray(upper), np.asarray(x)
    lengths = upper - lower
    slabs = (x - lower) * (upper - x) / lengths
    return np.abs(np.prod(slabs, axis=-1)) * (lengths.min() / 4) / np.prod(lengths / 4)


def test_box_hard_constraint_distance_is_its_product_of_slabs(key):
    box = Box([0.0, -1.0], [2.0, 0.0])  # sides 2 and 1
    inside = box.sample_interior(key, 300)
    within = _vmap(lambda x: box._part_distance_within(x, "boundary"), inside)
    np.testing.assert_allclose(within, _box_product(inside, box.lower, box.upper), rtol=1e-13)
    assert np.all(within > 0)
    # R0 is a different function inside (the product is what a hard constraint now uses)
    assert np.max(np.abs(within - _vmap(lambda x: box._part_distance(x, "boundary"), inside))) > 1e-2
    edge = box.sample_boundary(key, 300)
    np.testing.assert_allclose(_vmap(lambda x: box._part_distance_within(x, "boundary"), edge), 0.0, atol=ROUND_OFF)
    # slope 1 across the faces of the shortest side (y), min L / L_x = 1/2 across the x faces
    grad = jax.grad(lambda x: box._part_distance_within(x, "boundary"))
    np.testing.assert_allclose(grad(jnp.array([1.0, 0.0 - 1e-12])), [0.0, -1.0], atol=1e-9)
    np.testing.assert_allclose(grad(jnp.array([0.0 + 1e-12, -0.5])), [0.5, 0.0], atol=1e-9)
    # a face part, and a box in more dimensions than SMOOTH_PRODUCT_MAX_DIM, keep R0
    x = inside[0]
    assert float(box._part_distance_within(x, "x_min")) == float(box._part_distance(x, "x_min"))
    box4 = Box([0.0] * 4, [1.0] * 4)
    x4 = jnp.full(4, 0.3)
    assert float(box4._part_distance_within(x4, "boundary")) == float(box4._part_distance(x4, "boundary"))


def test_csg_uses_the_box_product_only_where_the_domain_lies_inside_the_box(key):
    square_with_holes = _difference()  # the square is the Difference's first operand
    inside = square_with_holes.sample_interior(key, 300)
    outer = _vmap(lambda x: square_with_holes._part_distance_within(x, "outer"), inside)
    np.testing.assert_allclose(outer, _box_product(inside, [-0.5, -0.5], [0.5, 0.5]), rtol=1e-13)
    # the holes (the domain lies outside them): Euclidean distances to the circles, combined
    # harmonically, 1 / sum_i 1 / (|x - c_i| - r)
    centres = np.array([(0.3, 0.3), (-0.3, 0.3), (0.3, -0.3), (-0.3, -0.3)])
    euclid = np.linalg.norm(np.asarray(inside)[:, None, :] - centres[None], axis=-1) - 0.1
    inner = _vmap(lambda x: square_with_holes._part_distance_within(x, "inner"), inside)
    np.testing.assert_allclose(inner, 1.0 / np.sum(1.0 / euclid, axis=1), rtol=1e-12)
    # the public part_distance is unchanged (R0 of the quadratic disk distances)
    assert np.max(np.abs(inner - _vmap(lambda x: square_with_holes._part_distance(x, "inner"), inside))) > 1e-2
    # in a Union the product would vanish on a face's extension inside the other box: not used
    union = _union()
    pts = union.sample_interior(key, 300)
    for part in ("boxes.low", "boxes.high"):
        np.testing.assert_array_equal(_vmap(lambda x, p=part: union._part_distance_within(x, p), pts),
                                      _vmap(lambda x, p=part: union._part_distance(x, p), pts))
    # an Intersection lies inside both operands: its box part is the product
    cap = _intersection()
    pts = cap.sample_interior(key, 300)
    np.testing.assert_allclose(_vmap(lambda x: cap._part_distance_within(x, "box"), pts),
                               _box_product(pts, [0.0, 0.0], [2.0, 2.0]), rtol=1e-13)


def test_harmonic_conjunction_is_one_over_the_sum_of_reciprocals_and_zero_on_each_part():
    from pinnjax.geometry._rfunctions import harmonic_conjunction_all

    v = [jnp.float64(0.3), jnp.float64(0.7), jnp.float64(2.0)]
    assert float(harmonic_conjunction_all(v)) == pytest.approx(1.0 / (1 / 0.3 + 1 / 0.7 + 1 / 2.0), rel=1e-14)
    assert float(harmonic_conjunction_all([jnp.float64(0.0), jnp.float64(0.5)])) == 0.0
    assert float(harmonic_conjunction_all([jnp.float64(0.0), jnp.float64(0.0)])) == 0.0  # not 0 / 0
    # on part 0 (v0 = 0, v1 > 0) the gradient is v0's: d/da (a b / (a + b)) = b^2 / (a + b)^2 = 1 at a = 0
    grad = jax.grad(lambda a: harmonic_conjunction_all([a, jnp.float64(0.5)]))(jnp.float64(0.0))
    assert float(grad) == pytest.approx(1.0, rel=1e-14)
    assert np.isfinite(float(jax.grad(lambda a: harmonic_conjunction_all([a, a]))(jnp.float64(0.0))))


class _MixedData(pj.Problem):
    """u'' = 0 on [0, 1] with constant data u(0) = 2 and function data u(1) = cos(x)."""

    domain = pj.Interval(0.0, 1.0)
    needs = ("u_xx",)
    conditions = (
        pj.Dirichlet(2.0, part="left", name="left"),
        pj.Dirichlet(lambda x: jnp.cos(x[0]), part="right", name="right"),
    )

    def residual(self, x, d):
        return d.u_xx


def test_hard_constraint_constant_imposes_only_constant_data(key):
    def spec(problem, name, hard):
        return make_spec(problem, config_from_dict({"problem": {"name": name}, "model": {"hard_constraint": hard}}))

    # constant data are imposed, function data stay a loss term (never evaluated inside)
    assert spec(_MixedData(), "poisson1d", "constant").term_names == ("residual", "right")
    assert spec(_MixedData(), "poisson1d", True).term_names == ("residual",)
    mixed = pj.with_exact_dirichlet(_MixedData(), "constant")
    net = pj.MLP(1, 1, 8, 2, "tanh", key=key, dtype=jnp.float64)
    ends = jnp.array([[0.0], [1.0]])
    u = np.asarray(mixed.predict(net, ends)[:, 0])
    assert abs(u[0] - 2.0) < ROUND_OFF  # imposed
    g, D = mixed.constraint(jnp.array([0.7]))  # the constraint knows nothing of the right end's data
    assert float(g) == 2.0 and 0 < float(D)
    # a problem whose only Dirichlet data is its exact solution (PNd) trains as without the key
    from problems import PoissonND

    assert spec(PoissonND(), "poissonnd", "constant").term_names == spec(PoissonND(), "poissonnd", False).term_names
    # every Dirichlet datum constant: the same as true
    assert spec(Poisson2DC(), "poisson2d_c", "constant").term_names == ("residual",)
    with pytest.raises(ConfigError, match=r"key 'model.hard_constraint'"):
        config_from_dict({"problem": {"name": "poisson1d"}, "model": {"hard_constraint": "some"}})
    with pytest.raises(ValueError, match="impose must be one of all, constant"):
        pj.with_exact_dirichlet(_MixedData(), "function")
