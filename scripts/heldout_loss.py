"""Held-out loss of trained runs: the mean squared residual of every loss term on a large fresh
sample of collocation points (a fixed key, independent of the points the run trained on).

It uses no reference solution, so it may choose a recipe (points, budget, balancing) without
looking at the error reported for the same problem: a lower held-out loss means the network
satisfies the PDE and its conditions better between the training points.

    python scripts/heldout_loss.py RUN_DIR [RUN_DIR ...] [--interior 20000] [--boundary 4000]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402 (after the sys.path line)

import pinnjax as pj  # noqa: E402
from pinnjax.diagnostics._objective import flat_loss  # noqa: E402
from pinnjax.train import make_spec, precision  # noqa: E402
from pinnjax.train._sampling import draw_points  # noqa: E402


def heldout_loss(run_dir, *, interior: int = 20000, boundary: int = 4000, seed: int = 12345, problem=None) -> dict:
    """``{term: mean squared residual}`` and ``"total"`` (their sum) of the newest verified
    checkpoint of `run_dir` on `interior` fresh interior points and `boundary` fresh points
    for every other term, without loss weights (each term's plain mean). `problem`: for a run
    of a problem defined in a script (``pinnjax.load(run_dir, problem=...)``)."""
    solution = pj.load(run_dir, problem=problem)
    cfg = solution.config
    with precision(cfg.model.dtype):
        spec = make_spec(solution.problem, cfg)
        counts = tuple(interior if kind == "interior" else boundary for kind in spec.term_kinds)
        spec = dataclasses.replace(spec, counts=counts, fixed_weights=(1.0,) * len(counts))
        points = draw_points(spec, solution.problem, jax.random.PRNGKey(seed))
        state = dataclasses.replace(solution._state, points=points,
                                    weights=jax.numpy.ones_like(solution._state.weights))
        loss = flat_loss(spec, state)
        out = {name: float(loss.loss(loss.flat, i)) for i, name in enumerate(spec.term_names)}
    out["total"] = sum(out.values())
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=pathlib.Path)
    p.add_argument("--interior", type=int, default=20000)
    p.add_argument("--boundary", type=int, default=4000)
    a = p.parse_args(argv)
    for run in a.runs:
        losses = heldout_loss(run, interior=a.interior, boundary=a.boundary)
        print(run, json.dumps({k: f"{v:.3e}" for k, v in losses.items()}))


if __name__ == "__main__":
    main()
