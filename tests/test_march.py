"""Time marching (pinnjax/train/_march.py): window by window, each starting exactly where the
one before ended. Checked against exact solutions, against ``jax.hessian`` of the assembled
model in float64, and a SIGKILLed run resumed against an unbroken one."""

from __future__ import annotations

import shutil

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pinnjax as pj
from pinnjax.config import ConfigError, config_from_dict
from pinnjax.train import fit, load_run_state, read_history
from pinnjax.train._march import MarchError, _advance, _residuals, _setup, grid_points, init_march_state, initial_jets

from test_train import _leaves_equal, kill_twice_and_finish


class LongHeat(pj.Problem):
    """u_t = alpha u_xx on [0, 1] x [0, 2], u = 0 on the sides, u(x, 0) = sin(pi x)."""

    alpha: float = 0.1
    domain = pj.Interval(0.0, 1.0) * pj.TimeInterval(0.0, 2.0)
    needs = ("u_t", "u_xx")
    conditions = (pj.Dirichlet(0.0), pj.Initial(lambda x: jnp.sin(jnp.pi * x[0])))

    def residual(self, x, d):
        return d.u_t - self.alpha * d.u_xx

    def exact(self, x):
        return jnp.exp(-self.alpha * jnp.pi**2 * x[1]) * jnp.sin(jnp.pi * x[0])


class Reaction2D(pj.Problem):
    """u_t = 0.01 lap u + u (1 - u^2) sin(pi x) + 0.1 u_x on [0, 1]^2 x [0, 0.75]: nonlinear,
    2-D space, no exact solution (for the derivative checks)."""

    domain = pj.Box([0.0, 0.0], [1.0, 1.0]) * pj.TimeInterval(0.0, 0.75)
    needs = ("u", "u_t", "lap_u", "u_x")
    conditions = (pj.Dirichlet(0.0), pj.Initial(lambda x: jnp.sin(2 * jnp.pi * x[0]) * jnp.sin(jnp.pi * x[1])))

    def residual(self, x, d):
        return d.u_t - 0.01 * d.lap_u - d.u * (1 - d.u**2) * jnp.sin(jnp.pi * x[0]) + 0.1 * d.u_x


MARCH = {"window": 0.5, "grid": 32, "first_steps": 400, "steps": 100, "lbfgs_steps": 100, "heldout": 128}


def _solve(problem, march=MARCH, **kw):
    return pj.solve(problem, model={"width": 16, "depth": 2, "dtype": "float64"}, march=march,
                    output={"plots": False, "keep_checkpoints": 10}, eval={"points": 2000}, **kw)


@pytest.fixture(scope="module")
def heat():
    return _solve(LongHeat())


def test_marched_heat_matches_the_exact_solution(heat):
    """Four windows of 0.5 on [0, 2]: the L2 error against exp(-alpha pi^2 t) sin(pi x), and
    the held-out residual is small in every window."""
    assert heat.metrics["windows"] == 4
    assert heat.metrics["l2re"] < 5e-3
    rows = heat.history
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert max(r["loss_heldout"] for r in rows) < 1e-3


def test_initial_and_boundary_data_hold_exactly_and_windows_join(heat):
    with jax.enable_x64(True):
        x = np.linspace(0.0, 1.0, 11)
        at_start = heat(np.stack([x, np.zeros_like(x)], 1)).ravel()
        np.testing.assert_allclose(at_start, np.sin(np.pi * x), rtol=0, atol=1e-14)
        t = np.linspace(0.0, 2.0, 9)
        for side in (0.0, 1.0):
            np.testing.assert_allclose(heat(np.stack([np.full_like(t, side), t], 1)).ravel(), 0.0, atol=1e-14)
        # across a window's end: the next window starts from the same value
        for edge in (0.5, 1.0, 1.5):
            below = heat(np.stack([x, np.full_like(x, edge - 1e-9)], 1)).ravel()
            above = heat(np.stack([x, np.full_like(x, edge)], 1)).ravel()
            np.testing.assert_allclose(below, above, atol=1e-7)


def test_carried_jets_and_residuals_match_jax_hessian(strict_jax, key):
    """What a window trains on (the carried u_k plus the engine's jet of (s/h) B N) equals
    derivatives of the assembled MarchedModel by jax.hessian / jax.jacfwd, in float64, on a
    nonlinear 2-D problem after two windows."""
    problem = Reaction2D()
    cfg = config_from_dict({"problem": {"name": "x"}, "model": {"width": 8, "depth": 2, "dtype": "float64"},
                            "march": {"window": 0.25, "grid": 4}})
    setup = _setup(problem, cfg)
    space = grid_points(setup.space, 4, key=key, dtype=jnp.float64)
    state = init_march_state(problem, cfg, setup, space, space)
    static = eqx.partition(state.model.template, eqx.is_array)[1]
    for k in range(2):  # two windows of random (untrained) networks, each its own
        params = jax.tree.map(lambda a: a[k] + 0.3 * jax.random.normal(jax.random.fold_in(key, k), a[k].shape), state.model.stacked)
        state = _advance(state, params, static, setup, space, space)
    model = state.model
    ends = jnp.concatenate([space, jnp.full((space.shape[0], 1), 0.5)], 1)

    def u(p):
        return model(p)[0]

    lap = jax.vmap(lambda p: jnp.trace(jax.hessian(u)(p)[:2, :2]))(ends)
    grad = jax.vmap(jax.grad(u))(ends)
    c = state.carried  # u_2 at the grid: value, u_x and the spatial Laplacian
    np.testing.assert_allclose(c.value[:, 0], jax.vmap(u)(ends), rtol=1e-12, atol=1e-12)
    first = setup.full.first
    np.testing.assert_allclose(c.first[:, 0, first.index(0)], grad[:, 0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(c.contractions[:, 0, 0], lap, rtol=1e-9, atol=1e-9)
    # the residual of window 3 (k = 2) at s = 0.1 from the training path, against autodiff
    s = jnp.full((space.shape[0],), 0.1)
    net = model.window(2)
    r = _residuals(setup, problem, net, space, s, state.carried, 0.5)[:, 0]
    pts = jnp.concatenate([space, (0.5 + s)[:, None]], 1)

    def residual(p):
        H = jax.hessian(u)(p)
        g = jax.grad(u)(p)
        v = u(p)
        return g[2] - 0.01 * (H[0, 0] + H[1, 1]) - v * (1 - v**2) * jnp.sin(jnp.pi * p[0]) + 0.1 * g[0]

    np.testing.assert_allclose(r, jax.vmap(residual)(pts), rtol=1e-9, atol=1e-9)


def test_save_and_load_a_marched_solution(heat, tmp_path):
    heat.save(tmp_path / "run")
    again = pj.load(tmp_path / "run", problem=LongHeat())
    x = np.array([[0.3, 0.1], [0.5, 0.75], [0.2, 1.99]])
    np.testing.assert_array_equal(np.asarray(again(x)), np.asarray(heat(x)))
    np.testing.assert_allclose(np.asarray(again.jet(x, "u_xx")), np.asarray(heat.jet(x, "u_xx")), rtol=1e-12)


_KILL_SCRIPT = """
import os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jax.numpy as jnp
import pinnjax as pj
import pinnjax.train._fit as F
import pinnjax.train._march as M
from pinnjax.config import config_from_dict

class KillHeat(pj.Problem):
    domain = pj.Interval(0.0, 1.0) * pj.TimeInterval(0.0, 1.0)
    needs = ("u_t", "u_xx")
    conditions = (pj.Dirichlet(0.0), pj.Initial(lambda x: jnp.sin(jnp.pi * x[0])))
    def residual(self, x, d):
        return d.u_t - 0.2 * d.u_xx
    def exact(self, x):
        return jnp.exp(-0.2 * jnp.pi**2 * x[1]) * jnp.sin(jnp.pi * x[0])

CFG = config_from_dict({
    "problem": {"name": "killheat"},
    "model": {"width": 8, "depth": 2},
    "march": {"window": 0.2, "grid": 16, "first_steps": 60, "steps": 30, "lbfgs_steps": 20, "heldout": 32},
    "eval": {"points": 200},
    "output": {"plots": False, "keep_checkpoints": 10},
})

if __name__ == "__main__":
    slow = float(os.environ.get("PJ_SLOW", "0"))
    if slow:  # give the test time to kill us right after a checkpoint
        save = M.save_checkpoint
        def slow_save(*a, **k):
            out = save(*a, **k)
            time.sleep(slow)
            return out
        M.save_checkpoint = slow_save
    F.fit(KillHeat(), CFG, sys.argv[1], resume=sys.argv[2] == "resume")
"""


def test_resumed_march_equals_an_unbroken_one(tmp_path):
    """A run folder cut back to its state after window 2 (what a run killed then leaves),
    resumed, ends byte for byte where an unbroken run ends. (The SIGKILL version below is
    marked slow: four processes, about a minute.)"""
    cfg = config_from_dict({"problem": {"name": "x"}, "model": {"width": 8, "depth": 2},
                            "march": {"window": 0.7, "grid": 8, "first_steps": 40, "steps": 20,
                                      "lbfgs_steps": 10, "heldout": 16},
                            "eval": {"points": 200}, "output": {"plots": False, "keep_checkpoints": 10}})
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    fit(LongHeat(), cfg, whole)
    shutil.copytree(whole, broken)
    (broken / "checkpoints" / f"step_{3:08d}.eqx").unlink()  # three windows of 2/3
    (broken / "metrics.json").unlink()
    fit(LongHeat(), cfg, broken, resume=True)
    a, ha = load_run_state(LongHeat(), cfg, whole)
    b, hb = load_run_state(LongHeat(), cfg, broken)
    assert ha["step"] == hb["step"] == 3 and ha["sha256"] == hb["sha256"]
    assert [r["loss"] for r in read_history(broken)] == [r["loss"] for r in read_history(whole)]
    with pytest.raises(FileExistsError, match="resume"):
        fit(LongHeat(), cfg, whole)  # a finished folder is not overwritten


@pytest.mark.slow
def test_killed_and_resumed_march_equals_an_unbroken_one(tmp_path):
    """SIGKILL after window 1, resume, SIGKILL after window 3, resume to the end (5 windows):
    the final state equals an unbroken run's byte for byte, and the history is continued."""
    mod, whole, broken = kill_twice_and_finish(tmp_path, _KILL_SCRIPT, "killmarch", (1, 3))
    a, ha = load_run_state(mod.KillHeat(), mod.CFG, whole)
    b, hb = load_run_state(mod.KillHeat(), mod.CFG, broken)
    assert ha["step"] == hb["step"] == 5
    assert _leaves_equal(a, b) and ha["sha256"] == hb["sha256"]
    assert [r["step"] for r in read_history(broken)] == [1, 2, 3, 4, 5]
    assert [r["loss"] for r in read_history(broken)] == [r["loss"] for r in read_history(whole)]


class Wave(pj.Problem):
    domain = pj.Interval(0.0, 1.0) * pj.TimeInterval(0.0, 1.0)
    needs = ("u_tt", "u_xx")
    conditions = (pj.Dirichlet(0.0), pj.Initial(lambda x: jnp.sin(jnp.pi * x[0])))

    def residual(self, x, d):
        return d.u_tt - d.u_xx


class Steady(pj.Problem):
    domain = pj.Interval(0.0, 1.0)
    needs = ("u_xx",)
    conditions = (pj.Dirichlet(0.0),)

    def residual(self, x, d):
        return d.u_xx + 1.0


class WithNeumann(LongHeat):
    conditions = (pj.Neumann(0.0), pj.Initial(lambda x: jnp.sin(jnp.pi * x[0])))


class MovingBoundary(LongHeat):
    conditions = (pj.Dirichlet(lambda x: x[1]), pj.Initial(lambda x: jnp.sin(jnp.pi * x[0])))


class NoInitial(LongHeat):
    conditions = (pj.Dirichlet(0.0),)


@pytest.mark.parametrize("problem, overrides, message", [
    (Steady(), {}, "steady"),
    (Wave(), {}, "first order in time"),
    (WithNeumann(), {}, "Neumann"),
    (MovingBoundary(), {}, "is a function"),
    (NoInitial(), {}, "initial data for every output"),
    (LongHeat(), {"model": {"hard_constraint": "constant"}}, "hard_constraint"),
])
def test_what_marching_cannot_take_is_named(problem, overrides, message):
    with pytest.raises(MarchError, match=message):
        pj.solve(problem, march={"window": 0.5, "grid": 4, "first_steps": 1, "steps": 1, "lbfgs_steps": 0},
                 output={"plots": False}, **overrides)


def test_march_config_is_checked():
    with pytest.raises(ConfigError, match="march.window"):
        config_from_dict({"problem": {"name": "x"}, "march": {"window": -1.0}})
    with pytest.raises(ConfigError, match="march.grid"):
        config_from_dict({"problem": {"name": "x"}, "march": {"window": 1.0, "grid": 0}})


def test_initial_jets_are_the_initial_data_and_its_derivatives(strict_jax, key):
    problem = Reaction2D()
    cfg = config_from_dict({"problem": {"name": "x"}, "march": {"window": 0.5}})
    setup = _setup(problem, cfg)
    space = jax.random.uniform(key, (7, 2))
    j = initial_jets(setup, space)
    f = lambda p: jnp.sin(2 * jnp.pi * p[0]) * jnp.sin(jnp.pi * p[1])  # noqa: E731
    np.testing.assert_allclose(j.value[:, 0], jax.vmap(f)(space), rtol=1e-13)
    lap = jax.vmap(lambda p: jnp.trace(jax.hessian(f)(p)))(space)
    np.testing.assert_allclose(j.contractions[:, 0, 0], lap, rtol=1e-12, atol=1e-12)
    t_col = setup.full.first.index(2)
    assert np.all(np.asarray(j.first[:, 0, t_col]) == 0.0)
