"""Long accuracy runs that guard the headline rows of results/accuracy.md (``pytest -m slow``).

Each runs a shipped config at its full budget with seed 0, as ``scripts/reproduce.py`` does,
and checks the L2 relative error reaches the seed-0 error recorded in results/accuracy.json
within a factor (different CPUs and library versions do not give bit-equal runs); the
inverse problem must also recover its coefficient. A recipe change that loses accuracy on
these rows fails here before it reaches the table; a change that gains should be followed by
regenerating the table.
"""

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOLERANCE = 3.0  # the run may be at most this many times worse than the recorded seed-0 run
GUARDED = ["poisson1d", "heat1d", "inverse_diffusion", "poisson2d", "burgers1d"]


def recorded_l2re(config, seed=0):
    runs = json.loads((ROOT / "results" / "accuracy.json").read_text())["runs"]
    matches = [r["l2re"] for r in runs if r["config"] == config and r["seed"] == seed and r.get("l2re") is not None]
    assert matches, f"results/accuracy.json has no seed-{seed} run of {config}"
    return matches[0]


@pytest.mark.slow
@pytest.mark.parametrize("config", GUARDED)
def test_headline_row_reaches_its_recorded_error(config, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "pinnjax", "run", str(ROOT / "configs" / f"{config}.yaml"), "--out", str(out),
           "--set", "seed=0", "--set", "output.plots=false"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)  # own process: float64 configs set x64
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    recorded = recorded_l2re(config)
    assert metrics["l2re"] <= TOLERANCE * recorded, (config, metrics["l2re"], recorded)
    if config == "inverse_diffusion":
        assert metrics["unknowns"]["kappa"] == pytest.approx(1.0, abs=1e-3)
