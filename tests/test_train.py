"""The training engine: compiled chunks, determinism, kill-and-resume, NaN guard, loss
weighting, RAD, L-BFGS, inverse problems and accuracy on two problems with exact solutions.

A float64 run turns 64-bit JAX on only while it runs (``precision``): the process's settings
are left as they were.
Runs use tiny networks so the file stays around a minute or two on 2 cores; most of the time
is compilation."""

from __future__ import annotations

import importlib
import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pinnjax as pj
from pinnjax.config import ConfigError, config_from_dict, config_to_dict
from pinnjax.io import list_checkpoints
from pinnjax.train._loss import term_losses
from pinnjax.train import (
    TRACE_COUNTS,
    NonFiniteLossError,
    adam_chunk,
    build_model,
    causal_loss,
    causal_weights,
    chunk_boundaries,
    evaluate,
    evaluate_run,
    fit,
    gradnorm_weights,
    init_state,
    load_run_state,
    make_plots,
    make_spec,
    precision,
    rad_probabilities,
    rad_select,
    read_history,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]


# --- problems --------------------------------------------------------------------------


class Poisson1D(pj.Problem):
    domain = pj.Interval(-1.0, 1.0)
    needs = ("u_xx",)
    conditions = (pj.Dirichlet(0.0),)

    def residual(self, x, d):
        return d.u_xx + jnp.pi**2 * jnp.sin(jnp.pi * x[0])

    def exact(self, x):
        return jnp.sin(jnp.pi * x[0])


class Heat1D(pj.Problem):
    domain = pj.Interval(0.0, 1.0) * pj.TimeInterval(0.0, 1.0)
    needs = ("u_t", "u_xx")
    conditions = (pj.Dirichlet(0.0), pj.Initial(lambda x: jnp.sin(jnp.pi * x[0])))

    def residual(self, x, d):
        return d.u_t - 0.4 * d.u_xx

    def exact(self, x):
        return jnp.exp(-0.4 * jnp.pi**2 * x[1]) * jnp.sin(jnp.pi * x[0])


class NaNPoisson(Poisson1D):
    needs = ("u", "u_xx")

    def residual(self, x, d):
        return jnp.log(-1.0) * d.u


class InfPoisson(Poisson1D):
    def residual(self, x, d):
        return d.u_xx + jnp.inf


_OBS_X = jnp.linspace(-0.95, 0.95, 40)[:, None]


class InversePoisson(pj.Problem):
    """-kappa u_xx = pi^2 sin(pi x), u(+-1) = 0, with u observed: kappa = 1."""

    kappa: jax.Array = pj.unknown(0.5)
    domain = pj.Interval(-1.0, 1.0)
    needs = ("u_xx",)
    conditions = (pj.Dirichlet(0.0), pj.PointData(_OBS_X, jnp.sin(jnp.pi * _OBS_X[:, 0])))

    def __init__(self, kappa=0.5):
        self.kappa = jnp.asarray(kappa, jnp.float32)

    def residual(self, x, d):
        return -self.kappa * d.u_xx - jnp.pi**2 * jnp.sin(jnp.pi * x[0])

    def exact(self, x):
        return jnp.sin(jnp.pi * x[0])


def _cfg(**sections):
    base = {
        "problem": {"name": "test"},
        "model": {"width": 16, "depth": 2},
        "train": {"steps": 200, "scan_steps": 50, "log_every": 10, "checkpoint_every": 100},
        "sampling": {"interior": 64, "boundary": 16, "initial": 16},
        "eval": {"every": 100, "points": 200},
        "output": {"plots": False},
    }
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return config_from_dict(base)


def _leaves_equal(a, b):
    la, lb = jax.tree.leaves(eqx.filter(a, eqx.is_array)), jax.tree.leaves(eqx.filter(b, eqx.is_array))
    if len(la) != len(lb):
        return False
    for x, y in zip(la, lb):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        if x.shape != y.shape or x.dtype != y.dtype or not bool(jnp.array_equal(x, y)):
            return False
    return True


_TIMING = {"train_seconds", "adam_seconds", "lbfgs_seconds", "compile_seconds",
           "steps_per_second", "lbfgs_steps_per_second", "phase_seconds", "phase_steps_per_second"}


# --- pieces ----------------------------------------------------------------------------


def test_build_model_sizes_normalisation_and_embeddings():
    p = Heat1D()
    cfg = _cfg(model={"width": 8, "depth": 2})
    m = build_model(p, cfg.model, key=jax.random.key(0))
    assert (m.in_size, m.out_size) == (2, 1)
    assert m.input_lower == (0.0, 0.0) and m.input_upper == (1.0, 1.0)
    assert m.layers[0].V.dtype == jnp.float32
    f = build_model(p, _cfg(model={"embedding": {"type": "fourier", "features": 5, "scale": 2.0}}).model,
                    key=jax.random.key(0))
    assert f.embedding.out_size == 10 and f.layers[0].V.shape[1] == 10
    # periods are in the problem's units: period 1 in x stays period 1 after the [-1, 1] map
    per = build_model(p, _cfg(model={"embedding": {"type": "periodic", "axes": [0], "periods": [1.0]}}).model,
                      key=jax.random.key(0))
    x = jnp.array([0.2, 0.3])
    assert jnp.allclose(per(x), per(x + jnp.array([1.0, 0.0])), atol=1e-5)
    assert not jnp.allclose(per(x), per(x + jnp.array([0.5, 0.0])), atol=1e-3)
    with pytest.raises(ConfigError, match=r"model.embedding.type': invalid value 'wavelet'"):
        _cfg(model={"embedding": {"type": "wavelet"}})


def test_unknown_weight_name_lists_terms():
    with pytest.raises(ValueError, match=r"residul.*terms are \['residual', 'dirichlet'\].*did you mean 'residual'"):
        make_spec(Poisson1D(), _cfg(loss={"weights": {"residul": 2.0}}))
    with pytest.raises(ValueError, match="time-dependent"):
        make_spec(Poisson1D(), _cfg(loss={"causal": True}))


def test_chunk_boundaries_do_not_depend_on_the_start():
    spec = make_spec(Poisson1D(), _cfg(train={"steps": 230, "lbfgs_steps": 40, "scan_steps": 30}))
    full = chunk_boundaries(spec, 100, 70, 0, spec.total_steps)
    assert max(np.diff([0] + full)) <= 30 and full[-1] == 270 and 230 in full
    for start in (30, 60, 100, 140, 230):
        assert chunk_boundaries(spec, 100, 70, start, spec.total_steps) == [b for b in full if b > start]


def test_causal_weights_on_a_toy():
    L = jnp.array([1.0, 2.0, 3.0, 0.5])
    assert jnp.allclose(causal_weights(L, 0.5), jnp.exp(-0.5 * jnp.array([0.0, 1.0, 3.0, 6.0])))
    # four chunks of [0, 1]; per-chunk means 1, 2, 3, 0.5
    t = jnp.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.9])
    sq = jnp.array([1.0, 1.0, 2.0, 3.0, 3.0, 0.5])
    loss, w = causal_loss(t, sq, 0.0, 1.0, 4, 0.5)
    assert jnp.allclose(w, causal_weights(L, 0.5))
    assert jnp.allclose(loss, jnp.mean(w * L))
    # no gradient through the weights: d loss / d sq_k = w_chunk / (chunks * count_chunk)
    g = jax.grad(lambda s: causal_loss(t, s, 0.0, 1.0, 4, 0.5)[0])(sq)
    counts = jnp.array([2.0, 1.0, 2.0, 1.0])
    chunk = jnp.array([0, 0, 1, 2, 2, 3])
    assert jnp.allclose(g, w[chunk] / (4 * counts[chunk]))


class LateResidual(pj.Problem):
    """Residual 1 before t = 0.5 and 3 after, whatever the network: x lies in [2, 3], so
    reading the x column as time would put every point in the last chunk."""

    domain = pj.Interval(2.0, 3.0) * pj.TimeInterval(0.0, 1.0)
    needs = ("u",)

    def residual(self, x, d):
        return jnp.where(x[1] > 0.5, 3.0, 1.0) + 0.0 * d.u


def test_causal_loss_reads_the_time_column_in_time_order():
    """The whole path (spec, problem, term_losses) against the formula written out: chunks
    of [0, 1] in increasing time, w_i = exp(-eps * sum_{j<i} L_i). A wrong time column or
    chunks weighted from the end give another number."""
    cfg = _cfg(loss={"causal": True, "causal_chunks": 4, "causal_eps": 1.0})
    problem = LateResidual()
    with precision("float32"):
        spec = make_spec(problem, cfg)
        state = init_state(problem, spec, cfg.model, seed=0)
        t = jnp.repeat(jnp.array([0.1, 0.4, 0.6, 0.9]), 8)  # 8 points in each chunk
        x = jnp.linspace(2.0, 3.0, t.shape[0])
        pts = jnp.stack([x, t], axis=1)
        got = float(term_losses(spec, problem, state.model, (pts,))[0])
    chunk_losses = np.array([1.0, 1.0, 9.0, 9.0])
    w = np.exp(-np.array([0.0, 1.0, 2.0, 11.0]))
    assert got == pytest.approx(np.mean(w * chunk_losses), rel=1e-6)
    reversed_w = np.exp(-np.array([19.0, 18.0, 9.0, 0.0]))  # chunks taken from the end
    assert abs(got - np.mean(reversed_w * chunk_losses)) > 0.1
    assert abs(got - np.mean(np.array([0, 0, 0, 1.0]) * np.array([0, 0, 0, 5.0]))) > 0.1  # x as time


def test_rad_draws_more_points_where_the_residual_is_large():
    pool = jnp.linspace(-1.0, 1.0, 20001)[:, None]
    r = jnp.where(pool[:, 0] > 0.5, 10.0, 0.1)  # fake residual: large on x > 0.5 (a quarter)
    p = rad_probabilities(r, 1.0, 0.5)
    assert jnp.isclose(p.sum(), 1.0, atol=1e-5)
    x = rad_select(jax.random.key(0), pool, p, 2000)[:, 0]
    share = float(jnp.mean(x > 0.5))
    expected = float(p[pool[:, 0] > 0.5].sum())  # about 0.73 for these numbers
    assert share > 0.6 and abs(share - expected) < 0.06
    assert len(np.unique(np.asarray(x))) == 2000  # without replacement
    # c large: almost uniform; k = 0: exactly uniform
    x = rad_select(jax.random.key(0), pool, rad_probabilities(r, 1.0, 100.0), 2000)[:, 0]
    assert abs(float(jnp.mean(x > 0.5)) - 0.25) < 0.05
    assert jnp.allclose(rad_probabilities(r, 0.0, 1.0), 1.0 / r.shape[0])


def test_gradnorm_weights_formula():
    norms = jnp.array([1.0, 4.0, 0.0])
    w = gradnorm_weights(norms, jnp.ones(3), 0.0)
    assert jnp.allclose(w, jnp.array([5.0, 1.25, 1.0]))  # a term with no gradient keeps its weight
    w = gradnorm_weights(norms, jnp.ones(3), 0.9)
    assert jnp.allclose(w, 0.9 + 0.1 * jnp.array([5.0, 1.25, 1.0]))


def test_gradnorm_keeps_the_weight_of_a_term_at_round_off():
    """A condition met exactly by construction (a periodic embedding) leaves a term whose
    gradient is round-off, ~1e-20 of the others: its weight stays, not ~1e20 (which made the
    weighted loss all round-off noise); a small but real gradient is still balanced."""
    for dtype in (jnp.float32, jnp.float64):
        norms = jnp.array([1.0, 1e-20, 1e-4], dtype)
        w = gradnorm_weights(norms, jnp.full(3, 2.0, dtype), 0.0)
        total = float(jnp.sum(norms))
        assert float(w[1]) == 2.0
        assert float(w[2]) == pytest.approx(total / 1e-4, rel=1e-5)


def test_evaluate_uses_reference_data_when_given():
    from pinnjax.data import ReferenceData, error_metrics

    pts = np.linspace(-1.0, 1.0, 101)[:, None]
    vals = np.sin(np.pi * pts)

    class WithReference(Poisson1D):
        def reference(self):
            return ReferenceData(pts, vals, None, pts, len(pts), pathlib.Path("fake.dat"))

    model = build_model(Poisson1D(), _cfg().model, key=jax.random.key(0))
    out = evaluate(WithReference(), model)
    assert out["eval_points"] == 101
    pred = np.asarray(jax.vmap(model)(jnp.asarray(pts, jnp.float32)))
    assert out["l2re"] == pytest.approx(error_metrics(pred, vals.astype(np.float32))["l2re"], rel=1e-5)
    assert evaluate(Poisson1D(), model, points=500)["eval_points"] == 500


# --- training runs (float32) -------------------------------------------------------------


def test_no_recompile_across_chunks_and_runs(tmp_path):
    # checkpoint_every 70 with scan_steps 50 gives chunks of 50, 20, 30, ... steps
    cfg = _cfg(train={"steps": 300, "checkpoint_every": 70}, sampling={"interior": 48})
    before = dict(TRACE_COUNTS)
    fit(Poisson1D(), cfg, tmp_path / "a")
    assert TRACE_COUNTS["adam_chunk"] - before.get("adam_chunk", 0) == 1
    after_first = dict(TRACE_COUNTS)
    fit(Poisson1D(), cfg, tmp_path / "b")  # a second run, same settings: no tracing at all
    assert dict(TRACE_COUNTS) == after_first
    # the compiled chunk itself: a traced step count, so any length reuses one executable
    with precision("float32"):  # the context fit runs float32 in
        spec = make_spec(Poisson1D(), cfg)
        state = init_state(Poisson1D(), spec, cfg.model, seed=1)
        for n in (0, 7, 50):
            state, _ = adam_chunk(spec, state, jnp.asarray(n, jnp.int32))
    assert int(state.step) == 57 and dict(TRACE_COUNTS) == after_first


def test_same_seed_same_numbers(tmp_path, capsys):
    cfg = _cfg(train={"steps": 150, "lbfgs_steps": 20}, sampling={"resample_every": 3})
    m1 = fit(Poisson1D(), cfg, tmp_path / "a")
    assert capsys.readouterr().err == ""  # progress=None: no bar when stderr is not a terminal
    m2 = fit(Poisson1D(), cfg, tmp_path / "b")
    assert {k: v for k, v in m1.items() if k not in _TIMING} == {k: v for k, v in m2.items() if k not in _TIMING}
    s1, _ = load_run_state(Poisson1D(), cfg, tmp_path / "a")
    s2, _ = load_run_state(Poisson1D(), cfg, tmp_path / "b")
    assert _leaves_equal(s1, s2)
    m3 = fit(Poisson1D(), config_from_dict({**config_to_dict(cfg), "seed": 1}), tmp_path / "c")
    assert m3["final_loss"] != m1["final_loss"]


_KILL_SCRIPT = """
import os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jax.numpy as jnp
import pinnjax as pj
import pinnjax.train._fit as F
from pinnjax.config import config_from_dict

class KillPoisson(pj.Problem):
    domain = pj.Interval(-1.0, 1.0)
    needs = ("u_xx",)
    conditions = (pj.Dirichlet(0.0),)
    def residual(self, x, d):
        return d.u_xx + jnp.pi**2 * jnp.sin(jnp.pi * x[0])
    def exact(self, x):
        return jnp.sin(jnp.pi * x[0])

CFG = config_from_dict({
    "problem": {"name": "kill"},
    "model": {"width": 16, "depth": 2},
    "train": {"steps": 200, "lbfgs_steps": 150, "scan_steps": 50, "log_every": 10,
              "checkpoint_every": 100},
    "sampling": {"interior": 64, "boundary": 16, "resample_every": 3, "rad": True,
                 "rad_every": 40, "rad_pool": 256},
    "loss": {"balancing": "gradnorm", "balance_every": 25},
    "eval": {"every": 100, "points": 200},
    "output": {"plots": False, "keep_checkpoints": 10},
})

if __name__ == "__main__":
    slow = float(os.environ.get("PJ_SLOW", "0"))
    if slow:  # give the test time to kill us right after a checkpoint
        save = F.save_checkpoint
        def slow_save(*a, **k):
            out = save(*a, **k)
            time.sleep(slow)
            return out
        F.save_checkpoint = slow_save
    F.fit(KillPoisson(), CFG, sys.argv[1], resume=sys.argv[2] == "resume")
"""


def _spawn(script, run_dir, mode, slow=0.0):
    env = {**os.environ, "PJ_SLOW": str(slow), "JAX_PLATFORMS": "cpu",
           # later processes reuse the first ones' executables (same programs, less waiting)
           "JAX_COMPILATION_CACHE_DIR": str(script.parent / "jax_cache"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen([sys.executable, str(script), str(run_dir), mode], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill_after(proc, path, timeout=240):
    t0 = time.time()
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"run ended before {path.name}: {proc.stderr.read().decode()[-2000:]}")
        if time.time() - t0 > timeout:
            proc.kill()
            raise AssertionError(f"{path.name} never appeared")
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def kill_twice_and_finish(tmp_path, script_text, name, kills, after_first_kill=None):
    """Run `script_text` (a module `name` defining ``CFG`` and ``KillPoisson``) unbroken, and
    beside it a run SIGKILLed right after its checkpoints at steps ``kills[0]`` and
    ``kills[1]``, each time resumed in a fresh process. Returns (module, whole, broken)."""
    script = tmp_path / f"{name}.py"
    script.write_text(textwrap.dedent(script_text))
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    ref = _spawn(script, whole, "fresh")  # runs beside the first broken run
    p = _spawn(script, broken, "fresh", slow=1.5)
    _kill_after(p, broken / "checkpoints" / f"step_{kills[0]:08d}.eqx")
    if after_first_kill is not None:
        after_first_kill(broken)
    p = _spawn(script, broken, "resume", slow=1.5)
    _kill_after(p, broken / "checkpoints" / f"step_{kills[1]:08d}.eqx")
    p = _spawn(script, broken, "resume")
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err.decode()[-3000:]
    _, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err.decode()[-3000:]
    sys.path.insert(0, str(tmp_path))
    try:
        sys.modules.pop(name, None)
        mod = importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))
    return mod, whole, broken


def _kill_resume_and_compare(tmp_path, script_text):
    """SIGKILL a real run after its first checkpoint (Adam phase), resume it in a fresh process,
    kill it again inside the L-BFGS phase, resume again; compare with an unbroken run."""

    def only_first(broken):
        assert [s for s, _ in list_checkpoints(broken / "checkpoints")] == [100]

    mod, whole, broken = kill_twice_and_finish(tmp_path, script_text, "killrun", (100, 300), only_first)
    a, ha = load_run_state(mod.KillPoisson(), mod.CFG, whole)
    b, hb = load_run_state(mod.KillPoisson(), mod.CFG, broken)
    assert ha["step"] == hb["step"] == 350
    assert int(b.phase) == 1
    assert _leaves_equal(a.model, b.model) and _leaves_equal(a, b)
    assert ha["sha256"] == hb["sha256"]  # the whole TrainState, byte for byte
    # the history was kept and continued: every logged step once, in order
    steps = [r["step"] for r in read_history(broken)]
    assert steps == list(range(10, 351, 10))
    assert [r["loss"] for r in read_history(broken)] == [r["loss"] for r in read_history(whole)]
    return a


def test_kill_and_resume_is_bit_for_bit(tmp_path):
    """Kill-and-resume of an MLP run equals an unbroken run's, bit for bit (RAD, resampling
    every 3 steps and gradnorm on)."""
    _kill_resume_and_compare(tmp_path, _KILL_SCRIPT)


@pytest.mark.slow  # ~85 s on 2 shared cores; the MLP version above runs by default
def test_kill_and_resume_of_a_pirate_net_is_bit_for_bit(tmp_path):
    """The same with a PirateNet on Fourier features (trained skip weights, fixed Fourier
    matrix): the trainer, checkpoints and resume do not depend on the network class."""
    model = '"model": {"type": "pirate", "width": 8, "blocks": 2, "embedding": {"type": "fourier", "features": 4}}'
    text = _KILL_SCRIPT.replace('"model": {"width": 16, "depth": 2}', model)
    assert text != _KILL_SCRIPT
    state = _kill_resume_and_compare(tmp_path, text)
    assert type(state.model).__name__ == "PirateNet" and bool(jnp.all(state.model.alpha != 0))


def test_resume_with_more_steps_and_an_lbfgs_phase(tmp_path):
    run = tmp_path / "r"
    fit(Poisson1D(), _cfg(train={"steps": 100}), run)
    m = fit(Poisson1D(), _cfg(train={"steps": 150, "lbfgs_steps": 20}), run, resume=True)
    assert (m["steps"], m["adam_steps"], m["lbfgs_steps"]) == (170, 150, 20)
    assert [r["step"] for r in read_history(run)] == list(range(10, 171, 10))
    with pytest.raises(ValueError, match=r"counts: \[64, 16\] then, \[32, 16\] now"):
        fit(Poisson1D(), _cfg(train={"steps": 300}, sampling={"interior": 32}), run, resume=True)


def test_nan_loss_stops_with_the_step_and_term(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"step 1 \(adam\): term\(s\) residual") as e:
        fit(NaNPoisson(), _cfg(), tmp_path / "nan")
    assert e.value.step == 1 and e.value.terms == ("residual",)
    assert list_checkpoints(tmp_path / "nan" / "checkpoints") == []


def test_inf_loss_keeps_the_last_good_checkpoint(tmp_path):
    run = tmp_path / "late"
    fit(Poisson1D(), _cfg(train={"steps": 100, "checkpoint_every": 50}), run)
    good = run / "checkpoints" / "step_00000100.eqx"
    before = good.read_bytes()
    # the same run continued with a residual that is infinite from step 101 on
    with pytest.raises(NonFiniteLossError, match=r"step 101 \(adam\): term\(s\) residual went non-finite") as e:
        fit(InfPoisson(), _cfg(train={"steps": 300, "checkpoint_every": 50}), run, resume=True)
    assert e.value.step == 101 and str(good) in str(e.value)
    assert [s for s, _ in list_checkpoints(run / "checkpoints")] == [50, 100]
    assert good.read_bytes() == before


def test_gradnorm_rad_and_friends_train(tmp_path):
    """Gradnorm weights move away from 1 and stay finite, with RAD, resampling every 5 steps,
    warm-up + cosine decay and a Fourier embedding in the same run."""
    cfg = _cfg(
        model={"embedding": {"type": "fourier", "features": 8, "scale": 1.0}},
        train={"steps": 300, "warmup_steps": 50, "decay": "cosine"},
        sampling={"resample_every": 5, "rad": True, "rad_every": 100, "rad_pool": 512},
        loss={"balancing": "gradnorm", "balance_every": 20, "balance_momentum": 0.5,
              "weights": {"dirichlet": 2.0}},
    )
    m = fit(Poisson1D(), cfg, tmp_path / "g")
    w = m["weights"]
    assert all(math.isfinite(v) for v in w.values())
    # lambda_i = sum_j |grad L_j| / |grad L_i| >= 1: the weaker-gradient term gains weight
    assert w["residual"] >= 1.0 and w["dirichlet"] > 2.0 * 1.1, w  # 2.0 is its fixed weight
    rows = read_history(tmp_path / "g")
    assert {r["weight_dirichlet"] for r in rows if "weight_dirichlet" in r}.__len__() > 3
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert rows[0]["lr"] < rows[10]["lr"] and rows[-1]["lr"] < 1e-4  # warm-up, then cosine


def test_ntk_traces_match_the_full_jacobian_and_weights_follow_them(tmp_path):
    """NTK-trace balancing (Wang, Yu & Perdikaris 2022): each term's trace is the mean over its
    points of ||d r / d theta||^2, checked against jax.jacrev of the whole batched residual
    (float64); the weights are sum_j tr_j / tr_i; a training run with them logs them."""
    from jax.flatten_util import ravel_pytree

    from pinnjax.train._loss import NTK_TRACE_POINTS, ntk_weights, term_ntk_traces
    from pinnjax.train._sampling import draw_points
    from pinnjax.train._spec import active_terms
    from pinnjax.train._state import split_params

    with jax.enable_x64(True):
        cfg = _cfg(model={"width": 8, "depth": 2, "dtype": "float64"}, sampling={"interior": 40})
        problem = Poisson1D()
        spec = make_spec(problem, cfg)
        state = init_state(problem, spec, cfg.model, seed=0)
        params, rest = split_params(state)
        points = draw_points(spec, problem, jax.random.PRNGKey(1))
        # both sides compiled, as in the trainer's step (op by op they took seconds)
        traces = jax.jit(lambda p: term_ntk_traces(spec, p, rest, points))(params)
        flat, unravel = ravel_pytree(params)
        expected = []
        for term, pts in zip(active_terms(problem, spec), points):
            def batched(fl, term=term, pts=pts[:NTK_TRACE_POINTS]):
                model, prob = eqx.combine(unravel(fl), rest)
                return term.residuals(prob, model, pts).reshape(-1)
            J = jax.jit(jax.jacrev(batched))(flat)  # (points * components, P)
            expected.append(jnp.sum(J**2) / pts[:NTK_TRACE_POINTS].shape[0])
        np.testing.assert_allclose(traces, jnp.stack(expected), rtol=1e-10)
        assert traces.shape == (2,) and bool(jnp.all(traces > 0))
        w = ntk_weights(traces, jnp.ones(2), 0.0)
        np.testing.assert_allclose(w, jnp.sum(traces) / traces, rtol=1e-12)

    cfg = _cfg(train={"steps": 100}, loss={"balancing": "ntk", "balance_every": 25, "balance_momentum": 0.0})
    m = fit(Poisson1D(), cfg, tmp_path / "ntk")
    w = m["weights"]
    # with momentum 0 the weights are sum_j tr_j / tr_i at the last balancing step, so the
    # reciprocals sum to 1 (and neither is 1: the two kernels differ)
    assert sum(1.0 / v for v in w.values()) == pytest.approx(1.0, rel=1e-5), w
    assert all(v > 1.0 for v in w.values()), w
    rows = read_history(tmp_path / "ntk")
    assert len({r["weight_dirichlet"] for r in rows}) >= 3  # rebalanced every 25 steps
    assert rows[-1]["loss_residual"] + rows[-1]["loss_dirichlet"] < rows[0]["loss_residual"] + rows[0]["loss_dirichlet"]


def test_inverse_problem_learns_kappa(tmp_path):
    cfg = _cfg(model={"width": 32, "depth": 3}, train={"steps": 1500, "lbfgs_steps": 300, "checkpoint_every": 5000,
                                                      "scan_steps": 100, "log_every": 100},
               sampling={"interior": 256}, eval={"every": 2000})
    m = fit(InversePoisson(0.5), cfg, tmp_path / "inv")
    kappa = m["unknowns"]["kappa"]
    assert abs(kappa - 1.0) < 0.02, kappa
    state, _ = load_run_state(InversePoisson(0.5), cfg, tmp_path / "inv")
    assert float(state.problem.kappa) == pytest.approx(kappa)


def test_poisson_1d_accuracy_lbfgs_and_run_folder(tmp_path, capsys):
    """Adam then L-BFGS to L2 relative error < 1e-3 (float32, well inside 60 s of training);
    L-BFGS lowers the loss; the run folder has everything; evaluate_run agrees."""
    cfg = _cfg(model={"width": 32, "depth": 3},
               train={"steps": 2000, "lbfgs_steps": 500, "scan_steps": 100, "log_every": 100, "checkpoint_every": 1000},
               sampling={"interior": 256}, eval={"every": 500, "points": 1000}, output={"plots": True})
    run = tmp_path / "poisson"
    m = fit(Poisson1D(), cfg, run, progress=True)
    assert m["l2re"] < 1e-3 and m["train_seconds"] < 60, m
    assert m["best_l2re"] <= m["l2re"] and m["steps"] == 2500 and m["lbfgs_steps"] == 500
    for key in ("max_error", "compile_seconds", "steps_per_second", "final_loss", "loss_residual", "loss_dirichlet"):
        assert m[key] is not None and math.isfinite(m[key]), key
    rows = read_history(run)
    at_switch = next(r for r in rows if r["step"] == 2000)
    first_lbfgs = next(r for r in rows if r["phase"] == "lbfgs")
    assert rows[-1]["loss"] < 0.05 * at_switch["loss"]
    assert rows[-1]["loss"] < first_lbfgs["loss"]
    assert {"step", "phase", "loss", "loss_residual", "loss_dirichlet", "lr", "elapsed"} <= set(rows[0])
    assert [r["step"] for r in rows if "l2re" in r] == [500, 1000, 1500, 2000, 2500]
    assert [s for s, _ in list_checkpoints(run / "checkpoints")] == [1000, 2000, 2500]
    assert json.loads((run / "metrics.json").read_text())["l2re"] == m["l2re"]
    assert (run / "plots" / "loss.png").stat().st_size > 0 and (run / "plots" / "solution.png").stat().st_size > 0
    assert (run / "config.yaml").is_file()
    err = capsys.readouterr().err
    assert "2500/2500" in err and "residual=" in err and "l2re=" in err

    (run / "metrics.json").unlink()
    (run / "plots" / "solution.png").unlink()
    again = evaluate_run(Poisson1D(), cfg, run)
    assert again["l2re"] == pytest.approx(m["l2re"], rel=1e-6)
    assert (run / "plots" / "solution.png").is_file()
    state, _ = load_run_state(Poisson1D(), cfg, run)
    assert evaluate(Poisson1D(), state.model, points=1000)["l2re"] == pytest.approx(m["l2re"], rel=1e-6)
    # resuming a finished run trains nothing more and reports the same error
    again = fit(Poisson1D(), cfg, run, resume=True)
    assert again["steps"] == 2500 and again["l2re"] == pytest.approx(m["l2re"], rel=1e-6)
    with pytest.raises(FileExistsError, match="resume=True"):
        fit(Poisson1D(), cfg, run)


def test_heat_1d_accuracy(tmp_path):
    """u_t = 0.4 u_xx: Adam then L-BFGS to L2 relative error < 1e-3 (float32)."""
    cfg = _cfg(model={"width": 32, "depth": 3},
               train={"steps": 2000, "lbfgs_steps": 1000, "scan_steps": 100, "log_every": 100,
                      "checkpoint_every": 5000},
               sampling={"interior": 1000, "boundary": 200, "initial": 200},
               eval={"every": 1000, "points": 2000})
    m = fit(Heat1D(), cfg, tmp_path / "heat")
    assert m["l2re"] < 1e-3, m  # speed is measured by the benchmarks, never asserted here


def test_causal_training_runs(tmp_path):
    cfg = _cfg(train={"steps": 200}, loss={"causal": True, "causal_chunks": 8, "causal_eps": 1.0})
    m = fit(Heat1D(), cfg, tmp_path / "c")
    assert math.isfinite(m["final_loss"]) and m["final_loss"] < read_history(tmp_path / "c")[0]["loss"]


def test_plots_for_any_dimension(tmp_path):
    class Poisson2D(pj.Problem):
        domain = pj.Box([-1.0, -1.0], [1.0, 1.0]) - pj.Ball([0.0, 0.0], 0.3)
        needs = ("lap_u",)
        conditions = (pj.Dirichlet(0.0),)

        def residual(self, x, d):
            return d.lap_u

        def exact(self, x):
            return x[0] * x[1]

    class Heat2D(pj.Problem):
        domain = pj.Box([0.0, 0.0], [1.0, 1.0]) * pj.TimeInterval(0.0, 1.0)
        needs = ("u_t", "lap_u")
        conditions = (pj.Dirichlet(0.0),)

        def residual(self, x, d):
            return d.u_t - d.lap_u

        def exact(self, x):
            return jnp.sin(jnp.pi * x[0]) * jnp.sin(jnp.pi * x[1]) * jnp.exp(-x[2])

    class Box4D(pj.Problem):
        domain = pj.Box([0.0] * 4, [1.0] * 4)
        needs = ("lap_u",)

        def residual(self, x, d):
            return d.lap_u

    rows = [{"step": 10, "phase": "adam", "loss": 1.0, "loss_residual": 0.5, "l2re": 0.3},
            {"step": 20, "phase": "lbfgs", "loss": 0.1, "loss_residual": 0.05}]
    for prob in (Poisson1D(), Poisson2D(), Heat1D(), Heat2D(), Box4D()):
        out = tmp_path / type(prob).__name__
        model = build_model(prob, _cfg(model={"width": 8, "depth": 1}).model, key=jax.random.key(0))
        made = make_plots(prob, model, rows, out, eval_points=500)
        names = {p.name for p in made}
        assert {"loss.png", "solution.png"} <= names, (type(prob).__name__, names)
        if isinstance(prob, Heat1D):
            assert "solution_slices.png" in names


# --- float64 --------------------------------------------------------------------------


def test_float64_run(tmp_path):
    cfg = _cfg(model={"dtype": "float64"}, train={"steps": 100, "lbfgs_steps": 20})
    x64_before = jax.config.jax_enable_x64
    m = fit(Poisson1D(), cfg, tmp_path / "f64")
    assert jax.config.jax_enable_x64 == x64_before  # no process-wide switch behind the caller
    state, _ = load_run_state(Poisson1D(), cfg, tmp_path / "f64")
    assert state.model.layers[0].V.dtype == jnp.float64 and state.points[0].dtype == jnp.float64
    assert m["dtype"] == "float64" and math.isfinite(m["l2re"])


def test_pirate_least_squares_init_fits_the_condition_values():
    """With ``least_squares_init`` the PirateNet's output layer solves the least-squares problem
    on the Dirichlet and initial values: the gradient of that fit's loss w.r.t. the layer
    vanishes (normal equations), and the fit is far better than the random layer's."""
    p = Heat1D()
    model_cfg = {"type": "pirate", "width": 16, "depth": None, "blocks": 2, "embedding": {"type": "fourier", "features": 8}}
    plain = build_model(p, _cfg(model=model_cfg).model, key=jax.random.key(3))
    fitted = build_model(p, _cfg(model={**model_cfg, "least_squares_init": True}).model, key=jax.random.key(3))
    assert _leaves_equal(plain.blocks, fitted.blocks) and not _leaves_equal(plain.output, fitted.output)
    key = jax.random.key(7)  # fresh points: the fit generalises along the boundary
    xs, gs = [], []
    for i, term in enumerate(p.terms()[1:]):
        x = term.sample(p, jax.random.fold_in(key, i), 512)
        xs.append(x)
        gs.append(jax.vmap(lambda q, c=term.condition: jnp.asarray(c.value(q) if callable(c.value) else c.value, q.dtype))(x))
    x, g = jnp.concatenate(xs), jnp.concatenate(gs)

    def fit_loss(m):
        return jnp.mean((jax.vmap(m)(x)[:, 0] - g) ** 2)

    loss_and_grad = eqx.filter_jit(eqx.filter_value_and_grad(fit_loss))
    (loss_fitted, grad_fitted), (loss_plain, grad_plain) = loss_and_grad(fitted), loss_and_grad(plain)
    assert float(loss_fitted) < 1e-2 * float(loss_plain)
    grad_out, grad_plain = grad_fitted.output.V, grad_plain.output.V
    assert float(jnp.max(jnp.abs(grad_out))) < 1e-2 * float(jnp.max(jnp.abs(grad_plain)))
