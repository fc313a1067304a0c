"""The pinnjax command: bad input is one clear line, exit status 2, and nothing written."""

import os
import pathlib
import subprocess
import sys

import pytest

from pinnjax.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_cli(args, tmp_path, capsys):
    """Run the CLI in-process; return (exit status, stderr)."""
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        try:
            status = main(args)
        except SystemExit as exc:
            status = exc.code
    finally:
        os.chdir(cwd)
    return status, capsys.readouterr().err


def write(tmp_path, text, name="cfg.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, overrides, message",
    [
        ("problem: {name: poisson1d}\ntrain: {stpes: 10}\n", [], "unknown key 'train.stpes' (did you mean 'train.steps'?)"),
        ("problem: {name: poisson1d}\ntrain: {steps: many}\n", [], "train.steps"),
        ("problem: {name: poison1d}\n", [], "did you mean 'poisson1d'?"),
        ("problem: {name: poisson1d}\nmodel: {width: [1,\n", [], "invalid YAML"),
        ("problem: {name: poisson1d}\n", ["train.steps=abc"], "train.steps"),
        ("problem: {name: poisson1d}\n", ["model.widht=3"], "did you mean 'model.width'?"),
        ("problem: {name: poisson1d, params: {alpah: 1}}\n", [], "problem.params.alpah"),
        ("problem: {name: missing.py:Foo}\n", [], "file not found: missing.py"),
        ("base: nowhere.yaml\nproblem: {name: poisson1d}\n", [], "nowhere.yaml"),
        ("problem: {name: poisson1d}\nloss: {weights: {residul: 2.0}}\n", [], "did you mean 'residual'"),
        ("problem: {name: poisson1d}\nloss: {causal: true}\n", [], "key 'loss.causal' is true but Poisson1D is steady"),
        ("problem: {name: allen_cahn1d}\nmodel: {hard_constraint: true}\n", [], "key 'model.hard_constraint' is true but AllenCahn1D"),
        ("problem: {name: heat1d}\nloss: {weights: {dirichlet: 1, intial: 2}}\n", [], "did you mean 'initial' for 'intial'?"),
        ("problem: {name: poisson1d}\n", ["model.dtype=float16"], "model.dtype"),
        ("problem: {name: poisson1d}\nmodel: {embedding: {features: 8}}\n", [], "model.embedding"),
        ("problem: {name: poisson1d}\nmodel: {activation: relux}\n", [], "unknown activation 'relux'"),
        ("problem: {name: poisson1d}\nmodel: {embedding: {type: periodic, axes: [5], periods: [1.0]}}\n", [], "key 'model'"),
        ("problem: {name: heatnd, params: {dim: 0}}\n", [], "problem HeatND is invalid"),
        ("problem: {name: inverse_diffusion}\nloss: {regularization: tv}\n", [], "key 'loss.regularization' is 'tv'"),
        ("problem: {name: poisson1d}\nloss: {regularization: tikhonov}\n", [], "Poisson1D has no unknowns"),
    ],
)
def test_bad_config_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, text, overrides, message):
    cfg = write(tmp_path, text)
    args = ["run", str(cfg), "--out", str(tmp_path / "out")]
    for o in overrides:
        args += ["--set", o]
    status, err = run_cli(args, tmp_path, capsys)
    assert status == 2
    lines = [l for l in err.strip().splitlines() if l]
    assert len(lines) == 1, err
    assert lines[0].startswith("pinnjax: error:")
    assert message in lines[0], lines[0]
    assert not (tmp_path / "out").exists()
    assert "Traceback" not in err


def test_missing_config_file(tmp_path, capsys):
    status, err = run_cli(["run", str(tmp_path / "nope.yaml")], tmp_path, capsys)
    assert status == 2 and "nope.yaml" in err and "Traceback" not in err


def test_resume_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    status, err = run_cli(["resume", str(tmp_path)], tmp_path, capsys)
    assert status == 2 and "config.yaml" in err


def test_user_problem_reading_an_undeclared_derivative(tmp_path, capsys):
    (tmp_path / "mine.py").write_text(
        "import pinnjax as pj\n"
        "class Undeclared(pj.Problem):\n"
        "    domain = pj.Interval(0.0, 1.0)\n"
        "    needs = ('u_x',)\n"
        "    def residual(self, x, d):\n"
        "        return d.u_xx\n"
    )
    cfg = write(tmp_path, "problem: {name: mine.py:Undeclared}\n")
    status, err = run_cli(["run", str(cfg), "--out", str(tmp_path / "o")], tmp_path, capsys)
    assert status == 2 and "'u_xx' was used but not declared" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_user_problem_file_class_not_found(tmp_path, capsys):
    (tmp_path / "mine.py").write_text(
        "import pinnjax as pj\n"
        "class MyPoisson(pj.Problem):\n"
        "    domain = pj.Interval(0.0, 1.0)\n"
        "    needs = ('u_xx',)\n"
        "    def residual(self, x, d):\n"
        "        return d.u_xx\n"
    )
    cfg = write(tmp_path, "problem: {name: mine.py:MyPoison}\n")
    status, err = run_cli(["run", str(cfg), "--out", str(tmp_path / "o")], tmp_path, capsys)
    assert status == 2 and "did you mean 'MyPoisson'?" in err


def test_python_dash_m_works():
    out = subprocess.run([sys.executable, "-m", "pinnjax", "list"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "poisson2d" in out.stdout


@pytest.mark.parametrize("net", ["modified_mlp", "pirate", "resnet"])
def test_every_network_trains_resumes_and_evaluates_from_the_cli(net, tmp_path, capsys):
    """run, resume (more steps) and eval with each non-default network from the CLI: the run
    trains (finite losses, the parameters move; PirateNet's skip weights leave 0), and the
    checkpoint holds the configured network."""
    import json

    import jax.numpy as jnp

    from pinnjax.config import load_config
    from pinnjax.io import list_checkpoints
    from pinnjax.train import load_run_state, read_history
    from problems import Poisson1D

    size = "depth: 2" if net == "modified_mlp" else "blocks: 1"
    cfg = write(
        tmp_path,
        "problem: {name: poisson1d}\n"
        f"model: {{type: {net}, width: 8, {size}, embedding: {{type: fourier, features: 4}}}}\n"
        "train: {steps: 6, scan_steps: 3, log_every: 3, checkpoint_every: 3, lr: 0.01}\n"
        "sampling: {interior: 32, boundary: 8}\neval: {every: 3, points: 64}\noutput: {plots: false}\n",
    )
    out = tmp_path / "run"
    status, err = run_cli(["run", str(cfg), "--out", str(out)], tmp_path, capsys)
    assert status == 0, err
    status, err = run_cli(["resume", str(out), "--set", "train.steps=9"], tmp_path, capsys)
    assert status == 0, err
    status, err = run_cli(["eval", str(out)], tmp_path, capsys)
    assert status == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 9 and bool(jnp.isfinite(metrics["final_loss"]))
    assert [r["step"] for r in read_history(out)] == [3, 6, 9]
    assert [s for s, _ in list_checkpoints(out / "checkpoints")][-1] == 9
    run_cfg = load_config(out / "config.yaml")
    assert run_cfg.model.type == net
    state, _ = load_run_state(Poisson1D(), run_cfg, out)
    assert type(state.model).__name__ == {"modified_mlp": "ModifiedMLP", "pirate": "PirateNet", "resnet": "ResNet"}[net]
    if net == "pirate":
        assert bool(jnp.all(state.model.alpha != 0))


# --- resuming: a config that no longer fits, corrupted checkpoints --------------------------

TINY = """problem: {name: poisson1d}
model: {width: 8, depth: 1}
train: {steps: 20, scan_steps: 10, checkpoint_every: 10, log_every: 10}
sampling: {interior: 16, boundary: 2}
eval: {every: 10, points: 50}
output: {plots: false, keep_checkpoints: 5}
"""


@pytest.fixture
def tiny_run(tmp_path, capsys):
    """A finished 20-step run with checkpoints at steps 10 and 20."""
    cfg = write(tmp_path, TINY)
    status, err = run_cli(["run", str(cfg), "--out", str(tmp_path / "run")], tmp_path, capsys)
    assert status == 0, err
    return tmp_path / "run"


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line_exit_2(status, err, message):
    lines = [l for l in err.strip().splitlines() if l]
    assert status == 2, err
    assert len(lines) == 1 and lines[0].startswith("pinnjax: error:"), err
    assert message in lines[0], lines[0]


def _corrupt(path):
    blob = bytearray(path.read_bytes())
    blob[-3] ^= 0xFF  # one payload byte: the checksum no longer matches
    path.write_bytes(bytes(blob))


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.width=16", "key 'model.width' cannot change when resuming (8 in the run, 16 now)"),
        ("sampling.interior=32", "key 'sampling.interior' cannot change when resuming"),
        ("seed=3", "key 'seed' cannot change when resuming"),
        ("problem.name=poisson2d", "key 'problem.name' cannot change when resuming"),
        ("train.stpes=40", "did you mean 'train.steps'?"),
    ],
)
def test_resume_with_a_config_that_does_not_fit_is_one_line(tiny_run, capsys, override, message):
    before = _snapshot(tiny_run)
    status, err = run_cli(["resume", str(tiny_run), "--set", override], tiny_run.parent, capsys)
    _one_line_exit_2(status, err, message)
    assert _snapshot(tiny_run) == before


def test_resume_skips_a_corrupted_latest_checkpoint(tiny_run, capsys):
    """The newest checkpoint is corrupted: resume names it, continues from step 10 and ends
    bit-for-bit on the state the unbroken run had written at step 20."""
    from pinnjax.io import read_checkpoint_info

    latest = tiny_run / "checkpoints" / "step_00000020.eqx"
    unbroken = read_checkpoint_info(latest)["sha256"]  # of the payload: the state's leaves
    _corrupt(latest)
    status, err = run_cli(["resume", str(tiny_run)], tiny_run.parent, capsys)
    assert status == 0, err
    assert f"skipped checkpoint {latest}: checkpoint is corrupted (checksum mismatch)" in err
    assert read_checkpoint_info(latest)["sha256"] == unbroken
    assert (tiny_run / "checkpoints" / "step_00000020.eqx.corrupt").is_file()


@pytest.mark.parametrize("command", ["resume", "eval"])
def test_no_checkpoint_verifies_is_one_line_and_writes_nothing(tiny_run, capsys, command):
    ckpts = tiny_run / "checkpoints"
    _corrupt(ckpts / "step_00000020.eqx")
    (ckpts / "step_00000010.eqx").write_bytes(b"PINNJAX-CHECKPOINT\n{trunc")
    before = _snapshot(tiny_run)
    status, err = run_cli([command, str(tiny_run)], tiny_run.parent, capsys)
    _one_line_exit_2(status, err, "no checkpoint verifies (step_00000020.eqx: checkpoint is corrupted")
    assert "step_00000010.eqx: checkpoint header is truncated" in err
    assert _snapshot(tiny_run) == before


def test_eval_of_a_run_without_checkpoints(tiny_run, capsys):
    for p in (tiny_run / "checkpoints").iterdir():
        p.unlink()
    status, err = run_cli(["eval", str(tiny_run)], tiny_run.parent, capsys)
    _one_line_exit_2(status, err, "no checkpoints in")


def test_run_into_an_existing_run_or_a_file(tiny_run, capsys):
    cfg = tiny_run.parent / "cfg.yaml"
    status, err = run_cli(["run", str(cfg), "--out", str(tiny_run)], tiny_run.parent, capsys)
    _one_line_exit_2(status, err, "already holds a run")
    (tiny_run.parent / "afile").write_text("x")
    status, err = run_cli(["run", str(cfg), "--out", str(tiny_run.parent / "afile")], tiny_run.parent, capsys)
    _one_line_exit_2(status, err, "is a file, not a run folder")
