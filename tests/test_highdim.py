"""Randomised Laplacians through the engine (Hutchinson, sparse), hard constraints on balls in
high dimension, the unit-ball problems, and the config keys that switch them on.

Unbiasedness is checked as a statistical test in float64: the mean of many independent
estimates is within 4.5 standard errors of the exact value (jax.hessian), a two-sided
4.5-sigma band that a correct estimator leaves with probability below 1e-5 per number. The
variance is checked against its closed form on a network whose Hessian is constant
(``u = sum_j a_j (w_j . x + b_j)^2``), within 4.5 standard errors of the sample variance
(estimated from the same draws, so no distributional assumption is needed)."""

import json
import types
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pinnjax as pj
import pinnjax.nn as pnn
from pinnjax.cli import main
from pinnjax.config import ConfigError, config_from_dict
from pinnjax.derivatives import Estimator, Request, jet_batch
from pinnjax.problems import AllenCahnBall, PoissonBall, SineGordonBall

pytestmark = pytest.mark.usefixtures("strict_jax")

ROOT = pathlib.Path(__file__).resolve().parents[1]
SIGMAS = 4.5
ESTIMATORS = [("hutchinson", "rademacher"), ("hutchinson", "gaussian"), ("sparse", "rademacher")]


def mlp(d, key, width=12, depth=2):
    net = pj.MLP(in_size=d, out_size=1, width=width, depth=depth, activation="tanh", key=key)
    return jax.tree.map(lambda a: a.astype(jnp.float64) if isinstance(a, jax.Array) else a, net)


class Quadratic(pnn.AbstractNetwork):
    """``u = sum_j a_j (W x + b)_j^2``: Hessian ``2 W^T diag(a) W`` at every point."""

    W: jax.Array
    b: jax.Array
    a: jax.Array

    def forward(self, x):
        z = pnn.linear(x, self.W, self.b)
        return pnn.linear(pnn.multiply(z, z), self.a[None, :])


def draws(model, xs, request, n, key):
    """``n`` independent estimates of every contraction at every point, (n, batch, n_contractions)."""
    one = jax.jit(lambda k: jet_batch(model, xs, request, key=k).contractions[:, 0, :])
    return jax.lax.map(one, jax.random.split(key, n), batch_size=500)


def assert_within_standard_errors(samples, exact):
    se = samples.std(0) / np.sqrt(samples.shape[0])
    z = np.abs(samples.mean(0) - exact) / se
    assert np.all(z < SIGMAS), (z, samples.mean(0), exact)


@pytest.mark.parametrize("method, distribution", ESTIMATORS)
def test_estimators_are_unbiased_for_weighted_contractions(key, method, distribution):
    """An MLP (non-constant Hessian), two contractions: an anisotropic one with a zero weight
    and a negative one; first derivatives asked beside them stay exact."""
    d = 6
    k_net, k_x, k_draw = jax.random.split(key, 3)
    net = mlp(d, k_net)
    xs = 0.7 * jax.random.normal(k_x, (3, d), jnp.float64)
    weights = ((1.0, 2.0, 0.0, 0.5, 3.0, 1.0), (-1.0, -1.0, -1.0, -1.0, 0.0, -2.0))
    request = Request(first=(0, 4), contractions=weights, estimator=Estimator(method, 3, distribution))
    H = jax.vmap(jax.hessian(lambda p: net(p)[0]))(xs)
    exact = jnp.einsum("ck,bkk->bc", jnp.asarray(weights), H)
    assert_within_standard_errors(np.asarray(draws(net, xs, request, 2500, k_draw)), np.asarray(exact))
    j = jet_batch(net, xs, request, key=k_draw)
    grad = jax.vmap(jax.grad(lambda p: net(p)[0]))(xs)
    np.testing.assert_allclose(j.first[:, 0, :], grad[:, jnp.array([0, 4])], rtol=1e-12, atol=1e-14)


def _theory_variance(method, distribution, A, n):
    """Variance of the mean of ``n`` per-direction estimates of ``tr A`` (module docs of
    pinnjax/derivatives/_estimators.py)."""
    diag = np.diag(A)
    if method == "sparse":
        per = len(diag) * np.sum(diag**2) - np.trace(A) ** 2
    elif distribution == "gaussian":
        per = 2 * np.sum(A**2)
    else:
        per = 2 * (np.sum(A**2) - np.sum(diag**2))
    return per / n


@pytest.mark.parametrize("method, distribution", ESTIMATORS)
def test_estimator_variance_matches_theory_on_a_quadratic(key, method, distribution):
    d, width, n = 5, 7, 2
    k1, k2, k3, k_draw = jax.random.split(key, 4)
    net = Quadratic(jax.random.normal(k1, (width, d), jnp.float64), jax.random.normal(k2, (width,), jnp.float64),
                    jax.random.normal(k3, (width,), jnp.float64))
    c = np.array([1.0, 0.5, 2.0, 1.0, 0.25])
    xs = jnp.zeros((1, d), jnp.float64)
    request = Request(contractions=(tuple(c),), estimator=Estimator(method, n, distribution))
    H = 2 * np.asarray(net.W).T @ np.diag(np.asarray(net.a)) @ np.asarray(net.W)
    A = np.sqrt(c)[:, None] * H * np.sqrt(c)[None, :]
    samples = np.asarray(draws(net, xs, request, 20000, k_draw))[:, 0, 0]
    assert_within_standard_errors(samples[:, None], np.array([np.sum(c * np.diag(H))]))
    dev2 = (samples - samples.mean()) ** 2
    z = abs(dev2.mean() - _theory_variance(method, distribution, A, n)) / (dev2.std() / np.sqrt(len(dev2)))
    assert z < SIGMAS, z


def test_fresh_directions_per_key_and_per_point(key):
    d = 8
    net = mlp(d, key)
    xs = jnp.tile(jnp.linspace(-0.5, 0.5, d)[None], (4, 1))  # four copies of one point
    request = Request.laplacian(d).estimated(Estimator("sparse", 2))
    a = jet_batch(net, xs, request, key=jax.random.PRNGKey(1)).contractions[:, 0, 0]
    b = jet_batch(net, xs, request, key=jax.random.PRNGKey(1)).contractions[:, 0, 0]
    c = jet_batch(net, xs, request, key=jax.random.PRNGKey(2)).contractions[:, 0, 0]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert len(np.unique(np.asarray(a))) > 1  # the same point, drawn independently per row
    with pytest.raises(ValueError, match="pass key"):
        jet_batch(net, xs, request)


def test_request_estimator_errors():
    with pytest.raises(ValueError, match="mix signs"):
        Request(contractions=((1.0, -1.0),), estimator=Estimator())
    with pytest.raises(ValueError, match="samples"):
        Estimator("hutchinson", 0)
    with pytest.raises(ValueError, match="method"):
        Estimator("exact")


# ---------------------------------------------------------------------------------------------
# Hard constraints and the unit-ball problems


@pytest.mark.parametrize("centred", [True, False])
@pytest.mark.parametrize("problem_cls", [PoissonBall, SineGordonBall, AllenCahnBall])
def test_ball_problem_source_is_the_exact_laplacian(key, problem_cls, centred):
    """The closed-form Laplacian of the exact solution equals the trace of jax.hessian, and the
    residual vanishes on it: tolerance a few hundred float64 ulps of terms of size ~d. For the
    centred and the published coefficients."""
    problem = problem_cls(dim=9, centred=centred)
    xs = jax.random.normal(key, (5, 9), jnp.float64) * 0.3
    u, lap = jax.jit(jax.vmap(problem._exact_and_laplacian))(xs)
    np.testing.assert_allclose(lap, jax.jit(jax.vmap(lambda x: jnp.trace(jax.hessian(problem.exact)(x))))(xs),
                               rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(u, jax.vmap(problem.exact)(xs), rtol=1e-14)
    residual = jax.vmap(lambda x, v, l: problem.residual(x, types.SimpleNamespace(u=v, lap_u=l)))
    np.testing.assert_allclose(residual(xs, u, lap), 0.0, atol=1e-11)
    assert abs(float(problem.exact(jnp.eye(9, dtype=jnp.float64)[0]))) < 1e-15  # zero on the sphere


def test_ball_problem_coefficients_centred_or_published():
    from problems.highdim import coefficients

    published, centred = coefficients(50, centred=False), coefficients(50)
    assert abs(centred.sum()) < 1e-12 and abs(published.sum()) > 1.0
    np.testing.assert_allclose(centred, published - published.mean())
    from pinnjax.cli._resolve import make_problem, resolve_problem_class

    problem = make_problem(resolve_problem_class("poisson_ball")[0], {"dim": 7, "centred": False})  # as a config does
    assert problem.centred is False and problem.dim == 7
    with pytest.raises(ValueError, match="'centred' must be true or false"):
        PoissonBall(dim=7, centred="no")


def test_constrained_estimate_is_unbiased_and_exact_on_the_sphere(key):
    """``u = distance * network`` with the Laplacian estimated through the lifted constraint:
    unbiased for the Laplacian of the constrained solution (jax.hessian of it)."""
    d = 7
    problem = PoissonBall(dim=d)
    k_net, k_x, k_draw = jax.random.split(key, 3)
    net = mlp(d, k_net)
    xs = problem.domain.sample_interior(k_x, 3).astype(jnp.float64)
    request = Request.laplacian(d)
    u = lambda p: problem.constraint(p)[1] * net(p)[0]  # noqa: E731
    exact = jax.vmap(lambda p: jnp.trace(jax.hessian(u)(p)))(xs)
    for method in ("hutchinson", "sparse"):
        est = Estimator(method, 2)
        one = jax.jit(lambda k, est=est: problem.solution_jet_batch(net, xs, request, estimator=est, key=k).contractions[:, 0, 0])
        samples = np.asarray(jax.lax.map(one, jax.random.split(k_draw, 2000), batch_size=500))
        assert_within_standard_errors(samples, np.asarray(exact))
    value = problem.solution_jet_batch(net, xs, request, estimator=Estimator(), key=k_draw).value[:, 0]
    np.testing.assert_allclose(value, jax.vmap(u)(xs), rtol=1e-13)


def test_ball_sampling_is_exact_in_high_dimension(key):
    """Uniform in the 200-ball: P(|x| < s) = s^d, so |x|^d is uniform on [0, 1] (Kolmogorov-
    Smirnov distance < 1.63 / sqrt(n), the 1% critical value); E[x x^T] = I / (d + 2)
    (coordinate second moments within 4.5 standard errors); every point drawn is kept and inside.
    On the sphere: |x| = 1 to rounding and the mean direction ~0."""
    d, n = 200, 4000
    ball = pj.Ball([0.0] * d, 1.0)
    k1, k2 = jax.random.split(key)
    x = np.asarray(ball.sample_interior(k1, n)).astype(np.float64)
    assert x.shape == (n, d)
    r = np.linalg.norm(x, axis=1)
    assert np.all(r <= 1.0 + 1e-12)
    u = np.sort(r**d)
    ks = np.max(np.maximum(np.arange(1, n + 1) / n - u, u - np.arange(n) / n))
    assert ks < 1.63 / np.sqrt(n), ks
    m2 = (x**2).mean(0) * (d + 2)  # each ~1
    se = (x**2 * (d + 2)).std(0) / np.sqrt(n)
    assert np.mean(np.abs(m2 - 1.0) / se < SIGMAS) > 0.99
    xb = np.asarray(ball.sample_boundary(k2, n)).astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(xb, axis=1), 1.0, atol=1e-12)
    assert np.all(np.abs(xb.mean(0)) < SIGMAS / np.sqrt(n * d) * 1.2)


def test_ball_solution_is_not_linear_in_high_dimension():
    """What configs/family_highdim.yaml's network choice rests on: at d = 1,000 the exact
    solution ``u* = D w`` differs from ``D`` times the first-order Taylor part of ``w`` at 0
    (gradient by jax.grad, float64, plus the best constant) by 5.5% of ``u*`` (17% at d = 100)
    in L2 over uniform points of the ball, so a model linear in x stops there. 4,000 points:
    the share's sampling error is a few per cent of itself, inside the bands."""
    from problems.highdim import coefficients, two_body

    for d, lo, hi in ((100, 0.14, 0.20), (1000, 0.045, 0.065)):
        c = jnp.asarray(coefficients(d), jnp.float64)
        x = PoissonBall(dim=d).domain.sample_interior(jax.random.PRNGKey(7), 4000).astype(jnp.float64)
        w = jax.vmap(lambda p, c=c: two_body(p, c)[0])(x)
        grad0 = jax.grad(lambda p, c=c: two_body(p, c)[0])(jnp.zeros(d, jnp.float64))
        D = 1.0 - jnp.sum(x * x, axis=1)
        rest = w - x @ grad0
        rest = rest - jnp.sum(D * D * rest) / jnp.sum(D * D)
        share = float(jnp.linalg.norm(D * rest) / jnp.linalg.norm(D * w))
        assert lo < share < hi, (d, share)


# ---------------------------------------------------------------------------------------------
# Config and training


def _cfg(**derivatives):
    return {"problem": {"name": "poisson_ball", "params": {"dim": 10}}, "derivatives": derivatives}


def test_config_keys_and_errors():
    cfg = config_from_dict(_cfg(laplacian="hutchinson", samples=4, directions="gaussian"))
    assert (cfg.derivatives.laplacian, cfg.derivatives.samples, cfg.derivatives.directions) == ("hutchinson", 4, "gaussian")
    assert config_from_dict(_cfg()).derivatives.laplacian == "exact"
    with pytest.raises(ConfigError, match="derivatives.laplacian"):
        config_from_dict(_cfg(laplacian="hutch"))
    with pytest.raises(ConfigError, match="derivatives.samples"):
        config_from_dict(_cfg(laplacian="sparse", samples=0))
    from pinnjax.train import make_spec

    problem = PoissonBall(dim=10)
    spec = make_spec(problem, config_from_dict(_cfg(laplacian="sparse", samples=5)))
    assert spec.laplacian == Estimator("sparse", 5)
    assert make_spec(problem, config_from_dict(_cfg())).laplacian is None
    bad = _cfg(laplacian="sparse")
    bad["train"] = {"phases": [{"optimiser": "adam", "steps": 2}, {"optimiser": "lm", "steps": 2}]}
    with pytest.raises(ConfigError, match="derivatives.laplacian"):
        make_spec(problem, config_from_dict(bad))


def test_step_losses_use_the_key_only_when_estimating(key):
    from pinnjax.train import make_spec
    from pinnjax.train._loss import term_losses

    problem = PoissonBall(dim=12)
    net = mlp(12, key)
    points = (problem.domain.sample_interior(key, 32).astype(jnp.float64),)
    for laplacian, differ in (("hutchinson", True), ("exact", False)):
        spec = make_spec(problem, config_from_dict(_cfg(laplacian=laplacian) | {"sampling": {"boundary": 0}}))
        losses = jax.jit(lambda k, spec=spec: term_losses(spec, problem, net, points, key=k))
        a, b = (losses(jax.random.PRNGKey(k)) for k in (1, 2))
        assert (not np.allclose(a, b)) == differ


def test_d100_problem_trains_through_the_cli(tmp_path):
    """The shipped d = 100 config, a few hundred steps of its own recipe (float32, sparse
    Laplacian with 16 directions): the L2 error, about 1 for the untrained network, is below 0.5
    at every logged step (it reaches ~0.19 in 100 steps and then hovers there)."""
    out = tmp_path / "run"
    args = ["run", str(ROOT / "configs" / "poisson_ball100.yaml"), "--out", str(out)]
    for s in ("train.steps=300", "train.scan_steps=100", "train.log_every=100", "eval.every=100",
              "eval.points=500", "output.plots=false"):
        args += ["--set", s]
    assert main(args) == 0
    rows = (out / "history.csv").read_text().splitlines()
    header = rows[0].split(",")
    table = [dict(zip(header, r.split(","))) for r in rows[1:]]
    l2re = [float(row["l2re"]) for row in table]
    assert len(l2re) == 3 and all(0 < e < 0.5 for e in l2re), l2re
    assert all(float(row["laplacian_variance"]) > 0 for row in table)  # reported at every chunk end
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 300 and metrics["l2re"] < 0.5
    assert "derivatives" in (out / "config.yaml").read_text()


def test_solve_takes_the_derivatives_section():
    """The Python API: ``solve(problem, derivatives={...})`` trains with the estimator and
    reports its variance; the exact run of the same problem reports none."""
    problem = SineGordonBall(dim=20)
    small = {"train": {"steps": 20, "scan_steps": 10, "log_every": 10}, "model": {"width": 16, "depth": 2},
             "sampling": {"interior": 32}, "eval": {"every": 20, "points": 200}}
    sol = pj.solve(problem, derivatives={"laplacian": "hutchinson", "samples": 4}, **small)
    assert sol.config.derivatives.samples == 4
    assert all(row["laplacian_variance"] > 0 for row in sol.history)
    assert 0 < sol.metrics["l2re"] < 10
    exact = pj.solve(problem, **small)
    assert all("laplacian_variance" not in row for row in exact.history)


def _step_flops(method, d, batch=16, width=32):
    """XLA's flop count of one training step (value and gradient of mean(lap^2))."""
    import equinox as eqx

    net = pj.MLP(in_size=d, out_size=1, width=width, depth=3, activation="tanh", key=jax.random.PRNGKey(0))
    xs = jnp.zeros((batch, d), jnp.float32)
    request = Request.laplacian(d)
    if method != "exact":
        request = request.estimated(Estimator(method, 4))

    def step(model, k):
        loss = lambda m: jnp.mean(jet_batch(m, xs, request, key=k).contractions ** 2)  # noqa: E731
        return eqx.filter_value_and_grad(loss)(model)

    cost = jax.jit(step).lower(net, jax.random.PRNGKey(1)).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"])


def test_step_cost_grows_with_d_only_through_the_first_layer():
    """Going from d = 100 to 1,100 adds to a sparse step no more than the first layer's value
    matmul and its weight gradient account for (2 + 2 flops per batch x width x added axis,
    plus the scatter of the gathered columns' gradient: bounded by 5), and to a Hutchinson step no more than the K directions' products; the exact
    step grows by at least a hidden layer's worth per added axis (width^2 per point)."""
    batch, width, k, dd = 16, 32, 4, 1000
    grow = {m: _step_flops(m, 100 + dd, batch, width) - _step_flops(m, 100, batch, width)
            for m in ("sparse", "hutchinson", "exact")}
    assert grow["sparse"] <= 5 * batch * width * dd, grow
    assert grow["hutchinson"] <= 8 * batch * (k + 1) * width * dd, grow
    assert grow["exact"] >= batch * width * width * dd, grow


@pytest.mark.usefixtures("strict_jax")
def test_linear_part_of_the_ball_solution_leaves_a_floor():
    """scripts/highdim_linear_part.py: the best (1 - |x|^2)(a + b . x) leaves 10-25% of the
    d = 100 solution (the quadratic remainder issue 15's floor comes from), and it recovers
    a solution that is itself of that form to round-off (the fit is right)."""
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "scripts"))
    import highdim_linear_part as script

    assert 0.10 < script.linear_floor(100, 3000, seed=0) < 0.25

    class Linear(PoissonBall):
        def exact(self, x):
            return (1.0 - jnp.sum(x * x)) * (0.5 + jnp.sum(jnp.arange(x.shape[0]) * x) / x.shape[0])

    # the published (uncentred) coefficients: w is dominated by a constant, yet the constant
    # alone leaves more than issue 15's 1e-2 at d = 1,000 and the linear part well under it
    published = script.floors(1000, 3000, seed=0, centred=False)
    assert 1e-2 < published["constant"] < 4e-2, published
    assert published["linear"] < 2e-3, published
    assert script.floors(100, 3000, seed=0)["constant"] > 0.99  # centred: no constant to learn

    original = script.PoissonBall
    script.PoissonBall = Linear
    try:
        assert script.linear_floor(20, 500, seed=1) < 1e-10
    finally:
        script.PoissonBall = original
