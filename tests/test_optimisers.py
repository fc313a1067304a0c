"""Optimiser phases: every optimiser on a convex quadratic and on Rosenbrock (float64), the
residual Jacobian and Gauss-Newton matrix against autodiff, failed line searches, config
errors, and resuming inside every phase bit for bit (in process, and after SIGKILL).

Everything here runs in float64 with rank promotion an error (conftest's ``strict_jax``)."""

from __future__ import annotations

import re
import shutil

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from test_train import _KILL_SCRIPT as TRAIN_KILL_SCRIPT
from test_train import Heat1D, Poisson1D, _leaves_equal, kill_twice_and_finish

from pinnjax.config import ConfigError, config_from_dict
from pinnjax.io import list_checkpoints, read_checkpoint_info
from pinnjax.train import (
    TRACE_COUNTS,
    fit,
    init_state,
    load_run_state,
    make_spec,
    precision,
    read_history,
)
from pinnjax.train._loss import term_losses, weighted_residual_jacobian, weighted_residuals
from pinnjax.train._sampling import draw_points
from pinnjax.train._state import split_params
from pinnjax.train.optimisers import OPTIMISERS, Objective
from pinnjax.train.optimisers._gauss_newton import gauss_newton_step, matrix_free_gauss_newton_step

pytestmark = pytest.mark.usefixtures("strict_jax")


# --- optimisers on test functions ---------------------------------------------------------


def _objective(residual_fn):
    """An Objective whose loss is ``sum(residual_fn(x)**2)`` (one term)."""

    def losses(x, causal):
        del causal
        r = residual_fn(x)
        return jnp.stack([r @ r])

    def jacobian(x, method):
        del method
        return residual_fn(x), jax.jacrev(residual_fn)(x), x, lambda f: f

    return Objective(losses, lambda w, l: jnp.sum(w * l), jacobian, jnp.ones(1), jnp.asarray(True),
                     residuals=residual_fn)


def _minimise(opt, residual_fn, x0, steps):
    objective = _objective(residual_fn)

    @jax.jit
    def run(x):
        def body(carry, k):
            x, s = carry
            out = opt.step(objective, x, s, k)
            return (out.params, out.opt_state), out.total

        (x, _), totals = jax.lax.scan(body, (x, opt.init(x)), jnp.arange(steps))
        return x, totals

    return run(x0)


_A = np.diag([1.0, 3.0, 10.0, 0.3, 5.0]) + 0.1 * np.ones((5, 5))
_B = np.array([1.0, -2.0, 0.5, 3.0, -1.0])
_X_QUAD = np.linalg.solve(_A, _B)


def _quadratic(x):
    return jnp.asarray(_A) @ x - jnp.asarray(_B)


def _rosenbrock(x):
    return jnp.stack([1.0 - x[0], 10.0 * (x[1] - x[0] ** 2)])  # sum of squares: Rosenbrock


def _make(name, **opts):
    cls = OPTIMISERS[name]
    if name in ("adam", "soap"):
        opts = {"lr": 0.05, "steps": 1, **opts}
    return cls(**opts)


# (optimiser, options, quadratic steps, Rosenbrock steps): the step budgets are bounds the
# method must meet, with a margin (Newton-like methods: a handful; Adam-like: thousands)
CASES = [
    ("lbfgs", {}, 30, 100),
    ("bfgs", {}, 30, 100),
    ("ssbfgs", {}, 30, 100),
    ("ssbroyden", {}, 30, 100),
    ("lm", {}, 10, 60),
    ("engd", {}, 5, 60),
    ("lm", {"form": "cg"}, 10, 60),
    ("engd", {"form": "cg"}, 5, 60),
    ("adam", {"decay": "exponential", "decay_rate": 0.5, "decay_steps": 1000}, 4000, 20000),
    ("soap", {"decay": "exponential", "decay_rate": 0.5, "decay_steps": 1000}, 4000, 20000),
]


@pytest.mark.parametrize("name,opts,quad_steps,rosen_steps", CASES,
                         ids=[c[0] + "".join(f"-{v}" for v in c[1].values() if isinstance(v, str)) for c in CASES])
def test_reaches_the_minimum_of_a_quadratic_and_of_rosenbrock(name, opts, quad_steps, rosen_steps):
    opt = _make(name, **opts)
    x, totals = _minimise(opt, _quadratic, jnp.zeros(5, jnp.float64), quad_steps)
    assert jnp.max(jnp.abs(x - _X_QUAD)) < 1e-6, (name, x, totals[-5:])
    x, totals = _minimise(opt, _rosenbrock, jnp.array([-1.2, 1.0], jnp.float64), rosen_steps)
    # Newton-like methods get to 1e-8; Adam-like ones (first order, noisy near the valley
    # floor) to 1e-4
    tol = 1e-4 if name in ("adam", "soap") else 1e-8
    assert jnp.max(jnp.abs(x - 1.0)) < tol, (name, x, totals[-5:])


@pytest.mark.parametrize("name,form", [("lbfgs", None), ("bfgs", None), ("ssbroyden", None), ("lm", None),
                                       ("engd", None), ("lm", "cg"), ("engd", "cg")])
def test_a_failed_line_search_keeps_the_parameters(name, form):
    """The loss is infinite everywhere but at the start point (its gradient is that of a
    bowl): no step can be accepted. Parameters stay put and finite, and the state says so."""
    x0 = jnp.array([0.3, -0.7, 1.1], jnp.float64)

    def residual(x):
        off = jnp.any(x != x0)
        return jnp.where(off, jnp.inf, 1.0) * x

    opt = _make(name) if form is None else _make(name, form=form)
    x, totals = _minimise(opt, residual, x0, 4)
    assert jnp.array_equal(x, x0) and bool(jnp.all(jnp.isfinite(totals)))
    objective = _objective(residual)
    out = jax.jit(lambda x, s: opt.step(objective, x, s, 0))(x0, opt.init(x0))
    if name in ("bfgs", "ssbroyden"):
        assert bool(out.opt_state[0].skip)  # H restarted, no update on the next step
    if name == "lm":
        assert float(out.opt_state.damping) > opt.damping and int(out.opt_state.failures) == 1
    if name == "engd":
        assert int(out.opt_state.failures) == 1 and float(out.opt_state.damping) == opt.damping * opt.increase


def test_history_shows_the_damping_and_rejected_steps_of_a_gauss_newton_phase(tmp_path):
    """An ENGD phase with one step size (`grid: 1`, the full Gauss-Newton step) rejects many
    steps. A rejected step keeps the parameters and the points, so the next logged loss is the
    same number: counting those repeats gives the rejected steps, and replaying them the
    damping (times 10 after a rejection, / 10 after a success, never below 1e-10), to compare
    with the columns history.csv has at every chunk end of the phase (none in the Adam phase)."""
    phases = [{"optimiser": "adam", "steps": 10}, {"optimiser": "engd", "steps": 30, "grid": 1}]
    fit(Poisson1D(), _cfg(train={"phases": phases, "log_every": 1, "scan_steps": 5}), tmp_path / "run")
    rows = read_history(tmp_path / "run")
    loss = {r["step"]: r["loss"] for r in rows}
    assert all("damping" not in r for r in rows if r["phase"] == "adam")
    shown = [r for r in rows if "damping" in r]
    assert [r["step"] for r in shown] == [15, 20, 25, 30, 35, 40]
    rejected, damping, expected = 0, 1e-10, {}
    for s in range(11, 40):  # step s's outcome shows in the loss logged at s + 1
        failed = loss[s + 1] == loss[s]
        rejected += failed
        damping = damping * 10 if failed else max(damping / 10, 1e-10)
        expected[s] = (rejected, damping)
    checked = [r for r in shown if r["step"] < 40]
    assert 0 < expected[39][0] < 29  # some steps rejected, some taken
    for r in checked:
        assert r["rejected_steps"] == expected[r["step"]][0], r
        np.testing.assert_allclose(r["damping"], expected[r["step"]][1], rtol=1e-12)


# --- residual Jacobian --------------------------------------------------------------------


def _cfg(**sections):
    base = {
        "problem": {"name": "test"},
        "model": {"width": 8, "depth": 2, "dtype": "float64"},
        "train": {"steps": 10, "scan_steps": 10, "log_every": 10, "checkpoint_every": 100},
        "sampling": {"interior": 24, "boundary": 6, "initial": 6},
        "eval": {"every": 100, "points": 100},
        "output": {"plots": False},
    }
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return config_from_dict(base)


def _heat_batch(model: dict):
    """A float64 Heat1D batch (call inside ``precision("float64")``): spec, trainable params,
    the rest, points and term weights."""
    problem = Heat1D()
    cfg = _cfg(model=model, loss={"weights": {"initial": 7.0}})
    spec = make_spec(problem, cfg)
    state = init_state(problem, spec, cfg.model, seed=3)
    points = draw_points(spec, state.problem, jax.random.key(5))
    params, rest = split_params(state)
    return spec, params, rest, points, jnp.array([1.0, 2.0, 0.5])


def _compiled_residual_jacobian(spec, params, rest, points, weights, method="jacrev"):
    """``(r, J, flat)`` of `weighted_residual_jacobian` as one compiled program, as in the
    trainer's step (run op by op, its per-point jacrev took seconds)."""
    return jax.jit(lambda p: weighted_residual_jacobian(spec, p, rest, points, weights, method)[:3])(params)


@pytest.mark.parametrize("model", [{}, {"factorization": {"mean": 0.5, "std": 0.1}},
                                   {"embedding": {"type": "fourier", "features": 4, "scale": 1.0}}],
                         ids=["plain", "factorized", "fourier"])
def test_residual_jacobian_and_gauss_newton_matrix_match_autodiff(model):
    """J from per-point jacrev vs jax.jacfwd of the whole batched residual vector
    (`weighted_residuals`: another autodiff path); J^T J vs the autodiff Gauss-Newton matrix;
    sum(r^2) is the weighted loss and 2 J^T r its gradient. Float64: agreement to rounding
    (1e-10 relative). Each side is one compiled program."""
    with precision("float64"):
        spec, params, rest, points, weights = _heat_batch(model)

        r, J, flat = _compiled_residual_jacobian(spec, params, rest, points, weights)
        unravel = ravel_pytree(params)[1]  # the map back the function returns (not an array)
        assert jnp.array_equal(flat, ravel_pytree(params)[0])

        def r_of(f):
            model_, problem_ = eqx.combine(unravel(f), rest)
            return weighted_residuals(spec, problem_, model_, points, weights)

        np.testing.assert_allclose(r, r_of(flat), rtol=1e-13)  # the same residual vector
        J_ref = jax.jit(jax.jacfwd(r_of))(flat)
        scale = jnp.max(jnp.abs(J_ref))
        assert J.shape == (24 + 6 + 6, flat.shape[0])
        assert jnp.max(jnp.abs(J - J_ref)) < 1e-10 * scale
        assert jnp.max(jnp.abs(J.T @ J - J_ref.T @ J_ref)) < 1e-10 * scale**2 * J.shape[0]
        # the Gauss-Newton family's `jacobian: kronecker` (dense layers in Kronecker form)
        r_k, J_k, _ = _compiled_residual_jacobian(spec, params, rest, points, weights, "kronecker")
        assert jnp.array_equal(r_k, r)
        assert jnp.max(jnp.abs(J_k - J_ref)) < 1e-10 * scale

        def loss(f):
            model_, problem_ = eqx.combine(unravel(f), rest)
            losses = term_losses(spec, problem_, model_, points, causal=False)
            return jnp.sum(jnp.asarray(spec.fixed_weights) * weights * losses)

        value, g = jax.jit(jax.value_and_grad(loss))(flat)
        assert jnp.allclose(r @ r, value, rtol=1e-12)
        assert jnp.max(jnp.abs(2 * J.T @ r - g)) < 1e-10 * jnp.max(jnp.abs(g))


def test_conjugate_gradient_direction_equals_the_cholesky_direction():
    """`form: cg` never forms J: J v and J^T u come from autodiff of the weighted residual
    vector. With enough products (4 (N + 1): exact arithmetic needs N + 1, as J^T J + damping I
    has at most N + 1 distinct eigenvalues; rounding costs CG about as many again) and a zero
    tolerance its direction equals the dense and the Woodbury Cholesky directions. Float64 at
    damping 1e-3: the damped system's condition number is about ||J||^2 / damping = 2.5e4, so
    rounding allows about 2.5e4 * 2.2e-16 = 5.5e-12 relative; we ask 1e-11 (the two Cholesky
    forms agree to 8e-13). With `cg_tol` 1e-3 it stops early, where the normal equations'
    residual (J formed here to check it) first falls below 1e-3 of the right-hand side's."""
    with precision("float64"):
        spec, params, rest, points, weights = _heat_batch({})
        n, damping = 24 + 6 + 6, 1e-3  # residuals, damping
        r, J, flat = _compiled_residual_jacobian(spec, params, rest, points, weights)
        unravel = ravel_pytree(params)[1]

        def residuals(f):
            model_, problem_ = eqx.combine(unravel(f), rest)
            return weighted_residuals(spec, problem_, model_, points, weights)

        cg = jax.jit(lambda iters, tol: matrix_free_gauss_newton_step(residuals, flat, damping, iters, tol),
                     static_argnums=(0, 1))
        r_cg, d_cg, products = cg(4 * (n + 1), 0.0)
        np.testing.assert_allclose(r_cg, r, rtol=1e-13)  # the same residual vector
        assert int(products) == 4 * (n + 1)
        for form in ("dense", "woodbury"):
            d = gauss_newton_step(J, r, damping, form)
            assert jnp.linalg.norm(d_cg - d) < 1e-11 * jnp.linalg.norm(d), form

        def normal_residual(d):
            return jnp.linalg.norm(J.T @ (J @ d) + damping * d + J.T @ r) / jnp.linalg.norm(J.T @ r)

        _, d_early, early = cg(4 * (n + 1), 1e-3)
        assert 0 < int(early) < n + 1 and normal_residual(d_early) <= 1e-3
        # one product fewer and it had not got there
        assert normal_residual(cg(int(early) - 1, 1e-3)[1]) > 1e-3


def test_gauss_newton_phases_with_cg_follow_the_cholesky_run(tmp_path):
    """An LM and an ENGD phase with `form: cg` train (the loss falls in each) and take the
    Cholesky run's steps: losses agree to 1e-6 relative (CG stops at a relative residual of
    1e-10, and ENGD's damping is kept at 1e-3, where 200 products solve to that tolerance)."""
    losses = {}
    for form in ("auto", "cg"):
        phases = [{"optimiser": "adam", "steps": 10}, {"optimiser": "lm", "steps": 10, "form": form},
                  {"optimiser": "engd", "steps": 10, "form": form, "damping": 1e-3}]
        fit(Poisson1D(), _cfg(train={"phases": phases, "log_every": 5}), tmp_path / form)
        losses[form] = [(r["step"], r["loss"]) for r in read_history(tmp_path / form)]
    by_step = dict(losses["cg"])
    assert by_step[20] < by_step[10] and by_step[30] < by_step[20], losses["cg"]
    np.testing.assert_allclose([v for _, v in losses["cg"]], [v for _, v in losses["auto"]], rtol=1e-6)


# --- config --------------------------------------------------------------------------------


def test_phase_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"train.phases\[1\].optimiser.*'ssbroydn'.*did you mean 'ssbroyden'"):
        _cfg(train={"phases": [{"optimiser": "adam", "steps": 5}, {"optimiser": "ssbroydn", "steps": 5}]})
    with pytest.raises(ConfigError, match=r"train.phases\[0\].memry.*not an option of lbfgs"):
        _cfg(train={"phases": [{"optimiser": "lbfgs", "steps": 5, "memry": 3}]})
    with pytest.raises(ConfigError, match=r"train.phases\[0\].steps.*positive int"):
        _cfg(train={"phases": [{"optimiser": "lm", "steps": 0}]})
    with pytest.raises(ConfigError, match=r"train.lbfgs_steps.*cannot be combined"):
        _cfg(train={"lbfgs_steps": 5, "phases": [{"optimiser": "lm", "steps": 5}]})
    with pytest.raises(ConfigError, match=r"train.phases\[0\].*memory: expected keep or restart"):
        _cfg(train={"phases": [{"optimiser": "lbfgs", "steps": 5, "memory": "forget"}]})
    with pytest.raises(ConfigError, match=r"train.phases\[0\].*form: expected one of auto, dense, woodbury, cg"):
        _cfg(train={"phases": [{"optimiser": "engd", "steps": 5, "form": "conjugate"}]})
    with pytest.raises(ConfigError, match=r"train.phases\[0\].*cg_iters: expected an int >= 1, got 0"):
        _cfg(train={"phases": [{"optimiser": "lm", "steps": 5, "form": "cg", "cg_iters": 0}]})
    with pytest.raises(ConfigError, match=r"train.phases\[0\].*cg_tol: expected a float in \[0, 1\)"):
        _cfg(train={"phases": [{"optimiser": "lm", "steps": 5, "form": "cg", "cg_tol": 2}]})
    with pytest.raises(ConfigError, match=r"train.phases\[0\].damping.*expected float"):
        _cfg(train={"phases": [{"optimiser": "lm", "steps": 5, "damping": "big"}]})
    # overrides reach into the list
    cfg = config_from_dict(
        {"problem": {"name": "t"},
         "train": {"phases": [{"optimiser": "adam", "steps": 5}, {"optimiser": "lm", "steps": 5}]}},
        ["train.phases.1.steps=7", "train.phases.0.lr=0.01"],
    )
    assert cfg.train.phases[1]["steps"] == 7 and cfg.train.phases[0]["lr"] == 0.01
    spec = make_spec(Poisson1D(), cfg)
    assert [(p.name, p.start, p.steps) for p in spec.phases] == [("adam", 0, 5), ("lm", 5, 7)]
    assert spec.phases[0].optimiser.lr == 0.01 and spec.phases[1].resample_every == 0


# --- resume inside every phase ------------------------------------------------------------

ALL_PHASES = [
    {"optimiser": "adam", "steps": 20},
    {"optimiser": "soap", "steps": 20, "precondition_every": 3},
    {"optimiser": "lbfgs", "steps": 20, "resample_every": 7, "memory": "restart", "memory_size": 5},
    {"optimiser": "bfgs", "steps": 20, "resample_every": 7},
    {"optimiser": "ssbfgs", "steps": 20, "resample_every": 7, "rad": True},
    {"optimiser": "ssbroyden", "steps": 20, "resample_every": 7, "rad": True},
    {"optimiser": "lm", "steps": 20, "resample_every": 7},
    {"optimiser": "engd", "steps": 20, "resample_every": 7, "form": "woodbury"},
    {"optimiser": "lm", "steps": 20, "resample_every": 7, "form": "cg", "cg_iters": 30},
]


def _resume_inside_every_phase(tmp_path, phases):
    """One run through `phases` (20 steps each, checkpoints every 10: inside each phase); then
    for every phase a run resumed from the checkpoint in its middle ends with the same state,
    byte for byte, and the same history; no chunk is compiled twice."""
    cfg = _cfg(train={"phases": phases, "scan_steps": 10, "log_every": 5, "checkpoint_every": 10},
               sampling={"rad_pool": 64, "rad_every": 10, "resample_every": 2}, output={"keep_checkpoints": 100})
    whole = tmp_path / "whole"
    m = fit(Poisson1D(), cfg, whole)
    assert [p["optimiser"] for p in m["phases"]] == [p["optimiser"] for p in phases]
    assert m["steps"] == 20 * len(phases) and np.isfinite(m["final_loss"])
    rows = read_history(whole)
    assert rows[-1]["loss"] < 0.1 * rows[0]["loss"]
    assert {r["phase"] for r in rows} == {p["optimiser"] for p in phases}
    last = f"step_{20 * len(phases):08d}.eqx"
    end = read_checkpoint_info(whole / "checkpoints" / last)
    traced = dict(TRACE_COUNTS)
    for k in range(len(phases)):
        middle = 20 * k + 10
        broken = tmp_path / f"from_{middle}"
        (broken / "checkpoints").mkdir(parents=True)
        shutil.copy(whole / "checkpoints" / f"step_{middle:08d}.eqx", broken / "checkpoints")
        shutil.copy(whole / "history.csv", broken / "history.csv")
        assert read_checkpoint_info(broken / "checkpoints" / f"step_{middle:08d}.eqx")["metadata"]["phase"] == k
        fit(Poisson1D(), cfg, broken, resume=True)
        again = read_checkpoint_info(broken / "checkpoints" / last)
        assert again["sha256"] == end["sha256"], phases[k]["optimiser"]
        assert [r["loss"] for r in read_history(broken)] == [r["loss"] for r in rows]
    assert {k: v for k, v in TRACE_COUNTS.items() if k.endswith("_chunk")} == {
        k: v for k, v in traced.items() if k.endswith("_chunk")}


def test_resume_inside_second_order_phases_is_bit_for_bit(tmp_path):
    # adam, ssbroyden, engd (Woodbury), lm (matrix-free CG)
    _resume_inside_every_phase(tmp_path, [ALL_PHASES[0], ALL_PHASES[5], ALL_PHASES[7], ALL_PHASES[8]])


@pytest.mark.slow  # nine phases resumed nine times: minutes on 2 shared cores
def test_resume_inside_every_phase_is_bit_for_bit(tmp_path):
    _resume_inside_every_phase(tmp_path, ALL_PHASES)


def test_changing_the_phases_of_a_run_restarts_the_changed_phase(tmp_path):
    run = tmp_path / "r"
    phases = [{"optimiser": "adam", "steps": 20}, {"optimiser": "ssbroyden", "steps": 20}]
    fit(Poisson1D(), _cfg(train={"phases": phases, "checkpoint_every": 10}), run)
    longer = [phases[0], {"optimiser": "lm", "steps": 10}, {"optimiser": "ssbroyden", "steps": 30}]
    m = fit(Poisson1D(), _cfg(train={"phases": longer, "checkpoint_every": 10}), run, resume=True)
    assert m["steps"] == 60 and [p["steps"] for p in m["phases"]] == [20, 10, 30]
    state, _ = load_run_state(Poisson1D(), _cfg(train={"phases": longer}), run)
    assert int(state.phase) == 2


# test_train's kill script, with a run through three phases instead
_KILL_CFG = """CFG = config_from_dict({
    "problem": {"name": "kill"},
    "model": {"width": 8, "depth": 2, "dtype": "float64"},
    "train": {"phases": [{"optimiser": "adam", "steps": 40},
                         {"optimiser": "ssbroyden", "steps": 40, "resample_every": 15, "rad": True},
                         {"optimiser": "lm", "steps": 40, "resample_every": 15}],
              "scan_steps": 10, "log_every": 10, "checkpoint_every": 20},
    "sampling": {"interior": 24, "boundary": 6, "rad_pool": 64},
    "eval": {"every": 20, "points": 100},
    "output": {"plots": False, "keep_checkpoints": 10},
})
"""
_KILL_SCRIPT = re.sub(r"CFG = config_from_dict\(\{.*?\n\}\)\n", lambda m: _KILL_CFG, TRAIN_KILL_SCRIPT, flags=re.DOTALL)


@pytest.mark.slow  # three processes; every phase's resume is also checked in process above
def test_sigkill_inside_second_order_phases_and_resume(tmp_path):
    """SIGKILL in the middle of the SSBroyden phase (after step 60) and of the LM phase (after
    step 100), resume each time in a fresh process: the final state equals an unbroken run's."""
    mod, whole, broken = kill_twice_and_finish(tmp_path, _KILL_SCRIPT, "killopt", (60, 100))
    a, ha = load_run_state(mod.KillPoisson(), mod.CFG, whole)
    b, hb = load_run_state(mod.KillPoisson(), mod.CFG, broken)
    assert ha["step"] == hb["step"] == 120 and int(b.phase) == 2
    assert _leaves_equal(a, b) and ha["sha256"] == hb["sha256"]
    assert [r["loss"] for r in read_history(broken)] == [r["loss"] for r in read_history(whole)]
    assert [s for s, _ in list_checkpoints(broken / "checkpoints")][-1] == 120


def test_lm_with_kronecker_jacobian_follows_the_jacrev_run(tmp_path):
    """`jacobian: kronecker` through a whole run: the same LM trajectory as per-point jacrev
    (losses agree to rounding; the Jacobians differ only in summation order)."""
    losses = {}
    for method in ("jacrev", "kronecker"):
        phases = [{"optimiser": "adam", "steps": 10}, {"optimiser": "lm", "steps": 10, "jacobian": method}]
        fit(Poisson1D(), _cfg(train={"phases": phases, "log_every": 5}), tmp_path / method)
        losses[method] = [r["loss"] for r in read_history(tmp_path / method)]
    assert len(losses["jacrev"]) >= 4 and losses["jacrev"][-1] < losses["jacrev"][1]
    np.testing.assert_allclose(losses["kronecker"], losses["jacrev"], rtol=1e-8)
