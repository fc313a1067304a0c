"""How much of the high-dimensional exact solution is *not* constant, and *not* linear, in x:
the floors of a network that learns only the constant, or only the linear part, of ``w``.

``u*(x) = (1 - |x|^2) w(x)`` (``problems/highdim.py``). For uniform points of the unit
d-ball, ``w`` is to first order ``sin(1) sum_i c_i + cos(1) sum_i (c_i + c_{i-1}) x_i``; what
is left is mainly a quadratic form in x of rank about d. This script fits the best
``u = (1 - |x|^2) a`` and the best ``u = (1 - |x|^2)(a + b . x)`` by least squares on uniform
ball points and prints the relative L2 error each leaves: the error a solver reaches if it
captures that part of ``w`` and nothing else. No network, no training; the exact solution
only, with centred coefficients (the shipped default) and with the published ones
(``--published``).

    python scripts/highdim_linear_part.py --dims 100 1000
    python scripts/highdim_linear_part.py --dims 100 1000 --published
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


def floors(dim: int, points: int, seed: int, centred: bool = True) -> dict[str, float]:
    """Relative L2 errors of the best ``(1 - |x|^2) a`` ("constant") and ``(1 - |x|^2)(a + b . x)``
    ("linear") fits to the exact solution, on ``points`` uniform ball points (in-sample)."""
    problem = PoissonBall(dim=dim, centred=centred)
    xs = pj.Ball([0.0] * dim, 1.0).sample_interior(jax.random.PRNGKey(seed), points)
    u = np.asarray(problem.exact_batch(xs))[:, 0]
    xs = np.asarray(xs)
    damping = 1.0 - np.sum(xs * xs, axis=1)
    out = {}
    for name, basis in (("constant", damping[:, None]),
                        ("linear", damping[:, None] * np.hstack([np.ones((points, 1)), xs]))):
        coef, *_ = np.linalg.lstsq(basis, u, rcond=None)
        out[name] = float(np.linalg.norm(u - basis @ coef) / np.linalg.norm(u))
    return out


def linear_floor(dim: int, points: int, seed: int, centred: bool = True) -> float:
    return floors(dim, points, seed, centred)["linear"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dims", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--points", type=int, default=20000, help="ball points of the fit (> dim + 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--published", action="store_true", help="SDGD's coefficients as drawn (not centred)")
    a = p.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    which = "published" if a.published else "centred"
    for dim in a.dims:
        f = floors(dim, a.points, a.seed, centred=not a.published)
        print(f"d = {dim} ({which} coefficients): relative L2 error of the best (1 - |x|^2) a: "
              f"{f['constant']:.3e}; of the best (1 - |x|^2)(a + b . x): {f['linear']:.3e}")


if __name__ == "__main__":
    main()
