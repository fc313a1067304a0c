"""Poisson 2d-C with a hand-written smooth hard constraint, against the generic one: an
exploration for issue 11, judged by the held-out residual only (no reference data is read).

``pinnjax.exact_dirichlet`` builds ``u = g + D * network`` from R0 distances, whose second
derivatives grow like 1 / r at the square's corners (a log-divergent mean square Laplacian
there). Here the square's distance is the
product of its slabs, ``(1/4 - x^2)(1/4 - y^2) / (1/4)`` (smooth, degree 2 at a corner), the
four holes' distance the harmonic union ``1 / sum_i 1 / phi_i`` of the disks'
``(|x - c_i|^2 - r^2) / (2 r)``, and

    g = phi_in / (phi_in + phi_out),   D = phi_in phi_out / (phi_in + phi_out)

(transfinite interpolation of u = 1 on the square, 0 on the circles). Both variants train
with the shipped config (the elliptic family's recipe, seed 0) and no boundary terms; the
script prints the final training loss and the held-out residual of each
(``scripts/heldout_loss.py``: 20,000 fresh interior points).

    python scripts/poisson2d_c_product_constraint.py --out /tmp/p2c-constraints
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import pinnjax as pj  # noqa: E402
from heldout_loss import heldout_loss  # noqa: E402
from problems.poisson import Poisson2DC  # noqa: E402

_HOLES = ((0.3, 0.3), (-0.3, 0.3), (0.3, -0.3), (-0.3, -0.3))
_RADIUS = 0.1


class Poisson2DCProduct(Poisson2DC):
    """Poisson 2d-C with the smooth product constraint of the module docs."""

    def constraint(self, x):
        phi_out = (0.25 - x[0] ** 2) * (0.25 - x[1] ** 2) / 0.25
        inverse = sum(2 * _RADIUS / ((x[0] - a) ** 2 + (x[1] - b) ** 2 - _RADIUS**2) for a, b in _HOLES)
        phi_in = 1.0 / inverse
        total = phi_in + phi_out
        return phi_in / total, phi_in * phi_out / total


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for the two run folders")
    p.add_argument("--variants", nargs="+", default=["product", "r0"], choices=["product", "r0"])
    a = p.parse_args(argv)
    config = ROOT / "configs" / "poisson2d_c.yaml"
    for variant in a.variants:
        problem = Poisson2DCProduct() if variant == "product" else pj.with_exact_dirichlet(Poisson2DC())
        run = a.out / variant
        sol = pj.solve(problem, str(config), run_dir=run, sampling={"boundary": 0})
        held = heldout_loss(run, problem=problem)
        print(f"{variant}: final training loss {sol.metrics['final_loss']:.3e}, held-out residual {held['residual']:.3e}",
              flush=True)


if __name__ == "__main__":
    main()
