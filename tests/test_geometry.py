"""Tests for pinnjax.geometry.

All randomness is seeded; tolerances are justified next to each assertion.
Point-wise methods are batched with jit(vmap(...)) to keep the file fast.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnjax.geometry import (
    MAX_SOBOL_DIM,
    Ball,
    Box,
    Difference,
    Intersection,
    Interval,
    Polygon,
    SpaceTime,
    TimeInterval,
    Union,
    unit_samples,
)

KEY = jax.random.PRNGKey(0)


# Batched helpers, jitted with the (hashable, static) domain so each
# (domain, shape, part) compiles once for the whole file.


@functools.partial(jax.jit, static_argnums=0)
def _contains(domain, x):
    return jax.vmap(domain.contains)(x)


@functools.partial(jax.jit, static_argnums=(0, 2, 3))
def _on_parts(domain, x, parts, tol):
    return jnp.stack([jax.vmap(lambda p: domain.on_part(p, part, tol))(x) for part in parts])


@functools.partial(jax.jit, static_argnums=0)
def _normals(domain, x):
    return jax.vmap(domain.normal)(x)


@functools.partial(jax.jit, static_argnums=(0, 2))
def _normal_probes(domain, x, eps):
    n = jax.vmap(domain.normal)(x)
    return n, ~jax.vmap(domain.contains)(x + eps * n), jax.vmap(domain.contains)(x - eps * n)


@functools.partial(jax.jit, static_argnums=0)
def _distance(domain, x):
    return jax.vmap(domain.distance)(x)


def contains_all(domain, x):
    return np.asarray(_contains(domain, jnp.asarray(x)))


def on_parts(domain, x, parts, tol=1e-6):
    """(len(parts), n) booleans: x[j] on part parts[i]."""
    return np.asarray(_on_parts(domain, jnp.asarray(x), tuple(parts), tol))


def on_part_all(domain, x, part, tol=1e-6):
    return on_parts(domain, x, (part,), tol)[0]


def distances(domain, x):
    return np.asarray(_distance(domain, jnp.asarray(x)))


def in_bbox(domain, x, tol=1e-6):
    lo, hi = domain.bbox()
    return np.all((np.asarray(x) >= np.asarray(lo) - tol) & (np.asarray(x) <= np.asarray(hi) + tol))


def check_normals(domain, x, eps=1e-3, max_fail=0.01):
    """Normals at boundary points x are unit vectors pointing out of the domain.

    x + eps*n must be outside and x - eps*n inside. The probe can legitimately
    fail only within ~eps of a corner / vertex where it crosses another face
    (at most a few * eps / perimeter of the samples, i.e. well below 1%), so
    up to `max_fail` = 1% failures are allowed; a wrong orientation fails ~100%.
    """
    normals, outside, inside = (np.asarray(a) for a in _normal_probes(domain, jnp.asarray(x), eps))
    # Unit length up to float32 rounding (~1e-7 relative; 1e-5 is generous).
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
    assert np.mean(outside) >= 1 - max_fail, np.mean(outside)
    assert np.mean(inside) >= 1 - max_fail, np.mean(inside)


def pinnacle_domain():
    """PINNacle Poisson 2d-C: square [-0.5, 0.5]^2 minus 4 disks of radius 0.1."""
    square = Box([-0.5, -0.5], [0.5, 0.5])
    holes = (
        Ball([0.3, 0.3], 0.1) | Ball([-0.3, 0.3], 0.1) | Ball([0.3, -0.3], 0.1) | Ball([-0.3, -0.3], 0.1)
    )
    return Difference(square, holes, labels=("outer", "inner"))


# ---- quasi-random generators -------------------------------------------------


def star_discrepancy_proxy(x, grid=16):
    """max over anchored boxes [0,a) x [0,b) on a grid of |fraction inside - ab|."""
    x = np.asarray(x)
    a = np.arange(1, grid + 1) / grid
    inside = (x[:, 0][:, None, None] < a[:, None]) & (x[:, 1][:, None, None] < a[None, :])
    return np.max(np.abs(inside.mean(0) - a[:, None] * a[None, :]))


def test_quasi_random_more_uniform_than_random():
    box = Box([0.0, 0.0], [1.0, 1.0])
    keys = jax.random.split(KEY, 4)
    disc = {
        m: np.mean([star_discrepancy_proxy(box.sample_interior(k, 1024, method=m)) for k in keys])
        for m in ("uniform", "halton", "sobol")
    }
    # Random points: discrepancy ~ 1/sqrt(n) ~ 0.03; low-discrepancy sets
    # ~ log(n)^2/n ~ 0.005 here. A factor 3 leaves a wide margin either way.
    assert disc["halton"] < disc["uniform"] / 3, disc
    assert disc["sobol"] < disc["uniform"] / 3, disc


def test_sobol_is_a_net():
    # Every one of the 2^10 dyadic intervals of length 2^-10 holds exactly one
    # of the first 2^10 points in each dimension (digital shifts preserve it).
    u = np.asarray(unit_samples(KEY, 1024, MAX_SOBOL_DIM, "sobol"))
    for j in range(MAX_SOBOL_DIM):
        counts = np.bincount((u[:, j] * 1024).astype(int), minlength=1024)
        assert np.all(counts == 1), j
    # Dimensions 0 and 1 form a (0, 10, 2)-net: one point per 2^-4 x 2^-6 box.
    cells = (u[:, 0] * 16).astype(int) * 64 + (u[:, 1] * 64).astype(int)
    assert np.all(np.bincount(cells, minlength=1024) == 1)


def test_sobol_matches_scipy_point_set():
    qmc = pytest.importorskip("scipy.stats.qmc")
    # Same Joe-Kuo direction numbers: with a zero shift our first 2^m points
    # are exactly scipy's unscrambled ones (scipy uses Gray-code order).
    from pinnjax.geometry._qmc import _sobol_directions

    v = _sobol_directions(MAX_SOBOL_DIM)
    idx = np.arange(256)
    bits = np.zeros((256, MAX_SOBOL_DIM), np.uint32)
    for k in range(8):
        bits ^= np.where(((idx >> k) & 1)[:, None] == 1, v[:, k], 0).astype(np.uint32)
    ours = bits / 2.0**32
    ref = qmc.Sobol(MAX_SOBOL_DIM, scramble=False).random(256)
    # Column 0 is a permutation of k/256, so sorting rows by it aligns the sets.
    np.testing.assert_array_equal(ours[np.argsort(ours[:, 0])], ref[np.argsort(ref[:, 0])])


def test_quasi_random_errors():
    with pytest.raises(ValueError, match="at most"):
        unit_samples(KEY, 8, MAX_SOBOL_DIM + 1, "sobol")
    with pytest.raises(ValueError, match="unknown sampling method"):
        Box([0, 0], [1, 1]).sample_interior(KEY, 8, method="latin")


# ---- primitives --------------------------------------------------------------


def test_interval():
    dom = Interval(-1.0, 2.0)
    assert dom.dim == 1 and dom.coord_names == ("x",)
    assert dom.boundary_parts == ("boundary", "left", "right")
    x = dom.sample_interior(KEY, 500)
    assert x.shape == (500, 1) and contains_all(dom, x).all() and in_bbox(dom, x)
    left = dom.sample_boundary(KEY, 500, part="left")
    np.testing.assert_array_equal(left, -1.0)
    np.testing.assert_array_equal(dom.sample_boundary(KEY, 500, part="x_max"), 2.0)  # alias
    both = dom.sample_boundary(KEY, 500)
    # Both endpoints have counting measure 1: fraction 1/2, binomial std
    # 0.022, tolerance 0.09 ~ 4 sigma.
    assert abs(np.mean(np.asarray(both) == -1.0) - 0.5) < 0.09
    on = on_parts(dom, left, ("left", "right"))
    assert on[0].all() and not on[1].any()
    check_normals(dom, both)
    np.testing.assert_array_equal(dom.normal(jnp.array([-1.0])), [-1.0])
    np.testing.assert_array_equal(distances(dom, both), 0.0)
    assert np.all(distances(dom, x) > 0)
    # (x + 1)(2 - x) / 3: slope +1 / -1 at the ends (first-order normalised), 3/4 at the midpoint
    assert np.isclose(dom.distance(jnp.array([0.5])), 0.75)
    np.testing.assert_allclose([jax.grad(dom.distance)(jnp.array([e]))[0] for e in (-1.0, 2.0)], [1.0, -1.0])
    assert not dom.contains(jnp.array([2.01])) and dom.contains(jnp.array([2.0]))


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_box_sampling_and_parts(dim):
    lower, upper = [-1.0, 0.0, 2.0][:dim], [1.0, 0.5, 5.0][:dim]
    box = Box(lower, upper)
    x = box.sample_interior(KEY, 1000, method="halton")
    assert x.shape == (1000, dim) and contains_all(box, x).all() and in_bbox(box, x)
    parts = box.boundary_parts[1:]
    for i, part in enumerate(parts):
        xb = box.sample_boundary(jax.random.fold_in(KEY, i), 1000, part=part)
        on = on_parts(box, xb, parts)
        assert on[i].all(), part
        # The opposite face is disjoint from this one.
        assert not on[i ^ 1].any(), part
        assert contains_all(box, xb).all() and in_bbox(box, xb)
    xb = box.sample_boundary(KEY, 1000)
    assert on_part_all(box, xb, "boundary").all()
    check_normals(box, xb)
    # distance: 0 on the boundary, positive inside, at most the inscribed radius.
    assert np.allclose(distances(box, xb), 0.0, atol=1e-6)
    d_in = distances(box, x)
    assert np.all(d_in > 0) and np.all(d_in <= 0.5 * min(u - lo for lo, u in zip(lower, upper)) + 1e-6)


def test_box_boundary_proportional_to_measure():
    box = Box([0.0, 0.0], [2.0, 1.0])
    parts = ("y_min", "y_max")
    xb = box.sample_boundary(KEY, 6000)
    long_faces = on_parts(box, xb, parts).any(0)
    # Long faces: 2 + 2 out of perimeter 6 -> 2/3. Binomial std
    # sqrt(2/9 / 6000) = 0.006; tolerance 0.025 ~ 4 sigma.
    assert abs(np.mean(long_faces) - 2 / 3) < 0.025
    assert np.isclose(box.boundary_measure(), 6.0) and np.isclose(box.boundary_measure("x_min"), 1.0)
    # Quasi-random face choice is stratified: within ~1/n of 2/3.
    xq = box.sample_boundary(KEY, 6000, method="sobol")
    assert abs(np.mean(on_parts(box, xq, parts).any(0)) - 2 / 3) < 0.005


def test_box_names_and_parts():
    assert Box([0] * 4, [1] * 4).coord_names == ("x0", "x1", "x2", "x3")
    assert Box([0] * 3, [1] * 3).coord_names == ("x", "y", "z")
    box = Box([0, 0], [1, 1], names=("r", "s"))
    assert box.coord_names == ("r", "s")
    assert box.boundary_parts == ("boundary", "r_min", "r_max", "s_min", "s_max")
    assert Box([0.0], [1.0]).sample_boundary(KEY, 4, part="right").tolist() == [[1.0]] * 4
    with pytest.raises(ValueError, match=r"unknown boundary part 'top'.*valid parts.*r_min"):
        box.sample_boundary(KEY, 4, part="top")
    with pytest.raises(ValueError, match="unknown boundary part"):
        box.on_part(jnp.zeros(2), "x_min")


@pytest.mark.parametrize("dim", [2, 3])
def test_ball(dim):
    center = np.array([0.5, -1.0, 2.0][:dim])
    ball = Ball(center, 2.0)
    x = np.asarray(ball.sample_interior(KEY, 4000))
    assert contains_all(ball, x).all() and in_bbox(ball, x)
    # Uniform in volume: P(|x - c| < R/2) = 2^-dim. Binomial std <= 0.008 at
    # n = 4000; tolerance 0.03 ~ 4 sigma.
    r = np.linalg.norm(x - center, axis=1)
    assert abs(np.mean(r < 1.0) - 0.5**dim) < 0.03
    xb = np.asarray(ball.sample_boundary(KEY, 4000, method="sobol"))
    # On the sphere up to float32 rounding of coordinates ~ 4 (a few 1e-7).
    np.testing.assert_allclose(np.linalg.norm(xb - center, axis=1), 2.0, atol=1e-5)
    assert on_part_all(ball, xb, "sphere").all()
    # Uniform on the sphere: the mean direction is ~0 (std 1/sqrt(n dim) < 0.01
    # for random points, smaller for Sobol); 0.05 would catch e.g. a
    # hemisphere bias.
    assert np.all(np.abs((xb - center).mean(0) / 2.0) < 0.05)
    check_normals(ball, xb)
    assert np.allclose(distances(ball, xb), 0.0, atol=1e-5)
    assert np.all(distances(ball, x) > -1e-6)
    assert np.isclose(ball.volume(), math.pi * 4 if dim == 2 else 4 / 3 * math.pi * 8)
    assert np.isclose(ball.boundary_measure(), math.pi * 4 if dim == 2 else 4 * math.pi * 4)


def test_ball_quasi_random_interior_4d():
    ball = Ball([0.0] * 4, 1.0)
    x = ball.sample_interior(KEY, 512, method="sobol")  # uses 5 unit dims
    assert contains_all(ball, x).all()
    assert ball.coord_names == ("x0", "x1", "x2", "x3")


L_SHAPE = [(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)]  # counterclockwise


@pytest.mark.parametrize(
    "vertices",
    [[(0, 0), (1, 0), (0, 1)], L_SHAPE, L_SHAPE[::-1]],
    ids=["triangle", "L-ccw", "L-cw"],
)
def test_polygon(vertices):
    poly = Polygon(vertices)
    k = len(vertices)
    x = poly.sample_interior(KEY, 1000, method="halton")
    assert contains_all(poly, x).all() and in_bbox(poly, x)
    xb = poly.sample_boundary(KEY, 1000)
    assert on_part_all(poly, xb, "boundary").all()
    check_normals(poly, xb)
    edges = poly.boundary_parts[1:]
    assert edges == tuple(f"edge{i}" for i in range(k))
    for i in (0, 3 % k):
        xe = poly.sample_boundary(KEY, 1000, part=edges[i])
        on = on_parts(poly, xe, edges)
        assert on[i].all()
        # Not on a non-adjacent edge (edges only meet at shared vertices).
        if k > 3:
            assert not on[(i + 2) % k].any()
    # signed distance: 0 on the edges (float32 rounding), positive inside, negative outside
    assert np.allclose(distances(poly, xb), 0.0, atol=1e-5)
    assert np.all(distances(poly, x) > 0)
    outside = jnp.array([[1.5, 1.5], [-0.5, 0.5], [0.5, -0.5]])
    assert np.all(distances(poly, outside) < 0)
    # first-order normalised: slope 1 across the middle of edge0 (float32 rounding)
    p0, p1 = np.asarray(vertices[0], np.float32), np.asarray(vertices[1], np.float32)
    mid = jnp.asarray(0.5 * (p0 + p1)) - 1e-5 * poly.normal(jnp.asarray(0.5 * (p0 + p1)))
    assert abs(float(jnp.linalg.norm(jax.grad(poly.distance)(mid))) - 1.0) < 1e-3


def test_polygon_membership_and_measure():
    poly = Polygon(L_SHAPE[::-1])  # clockwise input
    pts = jnp.array([[0.5, 0.5], [1.5, 1.5], [1.0, 1.5], [2.0, 0.5], [0.5, 2.0], [-0.1, 0.5]])
    np.testing.assert_array_equal(contains_all(poly, pts), [True, False, True, True, True, False])
    assert np.isclose(poly.volume(), 3.0) and np.isclose(poly.boundary_measure(), 8.0)
    xb = poly.sample_boundary(KEY, 4000)
    # "edge0" of the reversed L joins (0,2)->(1,2): length 1 of 8. Binomial
    # std sqrt(1/8*7/8/4000) = 0.005; tolerance 0.02 ~ 4 sigma.
    assert abs(np.mean(on_part_all(poly, xb, "edge0")) - 1 / 8) < 0.02
    n = np.asarray(_normals(poly, jnp.array([[0.5, 2.0], [1.5, 1.0], [0.0, 1.0]])))
    np.testing.assert_allclose(n, [[0, 1], [0, 1], [-1, 0]], atol=1e-6)


# ---- CSG ---------------------------------------------------------------------


def test_pinnacle_difference():
    dom = pinnacle_domain()
    pts = jnp.array([[0.0, 0.0], [0.3, 0.3], [-0.3, -0.25], [0.4, 0.3], [0.5, 0.5], [0.6, 0.0], [0.3, 0.35]])
    # centre in, hole centre out, inside a hole out, on a hole circle in
    # (closed set), corner in, outside the square out, inside a hole out.
    np.testing.assert_array_equal(contains_all(dom, pts), [True, False, False, True, True, False, False])
    x = dom.sample_interior(KEY, 2000, method="sobol")
    assert not np.isnan(x).any() and contains_all(dom, x).all() and in_bbox(dom, x)
    centers = np.array([[0.3, 0.3], [-0.3, 0.3], [0.3, -0.3], [-0.3, -0.3]])
    dist = np.linalg.norm(np.asarray(x)[:, None] - centers, axis=2).min(1)
    assert np.all(dist >= 0.1 - 1e-6)

    parts = ("inner", "outer", "sphere", "x_min")
    inner = dom.sample_boundary(KEY, 2000, part="inner")
    on = on_parts(dom, inner, parts)
    assert on[0].all() and not on[1].any() and on[2].all() and not on[3].any()
    check_normals(dom, inner)  # hole normals point into the holes
    outer = dom.sample_boundary(KEY, 2000, part="outer")
    on = on_parts(dom, outer, parts)
    assert on[1].all() and not on[0].any() and not on[2].any()
    one = dom.sample_boundary(KEY, 100, part="inner.a.a.a.sphere")  # the disk at (0.3, 0.3)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(one) - centers[0], axis=1), 0.1, atol=1e-5)
    n = dom.normal(jnp.array([0.3, 0.2]))  # bottom of the (0.3, 0.3) hole
    np.testing.assert_allclose(n, [0.0, 1.0], atol=1e-5)

    xb = dom.sample_boundary(KEY, 4000)
    check_normals(dom, xb)
    frac_inner = np.mean(on_parts(dom, xb, parts)[0])
    # Measure: holes 4 * 2 pi 0.1 = 2.513 of total 4 + 2.513. Binomial std
    # 0.008; tolerance 0.03 ~ 4 sigma.
    assert abs(frac_inner - 2.513 / 6.513) < 0.03
    # Estimates from 4096 fixed points: std ~0.005 relative -> 2-3%.
    assert abs(dom.volume() - (1 - 4 * math.pi * 0.01)) < 0.02
    assert np.isclose(dom.boundary_measure("inner"), 0.8 * math.pi, rtol=0.03)
    assert np.isclose(dom.boundary_measure(), 4 + 0.8 * math.pi, rtol=0.03)


def test_difference_notch_and_shared_faces():
    # L-shape as a square minus a corner square sharing two of its faces.
    lshape = Box([-1, -1], [1, 1]) - Box([0, -1], [1, 0])
    assert not lshape.contains(jnp.array([0.5, -0.5])) and lshape.contains(jnp.array([0.0, -0.5]))
    xb = np.asarray(lshape.sample_boundary(KEY, 2000))
    # No samples on the removed parts of the outer square (x = 1, y < 0).
    assert not np.any((np.abs(xb[:, 0] - 1) < 1e-6) & (xb[:, 1] < -1e-3))
    # Perimeter 8; the notch faces (x = 0 and y = 0 inside) have length 2:
    # fraction 1/4, std 0.01, tolerance 0.04 ~ 4 sigma.
    notch = on_part_all(lshape, xb, "b")
    assert abs(np.mean(notch) - 0.25) < 0.04
    # Measure estimates (4096 fixed points): ~1% std -> 3%.
    assert np.isclose(lshape.boundary_measure(), 8.0, rtol=0.03)
    assert np.isclose(lshape.volume(), 3.0, rtol=0.03)
    check_normals(lshape, xb)


def test_union():
    side = Union(Box([0, 0], [1, 1]), Box([1, 0], [2, 1]), labels=("west", "east"))  # shared face x = 1
    assert "west" in side.boundary_parts and "east.x_max" in side.boundary_parts
    xb = np.asarray(side.sample_boundary(KEY, 2000))
    on = on_parts(side, xb, ("west", "east", "x_max", "east.x_max"))
    # x_max of the west box is the shared face, so "x_max" is only the east one.
    assert np.array_equal(on[2], on[3]) and not np.any(on[0] & on[1] & ~on[2])
    # The shared face is interior: no boundary samples with x = 1, 0 < y < 1.
    assert not np.any((np.abs(xb[:, 0] - 1) < 1e-6) & (xb[:, 1] > 1e-3) & (xb[:, 1] < 1 - 1e-3))
    assert np.isclose(side.boundary_measure(), 6.0, rtol=0.03)  # estimate, see above
    check_normals(side, xb)

    disks = Ball([0.0, 0.0], 1.0) | Ball([1.0, 0.0], 1.0)
    assert disks.boundary_parts[:4] == ("boundary", "sphere", "a", "b")
    pts = jnp.array([[-0.9, 0.0], [1.9, 0.0], [0.5, 0.0], [0.5, 1.0], [3.0, 0.0]])
    np.testing.assert_array_equal(contains_all(disks, pts), [True, True, True, False, False])
    x = disks.sample_interior(KEY, 2000)
    assert contains_all(disks, x).all() and in_bbox(disks, x)
    # The union samples cover both disks equally (symmetry); std 0.011 -> 0.045.
    assert abs(np.mean(np.asarray(x)[:, 0] < 0.5) - 0.5) < 0.045
    xb = np.asarray(disks.sample_boundary(KEY, 2000))
    # Every boundary point is on one circle and not inside the other disk.
    d0 = np.linalg.norm(xb, axis=1)
    d1 = np.linalg.norm(xb - [1.0, 0.0], axis=1)
    assert np.all(np.minimum(d0, d1) > 1 - 1e-5) and np.allclose(np.minimum(d0, d1), 1.0, atol=1e-5)
    check_normals(disks, xb)


def test_intersection():
    lens = Intersection(Ball([0.0, 0.0], 1.0), Ball([1.0, 0.0], 1.0))
    pts = jnp.array([[0.5, 0.0], [0.5, 0.9], [-0.5, 0.0], [1.5, 0.0], [0.5, math.sqrt(3) / 2]])
    np.testing.assert_array_equal(contains_all(lens, pts), [True, False, False, False, True])
    x = lens.sample_interior(KEY, 1000)
    assert contains_all(lens, x).all() and in_bbox(lens, x)
    xa = lens.sample_boundary(KEY, 1000, part="a")
    on = on_parts(lens, xa, ("a", "b"))
    # The arc of the first circle lies on the right (x >= 0.5), and it is not
    # on the second circle except at the two tips.
    assert on[0].all() and np.mean(on[1]) < 0.01 and np.all(np.asarray(xa)[:, 0] >= 0.5 - 1e-5)
    xb = lens.sample_boundary(KEY, 1000)
    check_normals(lens, xb)

    same_side = Box([0, 0], [1, 1]) & Box([0, 0], [2, 1])  # coincident faces
    assert np.isclose(same_side.boundary_measure(), 4.0, rtol=0.03)  # counted once
    xb = np.asarray(same_side.sample_boundary(KEY, 2000))
    # Bottom face y = 0 (length 1 of 4): fraction 1/4, std 0.01 -> 0.04.
    assert abs(np.mean(np.abs(xb[:, 1]) < 1e-6) - 0.25) < 0.04
    check_normals(same_side, xb)


def test_csg_nested_with_polygon():
    tri = Polygon([(0, 0), (2, 0), (1, 2)])
    dom = (tri - Ball([1.0, 0.6], 0.3)) & Box([0, 0], [2, 1])
    pts = jnp.array([[1.0, 0.6], [1.0, 0.1], [1.0, 1.5], [0.2, 0.1]])
    np.testing.assert_array_equal(contains_all(dom, pts), [False, True, False, True])
    x = dom.sample_interior(KEY, 1000, method="halton")
    assert contains_all(dom, x).all()
    check_normals(dom, dom.sample_boundary(KEY, 1000))


# ---- space-time --------------------------------------------------------------


def test_spacetime():
    space = pinnacle_domain()
    dom = space * TimeInterval(0.0, 2.0)
    assert isinstance(dom, SpaceTime) and dom.dim == 3 and dom.coord_names == ("x", "y", "t")
    assert dom.boundary_parts[:4] == ("boundary", "initial", "final", "x_min")
    lo, hi = dom.bbox()
    np.testing.assert_allclose(lo, [-0.5, -0.5, 0.0])
    np.testing.assert_allclose(hi, [0.5, 0.5, 2.0])
    x = dom.sample_interior(KEY, 1000, method="sobol")
    assert contains_all(dom, x).all() and in_bbox(dom, x)
    parts = ("initial", "final", "inner", "outer")
    x0 = np.asarray(dom.sample_boundary(KEY, 1000, part="initial"))
    assert np.all(x0[:, 2] == 0.0) and contains_all(space, x0[:, :2]).all()
    on = on_parts(dom, x0, parts)
    assert on[0].all() and not on[1].any()
    x1 = np.asarray(dom.sample_boundary(KEY, 1000, part="final"))
    assert np.all(x1[:, 2] == 2.0)
    xi = dom.sample_boundary(KEY, 1000, part="inner")
    on = on_parts(dom, xi, parts)
    assert on[2].all() and not on[3].any() and not on[0].any()
    xb = np.asarray(dom.sample_boundary(KEY, 1000))
    # Lateral boundary: spatial boundary points, times spread over [0, 2]
    # (uniform mean 1, std 0.58/sqrt(1000) = 0.02; tolerance 0.08 ~ 4 sigma).
    assert on_part_all(space, xb[:, :2], None).all() and abs(xb[:, 2].mean() - 1.0) < 0.08
    assert np.all(np.asarray(_normals(dom, jnp.asarray(xb)))[:, 2] == 0.0)
    for pts in (xb, xi, x0, x1):
        check_normals(dom, pts)
    with pytest.raises(ValueError, match=r"unknown boundary part 'top'.*initial"):
        dom.sample_boundary(KEY, 4, part="top")
    # the spatial (CSG) distance: 0 on the lateral boundary, positive inside
    np.testing.assert_allclose(distances(dom, jnp.asarray(xb)), 0.0, atol=1e-6)
    assert np.all(distances(dom, x) > 0)


def test_spacetime_interval_distance():
    dom = Interval(0.0, 1.0) * TimeInterval(0.0, 1.0)
    assert dom.coord_names == ("x", "t")
    assert dom.boundary_parts == ("boundary", "initial", "final", "left", "right")
    xl = dom.sample_boundary(KEY, 500, part="x_min")  # alias of "left"
    assert np.all(np.asarray(xl)[:, 0] == 0.0)
    xb = dom.sample_boundary(KEY, 500)
    np.testing.assert_allclose(distances(dom, xb), 0.0, atol=1e-6)
    assert np.all(distances(dom, dom.sample_interior(KEY, 500)) > 0)
    x0 = dom.sample_boundary(KEY, 500, part="initial")
    np.testing.assert_array_equal(jax.vmap(dom.time_distance)(x0), 0.0)
    check_normals(dom, xb)
    check_normals(dom, x0)
    box_time = Box([0, 0], [1, 1]) * TimeInterval(0, 1)
    xb = box_time.sample_boundary(KEY, 1000)
    np.testing.assert_allclose(distances(box_time, xb), 0.0, atol=1e-6)
    # Lateral area 4 x 1, each face 1/4 of it; std 0.014 -> 0.06.
    assert abs(np.mean(on_part_all(box_time, xb, "y_max")) - 0.25) < 0.06


# ---- sampling semantics --------------------------------------------------------


@pytest.mark.parametrize("method", ["uniform", "halton", "sobol"])
def test_sampling_is_pure_and_jittable(method):
    dom = pinnacle_domain()

    @jax.jit
    def draw(key):
        return (
            dom.sample_interior(key, 256, method=method),
            dom.sample_boundary(key, 64, part="inner", method=method),
        )

    a1, b1 = draw(KEY)
    a2, b2 = draw(KEY)
    a3, b3 = draw(jax.random.PRNGKey(1))
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)
    assert not np.allclose(a1, a3) and not np.allclose(b1, b3)
    np.testing.assert_array_equal(a1, dom.sample_interior(KEY, 256, method=method))  # eager == jit
    # vmap over keys works (batched while_loop) and gives valid points.
    batched = jax.vmap(lambda k: dom.sample_interior(k, 256, method=method))(jax.random.split(KEY, 3))
    assert batched.shape == (3, 256, 2) and contains_all(dom, batched.reshape(-1, 2)).all()


def test_x64_dtype():
    with jax.enable_x64(True):
        box = Box([0.0, 0.0], [1.0, 1.0])
        assert box.sample_interior(KEY, 8).dtype == jnp.float64
        assert box.sample_boundary(KEY, 8, method="sobol").dtype == jnp.float64
        assert box.bbox()[0].dtype == jnp.float64
    assert Box([0.0], [1.0]).sample_interior(KEY, 8).dtype == jnp.float32


# ---- validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Box([0, 0], [1, 0]), r"empty interior.*lower\[1\]"),
        (lambda: Box([0, 0], [1]), "same length"),
        (lambda: Interval(1.0, 1.0), "empty interior"),
        (lambda: Interval(0.0, float("nan")), "finite"),
        (lambda: TimeInterval(1.0, 0.0), "TimeInterval has an empty interior"),
        (lambda: Ball([0, 0], 0.0), "radius must be > 0"),
        (lambda: Polygon([(0, 0), (1, 1)]), "at least 3 vertices"),
        (lambda: Polygon([(0, 0), (1, 1), (2, 2)]), "area is zero"),
        (lambda: Polygon([(0, 0), (2, 0), (0, 1), (1, 1)]), "not simple"),
        (lambda: Polygon([(0, 0), (1, 0), (1, 0), (0, 1)]), "zero length"),
        # found when first sampled or measured: a domain's definition runs no JAX computation
        (lambda: (Box([0, 0], [1, 1]) - Box([-1, -1], [2, 2])).volume(), "empty interior"),
        (lambda: Box([0, 0], [1, 1]) & Box([2, 2], [3, 3]), "empty interior"),
        (lambda: Box([0, 0], [1, 1]) | Ball([0, 0, 0], 1.0), "same dim"),
        (lambda: Box([0, 0], [1, 1], names=("x",)), "names"),
        (lambda: Difference(Box([0, 0], [1, 1]), Ball([0, 0], 0.5), labels=("a", "a")), "labels"),
    ],
)
def test_bad_inputs(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_sampling_arguments():
    box = Box([0, 0], [1, 1])
    with pytest.raises(ValueError, match="positive int"):
        box.sample_interior(KEY, 0)
    with pytest.raises(ValueError, match="positive int"):
        box.sample_interior(KEY, 2.5)
    with pytest.raises(TypeError):
        box * Box([0], [1])
    # A part of an operand that lies entirely off the result's boundary.
    lshape = Box([-1, -1], [1, 1]) - Box([0, -1], [1, 0])
    with pytest.raises(ValueError, match=r"part 'b.x_max'.*empty"):
        lshape.sample_boundary(KEY, 4, part="b.x_max")
