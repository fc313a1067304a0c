"""Every shipped config runs end to end for a few steps and writes a complete run folder."""

import json
import pathlib

import pytest

from pinnjax.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = sorted(p.stem for p in (ROOT / "configs").glob("*.yaml") if p.stem != "base")

SMOKE = [
    "train.steps=4", "train.lbfgs_steps=2", "train.scan_steps=2", "train.log_every=2",
    "train.checkpoint_every=2", "eval.every=2", "eval.points=256",
    "sampling.interior=64", "sampling.boundary=32", "sampling.initial=32", "sampling.rad_pool=128",
    "model.width=8", "loss.balance_every=2", "output.plots=false",
]


def _size_override(path) -> str:
    """Two hidden layers, or one block for the residual networks (their key is `blocks`)."""
    from pinnjax.config import load_config

    return "model.blocks=1" if load_config(path).model.type in ("pirate", "resnet") else "model.depth=2"


def test_every_config_is_smoke_tested():
    assert len(CONFIGS) >= 14


@pytest.mark.parametrize("name", CONFIGS)
def test_config_smoke_run(name, tmp_path):
    out = tmp_path / "run"
    args = ["run", str(ROOT / "configs" / f"{name}.yaml"), "--out", str(out)]
    for s in SMOKE + [_size_override(ROOT / "configs" / f"{name}.yaml")]:
        args += ["--set", s]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("steps", "train_seconds", "compile_seconds", "steps_per_second", "versions", "seed", "git_revision"):
        assert key in metrics, key
    assert metrics["steps"] == 6  # 4 Adam + 2 L-BFGS
    assert (out / "config.yaml").is_file() and (out / "history.csv").is_file()
    assert any((out / "checkpoints").iterdir())
