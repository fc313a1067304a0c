"""How much of the high-dimensional exact solution is *not* linear in x: the floor of a
network that learns only the linear part of ``w``.

``u*(x) = (1 - |x|^2) w(x)`` (``problems/highdim.py``). For uniform points of the unit
d-ball, ``w`` is to first order ``cos(1) sum_i (c_i + c_{i-1}) x_i``; what is left is mainly a
quadratic form in x of rank about d. This script fits the best ``u = (1 - |x|^2)(a + b . x)``
by least squares on uniform ball points and prints the relative L2 error that remains: the
error a solver reaches if it captures the linear part of ``w`` and nothing else. No network,
no training; the exact solution only.

    python scripts/highdim_linear_part.py --dims 100 1000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's pinnjax and problems

import jax
import numpy as np

import pinnjax as pj
from problems.highdim import PoissonBall


def linear_floor(dim: int, points: int, seed: int) -> float:
    problem = PoissonBall(dim=dim)
    xs = pj.Ball([0.0] * dim, 1.0).sample_interior(jax.random.PRNGKey(seed), points)
    u = np.asarray(problem.exact_batch(xs))[:, 0]
    xs = np.asarray(xs)
    damping = 1.0 - np.sum(xs * xs, axis=1)
    basis = damping[:, None] * np.hstack([np.ones((points, 1)), xs])
    coef, *_ = np.linalg.lstsq(basis, u, rcond=None)
    return float(np.linalg.norm(u - basis @ coef) / np.linalg.norm(u))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dims", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--points", type=int, default=20000, help="ball points of the fit (> dim + 1)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    for dim in a.dims:
        err = linear_floor(dim, a.points, a.seed)
        print(f"d = {dim}: relative L2 error of the best (1 - |x|^2)(a + b . x): {err:.3e}")


if __name__ == "__main__":
    main()
