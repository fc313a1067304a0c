"""Several devices and processes (``distributed``): the points split over a 1-D device mesh
give the one-device numbers to round-off for Adam, L-BFGS and both Gauss-Newton solves (J^T J
summed from per-device blocks, and the Woodbury form); a run resumes on another device count;
two processes train one run that process 0 alone writes; ``model.matmul_precision`` reaches
the compiled step.

Forced host devices (``--xla_force_host_platform_device_count``) must be set before JAX
starts, so those runs happen in subprocesses (``tests/distributed_worker.py``); they are
forced CPU devices, which tests the sharding, not speed. The two-process test is marked slow
(``python -m pytest -m slow tests/test_distributed.py``)."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys

import equinox as eqx
import numpy as np
import pytest

from pinnjax.config import ConfigError
from pinnjax.problems import Poisson1D

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "distributed_worker.py"

# Both runs are float64 and differ only in the order of sums (each device sums its points,
# then the devices' sums are added): measured 0 to 3e-16 relative per step for Adam, L-BFGS
# and LM, up to 2e-13 after the ENGD steps, whose Woodbury solve with damping 1e-4 magnifies
# rounding by the conditioning of J J^T + 1e-4 I. 1e-10 is far below any real difference
# (a term counted twice, or the points of one device only, changes the loss at 1e-2).
RTOL = 1e-10


def _env():
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.fixture(scope="module")
def equal_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("distributed")
    done = subprocess.run([sys.executable, str(WORKER), "equal", str(out)], capture_output=True, text=True,
                          cwd=ROOT, env=_env(), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "equal.json").read_text())


def test_four_devices_give_the_one_device_numbers(equal_runs):
    one, four = np.asarray(equal_runs["losses1"]), np.asarray(equal_runs["losses4"])
    assert one.shape == four.shape == (12,)  # adam 4, lbfgs 3, lm 3, engd 2
    np.testing.assert_allclose(four, one, rtol=RTOL)
    assert np.all(np.diff(one[7:]) < 0)  # the Gauss-Newton steps were taken, not rejected
    m1, m4 = equal_runs["metrics1"], equal_runs["metrics4"]
    assert m1["mesh"]["devices"] == 1 and m1["mesh"]["axis"] is None
    assert m4["mesh"] == {"devices": 4, "processes": 1, "platform": "cpu", "device_kind": "cpu", "axis": "points"}
    np.testing.assert_allclose(m4["l2re"], m1["l2re"], rtol=RTOL)


def test_a_run_on_four_devices_resumes_on_two(equal_runs):
    """Cut off after step 8 (its first LM step), resumed with distributed.devices = 2: the
    same losses as the unbroken one-device run."""
    np.testing.assert_allclose(equal_runs["losses_resumed"], equal_runs["losses1"], rtol=RTOL)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two more JAX processes compiling four phases: about 40 s of CPU time
def test_two_processes_train_one_run_that_process_0_writes(equal_runs, tmp_path):
    """Two local processes with 2 forced CPU devices each (coordinator on localhost) train
    the same config as one 4-device mesh. Process 1 is given another run folder: it must stay
    unwritten."""
    port = str(_free_port())
    procs = [
        subprocess.Popen([sys.executable, str(WORKER), "process", str(tmp_path), str(pid), port],
                         cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for pid in (0, 1)
    ]
    try:
        outs = [p.communicate(timeout=900) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    run = tmp_path / "run0"
    assert not (tmp_path / "run1").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["mesh"]["devices"] == 4 and metrics["mesh"]["processes"] == 2
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step_00000004.eqx", "step_00000008.eqx", "step_00000012.eqx"]
    from pinnjax.train import read_history

    losses = [row["loss"] for row in read_history(run)]
    np.testing.assert_allclose(losses, equal_runs["losses1"], rtol=RTOL)


# --- in this process (one device) --------------------------------------------------------


def _spec_and_state(matmul_precision):
    import dataclasses

    from pinnjax._solve import make_config
    from pinnjax.train import init_state, make_spec

    cfg = make_config(Poisson1D(), None, model={"width": 8, "depth": 2},
                      train={"steps": 2, "scan_steps": 2}, sampling={"interior": 16, "boundary": 2})
    spec = dataclasses.replace(make_spec(Poisson1D(), cfg), matmul_precision=matmul_precision)
    return spec, init_state(Poisson1D(), spec, cfg.model, seed=0)


@pytest.mark.parametrize("setting", [None, "highest"])
def test_matmul_precision_reaches_the_compiled_step(setting):
    """Every matmul of the traced step carries the precision: JAX writes it into each
    dot_general when ``jax.default_matmul_precision`` is set where the step is traced."""
    from pinnjax.train import phase_chunk

    spec, state = _spec_and_state(setting)
    jaxpr = str(eqx.filter_make_jaxpr(phase_chunk)(spec, 0, state, np.asarray(1, np.int32))[0])
    dots = jaxpr.count("dot_general")
    assert dots > 10
    highest = jaxpr.count("Precision.HIGHEST")
    if setting is None:
        assert highest == 0
    else:
        assert highest >= dots  # each dot lists one precision per operand


def test_matmul_precision_is_resolved_and_recorded():
    from pinnjax._solve import solve
    from pinnjax.train._fit import resolve_matmul_precision

    assert resolve_matmul_precision("auto") is None  # CPU: the backend's default
    assert resolve_matmul_precision("high") == "high"
    sol = solve(Poisson1D(), model={"width": 8, "depth": 2, "matmul_precision": "highest"},
                train={"steps": 2, "scan_steps": 2}, sampling={"interior": 16, "boundary": 2},
                eval={"points": 32})
    assert sol.metrics["matmul_precision"] == "highest"
    assert sol.metrics["mesh"] == {"devices": 1, "processes": 1, "platform": "cpu", "device_kind": "cpu",
                                   "axis": None}


SEEN_PRECISIONS = []


class PrecisionSpy(Poisson1D):
    """Poisson1D recording the matmul precision in force each time its network is traced
    for a prediction (evaluation, plots, ``Solution(points)``)."""

    def predict(self, model, xs):
        import jax

        SEEN_PRECISIONS.append(jax.config.jax_default_matmul_precision)
        return super().predict(model, xs)


def test_matmul_precision_reaches_evaluation_and_prediction():
    """A GPU run measured its error with TF32 matmuls (an L2 floor near 3e-4 on a float32
    network) while its steps ran at ``highest``: the run's precision must hold wherever its
    network is evaluated."""
    from pinnjax._solve import solve
    from pinnjax.train import evaluate

    SEEN_PRECISIONS.clear()
    sol = solve(PrecisionSpy(), model={"width": 8, "depth": 2, "matmul_precision": "highest"},
                train={"steps": 2, "scan_steps": 2}, sampling={"interior": 16, "boundary": 2},
                eval={"points": 37, "every": 2})
    assert SEEN_PRECISIONS and set(SEEN_PRECISIONS) == {"highest"}  # the evaluation during training
    for call, expected in [
        (lambda: sol(np.linspace(-1, 1, 5)[:, None]), "highest"),
        (lambda: evaluate(sol.problem, sol.model, points=41, matmul_precision="highest"), "highest"),
        (lambda: evaluate(sol.problem, sol.model, points=43, matmul_precision="default"), None),
    ]:
        SEEN_PRECISIONS.clear()
        call()
        assert SEEN_PRECISIONS == [expected]


@pytest.mark.parametrize(("section", "message"), [
    ({"devices": 0}, "key 'distributed.devices' must be positive"),
    ({"devices": "half"}, "key 'distributed.devices': invalid value 'half'"),
    ({"devices": 2.5}, "key 'distributed.devices': expected int or str"),
    ({"num_processes": 0}, "key 'distributed.num_processes' must be positive"),
    ({"process_id": -1}, "key 'distributed.process_id' must be >= 0"),
])
def test_bad_distributed_keys_are_named(section, message):
    from pinnjax.config import config_from_dict

    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        config_from_dict({"problem": {"name": "poisson1d"}, "distributed": section})


def test_more_devices_than_jax_sees_or_a_half_given_process_group_is_an_error(monkeypatch):
    from pinnjax.config import DistributedConfig
    from pinnjax.train import initialize_distributed, make_mesh

    with pytest.raises(ConfigError, match="key 'distributed.devices' is 64 but JAX sees 1 device"):
        make_mesh(DistributedConfig(devices=64))
    assert make_mesh(DistributedConfig()) is None  # one device: the one-device path
    with pytest.raises(ConfigError, match="also needs distributed.coordinator"):
        initialize_distributed(DistributedConfig(num_processes=2))
    monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "localhost:1")
    monkeypatch.setenv("JAX_PROCESS_ID", "5")
    with pytest.raises(ConfigError, match=r"key 'distributed.process_id' is 5: expected 0 \.\. 1"):
        initialize_distributed(DistributedConfig())


def test_cli_names_a_device_count_jax_does_not_have(tmp_path, capsys):
    from pinnjax.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["run", str(ROOT / "configs" / "poisson1d.yaml"), "--out", str(tmp_path / "r"),
              "--set", "distributed.devices=3", "--set", "train.steps=1", "--set", "train.lbfgs_steps=0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "distributed.devices" in err
    assert not (tmp_path / "r").exists()
