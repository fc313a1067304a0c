"""Every shipped config runs end to end for a few steps and writes a complete run folder."""

import dataclasses
import json
import pathlib

import jax
import pytest

from pinnjax.cli import main
from pinnjax.config import load_config

ROOT = pathlib.Path(__file__).resolve().parents[1]
# family_*.yaml are recipes the problem configs inherit (no problem of their own)
CONFIGS = sorted(p.stem for p in (ROOT / "configs").glob("*.yaml") if p.stem != "base" and not p.stem.startswith("family_"))

SMOKE = [
    "train.steps=4", "train.lbfgs_steps=2", "train.scan_steps=2", "train.log_every=2",
    "train.checkpoint_every=2", "eval.every=2", "eval.points=256",
    "sampling.interior=64", "sampling.boundary=32", "sampling.initial=32", "sampling.rad_pool=128",
    "model.width=8", "loss.balance_every=2", "output.plots=false",
]


def _size_override(path) -> str:
    """Two hidden layers, or one block for the residual networks (their key is `blocks`)."""
    return "model.blocks=1" if load_config(path).model.type in ("pirate", "resnet") else "model.depth=2"


# A d = 1,000 config that is its d = 100 sibling with only `problem.params.dim` changed runs
# the same code path with a wider first layer: its smoke run is marked slow (about 12 s of
# compilation each); the sibling's smoke run covers the path by default, and
# `test_d1000_configs_differ_from_their_d100_sibling_only_in_dim` checks the claim.
D100_SIBLING = {name: name[: -len("1000")] + "100" for name in CONFIGS
                if name.endswith("ball1000") and name[: -len("1000")] + "100" in CONFIGS}


def cfg_time_interval(cfg):
    """(t0, t1) of a config's problem."""
    from pinnjax.cli._resolve import make_problem, resolve_problem_class

    cls, _ = resolve_problem_class(cfg.problem.name, ROOT)
    time = make_problem(cls, dict(cfg.problem.params)).domain.time
    return time.t0, time.t1


def test_every_config_is_smoke_tested():
    assert len(CONFIGS) >= 14
    assert len(D100_SIBLING) == 3  # allen_cahn, poisson, sine_gordon on the 1,000-ball


def test_d1000_configs_differ_from_their_d100_sibling_only_in_dim():
    for name, sibling in D100_SIBLING.items():
        cfg, small = load_config(ROOT / "configs" / f"{name}.yaml"), load_config(ROOT / "configs" / f"{sibling}.yaml")
        assert cfg.problem.params == {**small.problem.params, "dim": 1000}, name
        assert small.problem.params["dim"] == 100, sibling
        same_but_dim = dataclasses.replace(cfg, problem=dataclasses.replace(cfg.problem, params=small.problem.params))
        assert same_but_dim == small, name


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in D100_SIBLING else n for n in CONFIGS])
def test_config_smoke_run(name, tmp_path):
    out = tmp_path / "run"
    path = ROOT / "configs" / f"{name}.yaml"
    args = ["run", str(path), "--out", str(out)]
    smoke, expected = SMOKE, 6  # 4 Adam + 2 L-BFGS
    phases = load_config(path).train.phases
    if phases is not None:  # a recipe with train.phases: 4 steps of the first, 2 of each other
        smoke = [s for s in SMOKE if not s.startswith(("train.steps=", "train.lbfgs_steps="))]
        smoke += [f"train.phases.{i}.steps={4 if i == 0 else 2}" for i in range(len(phases))]
        expected = 4 + 2 * (len(phases) - 1)
    march = load_config(path).march
    if march.window is not None:  # a marched recipe: two windows of a few steps on a coarse grid
        cfg = load_config(path)
        t0, t1 = (float(v) for v in (cfg_time_interval(cfg)))
        smoke = smoke + [f"march.window={(t1 - t0) / 2}", "march.grid=4", "march.heldout=16",
                         "march.first_steps=4", "march.steps=2", "march.lbfgs_steps=2"]
        expected = 2  # windows
    for s in smoke + [_size_override(path)]:
        args += ["--set", s]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("steps", "train_seconds", "compile_seconds", "steps_per_second", "versions", "seed", "git_revision"):
        assert key in metrics, key
    assert metrics["steps"] == expected
    assert metrics["device_kind"] == jax.devices()[0].device_kind  # the model the run trained on
    assert (out / "config.yaml").is_file() and (out / "history.csv").is_file()
    assert any((out / "checkpoints").iterdir())
