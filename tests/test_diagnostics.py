"""Curvature diagnostics (pinnjax/diagnostics) against dense references in float64:
Hessian-vector products against ``jax.hessian``, Gauss-Newton products against ``2 J^T J`` of
the trainer's residual Jacobian, Lanczos extremes against ``eigvalsh``, the SLQ density
against the exact histogram, critical-point verdicts on points whose nature is known, and the
Laplace interval against the textbook least-squares one."""

import dataclasses
import pathlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pinnjax as pj
from pinnjax import diagnostics as dg
from pinnjax.problems import PROBLEMS
from pinnjax._solve import make_config
from pinnjax.train import init_state, make_spec, precision
from pinnjax.train._sampling import draw_points

pytestmark = pytest.mark.usefixtures("strict_jax")
ROOT = pathlib.Path(__file__).resolve().parents[1]

SMALL = {"model": {"width": 8, "depth": 2, "dtype": "float64"}, "sampling": {"interior": 48, "boundary": 16}}


def _flat_loss(problem, **over):
    """The loss at the initial parameters of a small float64 run, on a batch drawn with a fixed
    key (no training: the products are checked at any point)."""
    cfg = make_config(problem, None, **{**SMALL, **over})
    with precision("float64"):
        spec = make_spec(problem, cfg)
        state = init_state(problem, spec, cfg.model, seed=0)
        state = eqx.tree_at(lambda s: s.points, state, draw_points(spec, state.problem, jax.random.key(1)))
        return dg.flat_loss(spec, state)


@pytest.fixture(scope="module")
def poisson2d():
    """poisson2d (a Laplacian residual and a Dirichlet term), 8 x 2: the loss, its dense
    Hessian and residual Jacobian, and the two product operators."""
    with jax.enable_x64(True):
        fl = _flat_loss(PROBLEMS["poisson2d"]())
        H = np.asarray(jax.jit(jax.hessian(fl.loss))(fl.flat))
        J = np.asarray(fl.jacobian("jacrev"))
        ops = {kind: dg.curvature_operator(fl, kind) for kind in ("hessian", "gauss_newton")}
        return fl, H, J, ops


def test_products_equal_dense_hessian_and_gauss_newton(poisson2d, key):
    fl, H, J, ops = poisson2d
    p = fl.flat.shape[0]
    assert H.shape == (p, p) and J.shape[1] == p and J.shape[0] == sum(fl.sizes)
    v = jax.random.normal(key, (p,), jnp.float64)
    hv = ops["hessian"](v)
    gv = ops["gauss_newton"](v)
    # float64 rounding of sums over ~100 parameters and ~100 residuals of O(1) terms
    np.testing.assert_allclose(hv, H @ v, rtol=1e-10, atol=1e-10 * np.abs(H @ v).max())
    np.testing.assert_allclose(gv, 2 * J.T @ (J @ v), rtol=1e-10, atol=1e-10 * np.abs(gv).max())
    # the Kronecker-form Jacobian gives the same Gauss-Newton matrix
    Jk = np.asarray(fl.jacobian("kronecker"))
    np.testing.assert_allclose(Jk.T @ Jk, J.T @ J, atol=1e-10 * np.abs(J.T @ J).max())
    # the loss is sum(r**2): the Hessian minus the Gauss-Newton part is the residual-curvature part,
    # not zero away from a zero-residual point
    assert np.abs(H - 2 * J.T @ J).max() > 1e-3 * np.abs(H).max()


def test_per_term_products_sum_to_the_whole(poisson2d, key):
    fl, H, J, ops = poisson2d
    v = jax.random.normal(key, (fl.flat.shape[0],), jnp.float64)
    parts = sum(np.asarray(dg.curvature_operator(fl, "hessian", term=i)(v)) for i in range(len(fl.sizes)))
    np.testing.assert_allclose(parts, H @ v, rtol=1e-10, atol=1e-10 * np.abs(H @ v).max())
    J0 = J[: fl.sizes[0]]  # the residual term's rows
    g0 = dg.curvature_operator(fl, "gauss_newton", term=0)(v)
    np.testing.assert_allclose(g0, 2 * J0.T @ (J0 @ v), rtol=1e-10, atol=1e-10 * np.abs(g0).max())


def test_lanczos_extremes_equal_eigvalsh(poisson2d):
    fl, H, J, ops = poisson2d
    p = fl.flat.shape[0]
    exact = np.linalg.eigvalsh(H)
    ext = dg.extreme_eigenvalues(ops["hessian"], p, k=3, steps=p)
    # full re-orthogonalisation: the Ritz values are eigenvalues to float64 rounding of |lambda|_max
    tol = 1e-9 * np.abs(exact).max()
    np.testing.assert_allclose(ext["largest"], exact[::-1][:3], atol=tol)
    np.testing.assert_allclose(ext["smallest"], exact[:3], atol=tol)
    # fewer steps than parameters: the outermost eigenvalues have converged, with the error bound
    short = dg.extreme_eigenvalues(ops["hessian"], p, k=1, steps=p // 2)
    assert abs(short["largest"][0] - exact[-1]) <= max(short["largest_error"][0], tol)
    assert abs(short["smallest"][0] - exact[0]) <= max(short["smallest_error"][0], tol)
    gn = np.linalg.eigvalsh(2 * J.T @ J)
    ext_gn = dg.extreme_eigenvalues(ops["gauss_newton"], p, k=3, steps=p)
    np.testing.assert_allclose(ext_gn["largest"], gn[::-1][:3], atol=1e-9 * gn.max())
    assert dg.condition_number({"largest": [4.0], "smallest": [0.5]}) == 8.0
    assert dg.condition_number({"largest": [4.0], "smallest": [0.0]}) == np.inf


def test_slq_density_equals_exact_histogram(poisson2d, seed):
    fl, H, J, ops = poisson2d
    p = fl.flat.shape[0]
    exact = np.linalg.eigvalsh(H)
    edges = np.linspace(exact[0] - 1e-6, exact[-1] + 1e-6, 13)
    want = np.histogram(exact, edges)[0] / p
    matvec = ops["hessian"]
    # probes e_1 ... e_P and Lanczos to an invariant subspace: each quadrature is exact, and
    # the mean over the basis of e_i^T f(H) e_i is tr f(H) / P (the histogram, f an indicator)
    basis = dg.spectral_density(matvec, p, steps=p, start_vectors=np.eye(p))
    np.testing.assert_allclose(basis.histogram(edges), want, atol=1e-9)
    # Rademacher probes and few steps: the smoothed density is an estimate of the exact one
    width = (exact[-1] - exact[0]) / 20
    grid = np.linspace(exact[0], exact[-1], 50)
    exact_smooth = dg.SpectralDensity([exact], [np.full(p, 1.0 / p)]).smoothed(grid, width)
    slq = dg.spectral_density(matvec, p, steps=30, probes=30, seed=seed).smoothed(grid, width)
    # Monte Carlo error of 30 probes: each v^T f(H) v / P has relative sd about sqrt(2 / P) ~ 0.14
    # spread over the grid; the L1 distance of two densities is below 0.15 (of 2 at most)
    assert np.sum(np.abs(slq - exact_smooth)) * (grid[1] - grid[0]) < 0.15


def test_curvature_record_per_term(poisson2d, tmp_path):
    """The record `pinnjax diagnose` writes, per loss term: each term's extremes are those of
    its own Gauss-Newton matrix (the rows of J of that term), and the plots are written."""
    from pinnjax.diagnostics._plots import plot_diagnostics

    fl, H, J, ops = poisson2d
    p = fl.flat.shape[0]
    with precision("float64"):
        rec = dg.curvature_at(fl.spec, fl.state, dg.Settings(k=1, steps=p, probes=1, density_steps=4))
    assert set(rec["terms"]) == {"residual", "dirichlet"}
    start = 0
    for name, size in zip(fl.term_names, fl.sizes):
        Ji = J[start : start + size]
        start += size
        want = np.linalg.eigvalsh(2 * Ji.T @ Ji)[-1]
        # float64 rounding; the Krylov space is the whole space (p steps)
        np.testing.assert_allclose(rec["terms"][name]["gauss_newton"]["largest"][0], want, rtol=1e-9)
        weights = rec["terms"][name]["hessian_density"]["weights"][0]
        assert abs(sum(weights) - 1.0) < 1e-12  # Gauss quadrature weights of a unit start vector
    np.testing.assert_allclose(rec["hessian"]["largest"][0], np.linalg.eigvalsh(H)[-1], rtol=1e-9)
    assert rec["critical_point"]["largest_eigenvalues"] == rec["hessian"]["largest"]
    written = plot_diagnostics({"checkpoints": [rec]}, tmp_path)
    assert sorted(w.name for w in written) == ["extreme_eigenvalues.png", "spectral_density.png", "term_spectra.png"]


def test_critical_point_verdicts_known_saddle_minimum_maximum():
    # the seed's example f = x^2 + 3xy + y^2: Hessian [[2, 3], [3, 2]], eigenvalues 5 and -1, a saddle at 0
    def f(t):
        return t[0] ** 2 + 3 * t[0] * t[1] + t[1] ** 2

    rep = dg.critical_point_report(f, jnp.zeros(2, jnp.float64), k=2)
    assert rep["verdict"] == "saddle" and rep["stationary"]
    np.testing.assert_allclose(rep["largest_eigenvalues"], [5.0, -1.0], atol=1e-12)
    assert rep["negative_eigenvalues_found"] == 1

    def rosenbrock(t):
        return (1 - t[0]) ** 2 + 100 * (t[1] - t[0] ** 2) ** 2

    at_min = dg.critical_point_report(rosenbrock, jnp.ones(2, jnp.float64))
    assert at_min["verdict"] == "minimum" and at_min["stationary"] and at_min["negative_eigenvalues_found"] == 0
    np.testing.assert_allclose(sorted(at_min["largest_eigenvalues"]),
                               np.linalg.eigvalsh(np.array([[802.0, -400.0], [-400.0, 200.0]])), rtol=1e-12)
    at_max = dg.critical_point_report(lambda t: -rosenbrock(t), jnp.ones(2, jnp.float64))
    assert at_max["verdict"] == "maximum"
    away = dg.critical_point_report(rosenbrock, jnp.zeros(2, jnp.float64))
    assert not away["stationary"] and away["gradient_norm"] == pytest.approx(2.0)
    assert dg.classify(0.0, 3.0, 1e-9) == "minimum with flat directions"
    assert dg.classify(-1e-12, 1e-12, 1e-9) == "flat"


class Laplace1D(pj.Problem):
    """u'' = 0 on [-1, 1], u = 0 at the ends: u = 0 is the solution."""

    domain = pj.Interval(-1.0, 1.0)
    needs = ("u_xx",)
    conditions = (pj.Dirichlet(0.0),)

    def residual(self, x, d):
        return d.u_xx


def test_zero_loss_point_is_a_minimum_with_flat_directions():
    """A network whose output layer is zero gives u = 0, the exact solution: loss 0, a global
    minimum. There the Hessian is the Gauss-Newton matrix (every residual is 0), and more
    parameters than the residuals can pin down leave flat directions."""
    fl = _flat_loss(Laplace1D(), train={"steps": 1}, sampling={"interior": 16, "boundary": 2})
    params = fl.unravel(fl.flat)
    model, unknowns = params
    zeroed = eqx.tree_at(lambda m: (m.layers[-1].weight, m.layers[-1].bias), model,
                         replace_fn=jnp.zeros_like)
    theta = jax.flatten_util.ravel_pytree((zeroed, unknowns))[0]
    loss = jax.jit(fl.loss)  # compiled, as `pinnjax diagnose` passes it (op by op it took seconds)
    with precision("float64"):
        assert float(loss(theta)) == 0.0
        at_zero = dataclasses.replace(fl, flat=theta)
        v = jax.random.normal(jax.random.key(2), theta.shape, jnp.float64)
        hv = dg.curvature_operator(at_zero, "hessian")(v)
        gv = dg.curvature_operator(at_zero, "gauss_newton")(v)
        np.testing.assert_allclose(hv, gv, rtol=1e-12, atol=1e-12 * np.abs(gv).max())
        rep = dg.critical_point_report(loss, theta, steps=theta.shape[0])
    assert rep["gradient_norm"] == 0.0 and rep["stationary"]
    assert rep["verdict"] == "minimum with flat directions"
    assert rep["negative_eigenvalues_found"] == 0


class LineFit(pj.Problem):
    """Linear least squares in PINN clothes: ``u(x) = c_0 + c_1 x`` exactly (a hard constraint
    with ``D = 0``, so the network has no say), observed with noise at `n` points; the PDE
    ``u_xx = 0`` holds for every ``c``. The unknowns' posterior is the regression's."""

    c: jax.Array = pj.unknown(np.zeros(2))
    obs_x: np.ndarray = None
    obs_y: np.ndarray = None

    domain = pj.Interval(-1.0, 1.0)
    needs = ("u_xx",)

    @property
    def conditions(self):
        return (pj.PointData(self.obs_x, self.obs_y, name="data"),)

    def residual(self, x, d):
        return d.u_xx

    def constraint(self, x):
        return self.c[0] + self.c[1] * x[0], 0.0 * x[0]


def test_laplace_interval_equals_least_squares_interval(seed):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-1.0, 1.0, 40))
    sigma = 0.1
    y = 0.3 - 0.7 * x + sigma * rng.standard_normal(40)
    problem = LineFit(obs_x=x[:, None], obs_y=y)
    fl = _flat_loss(problem, sampling={"interior": 8, "boundary": 0})
    with precision("float64"):
        # alpha tiny: the network's block is decoupled from c (it never enters the loss)
        out = dg.laplace_unknowns(fl, noise=sigma, prior_precision=1e-12)
    X = np.stack([np.ones_like(x), x], axis=1)
    cov = sigma**2 * np.linalg.inv(X.T @ X)  # the textbook covariance of the regression coefficients
    c = out["unknowns"]["c"]
    # float64 rounding of a 2 x 2 block of the inverse of a (P x P) eigendecomposition
    np.testing.assert_allclose(c["sd"], np.sqrt(np.diag(cov)), rtol=1e-8)
    z = 1.959963984540054  # the 97.5% quantile of the standard normal
    np.testing.assert_allclose(np.asarray(c["upper"]) - np.asarray(c["lower"]), 2 * z * np.sqrt(np.diag(cov)), rtol=1e-8)
    assert out["level"] == 0.95
    with pytest.raises(ValueError, match="no term 'obs'"):
        dg.laplace_unknowns(fl, noise=sigma, data_term="obs")


class NodalFit(LineFit):
    """Linear least squares for a field: ``u(x) = c(x)``, the piecewise linear interpolant of
    unknown node values ``c`` (a hard constraint with ``D = 0``), observed with noise. The
    nodes' covariance is the regression's, ``sigma^2 (A^T A)^-1`` with ``A`` the interpolation
    weights at the observations, and the band at x is ``a(x)^T cov a(x)``."""

    c: jax.Array = pj.unknown(np.zeros(5))

    domain = pj.Interval(0.0, 2.0)

    def unknown_at(self, name, x):
        return jnp.interp(x[0], jnp.linspace(0.0, 2.0, 5, dtype=x.dtype), self.c)

    def constraint(self, x):
        return self.unknown_at("c", x), 0.0 * x[0]


def _interpolation_weights(x, nodes):
    """Row i: the weights of the node values in the linear interpolant at x_i (numpy)."""
    return np.stack([np.interp(x, nodes, np.eye(nodes.shape[0])[j]) for j in range(nodes.shape[0])], axis=1)


def test_pointwise_band_equals_least_squares_band(seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 2.0, 60)
    sigma = 0.05
    y = np.cos(x) + sigma * rng.standard_normal(60)
    c0 = rng.standard_normal(5)  # where the band is centred (no training: any point will do)
    fl = _flat_loss(NodalFit(c=c0, obs_x=x[:, None], obs_y=y), sampling={"interior": 8, "boundary": 0})
    with precision("float64"):
        out = dg.laplace_unknowns(fl, noise=sigma, prior_precision=1e-12)  # the network never enters the loss
    nodes = np.linspace(0.0, 2.0, 5)
    A = _interpolation_weights(x, nodes)
    cov = sigma**2 * np.linalg.inv(A.T @ A)
    band = out["unknowns"]["c"]["band"]
    B = _interpolation_weights(np.asarray(band["x"]), nodes)
    assert len(band["x"]) == 101 and "true" not in band
    # float64 rounding of a 5 x 5 block of the inverse of a (P x P) eigendecomposition
    np.testing.assert_allclose(band["sd"], np.sqrt(np.einsum("np,pq,nq->n", B, cov, B)), rtol=1e-8)
    np.testing.assert_allclose(band["value"], B @ c0, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(out["unknowns"]["c"]["sd"], np.sqrt(np.diag(cov)), rtol=1e-8)
    z = 1.959963984540054
    np.testing.assert_allclose(np.asarray(band["upper"]) - band["value"], z * np.asarray(band["sd"]), rtol=1e-12)


class AnchoredNodalFit(NodalFit):
    """`NodalFit` with two exact (noise-free) observations beside the noisy ones: a term that
    constrains ``c`` without carrying noise, like a PDE residual."""

    anchor_x: np.ndarray = None
    anchor_y: np.ndarray = None

    @property
    def conditions(self):
        return (pj.PointData(self.obs_x, self.obs_y, name="data"), pj.PointData(self.anchor_x, self.anchor_y, name="anchor"))


def test_error_covariance_weighs_noise_free_terms_and_priors_in_closed_form(seed):
    """Linear model with a noisy data term (Fisher ``F``), a noise-free term (curvature ``C``)
    and smoothness regularisation (prior precision ``R``), each at its loss weight relative to
    the data, ``s = n_d / (2 sigma^2 w_d)``: the estimate's error covariance is
    ``A^-1 (F + R) A^-1`` with ``A = F + C + R``, and the posterior ``A^-1``."""
    rng = np.random.default_rng(seed)
    x, xa = rng.uniform(0.0, 2.0, 30), np.array([0.5, 1.5])
    sigma, lam = 0.05, 0.3
    problem = AnchoredNodalFit(c=rng.standard_normal(5), obs_x=x[:, None], obs_y=np.cos(x) + sigma * rng.standard_normal(30),
                               anchor_x=xa[:, None], anchor_y=np.cos(xa))
    fl = _flat_loss(problem, sampling={"interior": 8, "boundary": 0},
                    loss={"regularization": "smoothness", "regularization_weight": lam})
    # the residual u_xx = 0 of the piecewise linear u: a noise-free term whose Jacobian is zero
    assert fl.term_names == ("residual", "data", "anchor", "regularization")
    weights = np.asarray(fl.spec.fixed_weights) * np.asarray(fl.state.weights)
    assert np.allclose(weights, [1.0, 1.0, 1.0, lam])  # the closed form below assumes these weights
    with precision("float64"):
        out = {cov: dg.laplace_unknowns(fl, noise=sigma, prior_precision=1e-12, covariance=cov)
               for cov in ("error", "posterior")}
    nodes = np.linspace(0.0, 2.0, 5)
    X, B = _interpolation_weights(x, nodes), _interpolation_weights(xa, nodes)
    D = np.diff(np.eye(5), axis=0)  # first differences: the smoothness term's mean of squares
    s = 30 / (2 * sigma**2)
    F = X.T @ X / sigma**2  # = s * 2 X^T X / n_d
    C = s * 2 * B.T @ B / 2
    R = s * 2 * lam * D.T @ D / 4
    A_inv = np.linalg.inv(F + C + R)
    error = A_inv @ (F + R) @ A_inv
    assert out["error"]["noise_free_terms"] == ["residual", "anchor"] and out["posterior"]["noise_free_terms"] == []
    # float64 rounding of a 5 x 5 block of (P x P) eigendecompositions (condition number ~1e4)
    np.testing.assert_allclose(out["error"]["unknowns"]["c"]["sd"], np.sqrt(np.diag(error)), rtol=1e-7)
    np.testing.assert_allclose(out["posterior"]["unknowns"]["c"]["sd"], np.sqrt(np.diag(A_inv)), rtol=1e-7)
    B_band = _interpolation_weights(np.asarray(out["error"]["unknowns"]["c"]["band"]["x"]), nodes)
    np.testing.assert_allclose(out["error"]["unknowns"]["c"]["band"]["sd"],
                               np.sqrt(np.einsum("np,pq,nq->n", B_band, error, B_band)), rtol=1e-7)
    assert np.all(np.diag(error) < np.diag(A_inv))  # the anchor's fictitious noise is gone
    with pytest.raises(ValueError, match="covariance must be one of"):
        dg.laplace_unknowns(fl, noise=sigma, covariance="sandwich")


def test_diagnose_cli_writes_json_plots_and_training_records(tmp_path, capsys):
    """A tiny noisy inverse run with ``diagnostics.every``, then ``pinnjax diagnose
    --every-checkpoint``: the records exist for every checkpoint and term, and the final
    extreme Hessian eigenvalues equal the dense ones of the loaded state's loss."""
    import json

    from pinnjax.cli import main

    run = tmp_path / "run"
    sets = ["model.width=6", "model.depth=1", "model.dtype=float64", "train.steps=20", "train.lbfgs_steps=0",
            "train.checkpoint_every=10", "train.scan_steps=10", "sampling.interior=16", "eval.points=50",
            "diagnostics.every=10", "diagnostics.lanczos_steps=8", "output.plots=true"]
    args = ["run", str(ROOT / "configs" / "inverse_diffusion_noisy.yaml"), "--out", str(run)]
    assert main(args + [x for s in sets for x in ("--set", s)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["curvature"]["step"] == 20
    kappa = metrics["uncertainty"]["unknowns"]["kappa"]
    assert len(kappa["sd"]) == 17 and all(s > 0 for s in kappa["sd"])
    band = kappa["band"]  # 101 points, 16 to a node interval: every 6.25th point is a node
    np.testing.assert_allclose(np.asarray(band["sd"])[::25], np.asarray(kappa["sd"])[::4], rtol=1e-9)
    np.testing.assert_allclose(band["true"][::25], [1.0, 1.5, 1.0, 0.5, 1.0], atol=1e-12)
    for name in ("unknowns", "curvature_history"):
        assert (run / "plots" / f"{name}.png").is_file()
    (run / "plots" / "curvature_history.png").unlink()  # diagnose draws it again from diagnostics.csv
    rows = (run / "diagnostics.csv").read_text().splitlines()
    assert rows[0].startswith("step,hessian_max") and [r.split(",")[0] for r in rows[1:]] == ["10", "20"]

    # P = 6 + 6 + 6 + 1 network parameters and 17 nodes: 40 Lanczos steps reach the whole space
    assert main(["diagnose", str(run), "--every-checkpoint", "--steps", "40", "--k", "2", "--probes", "2",
                 "--density-steps", "6", "--no-terms"]) == 0  # per-term records: test_curvature_record_per_term
    assert "Hessian eigenvalues" in capsys.readouterr().out
    record = json.loads((run / "diagnostics.json").read_text())
    assert [r["step"] for r in record["checkpoints"]] == [10, 20]
    final = record["checkpoints"][-1]
    assert "terms" not in final and record["uncertainty"]["unknowns"]["kappa"]["sd"] == kappa["sd"]
    for name in ("spectral_density", "extreme_eigenvalues", "unknowns", "curvature_history"):
        assert (run / "plots" / f"{name}.png").is_file()
    sol = pj.load(run)
    with precision("float64"):
        fl = dg.flat_loss(make_spec(sol.problem, sol.config), sol._state)
        exact = np.linalg.eigvalsh(np.asarray(jax.jit(jax.hessian(fl.loss))(fl.flat)))
    tol = 1e-8 * np.abs(exact).max()  # float64 rounding; the Krylov space is the whole space
    np.testing.assert_allclose(final["hessian"]["largest"], exact[::-1][:2], atol=tol)
    np.testing.assert_allclose(final["hessian"]["smallest"], exact[:2], atol=tol)
    assert final["critical_point"]["negative_eigenvalues_found"] == int(np.sum(exact[:2] < -tol))

    # bad input: one line, exit status 2
    with pytest.raises(SystemExit) as exc:
        main(["diagnose", str(tmp_path / "nowhere")])
    assert exc.value.code == 2 and "run folder not found" in capsys.readouterr().err
