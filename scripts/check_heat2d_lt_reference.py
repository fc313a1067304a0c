"""An independent check of PINNacle's Heat 2d-LT reference (`heat_longtime.dat`): solve the PDE
by finite differences and compare at the reference's nodes and snapshots. It reads no trained
network and chooses nothing; it says whether the reference is a solution of the PDE as
`problems/heat.py` states it, and what that solution looks like over time.

    python scripts/check_heat2d_lt_reference.py [--n 129] [--dt 0.005]

Method of lines: the 5-point Laplacian on an n x n grid of [0, 1]^2 (u = 0 on the sides),
classical Runge-Kutta in time, then bilinear interpolation onto the reference's 192 nodes.
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "pinnjax" / "data" / "pinnacle" / "heat_longtime.dat"
CHECKED_TIMES = (0.0, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 50.0, 100.0)


def rate(u, t, h, forcing_shape):
    """du/dt = 0.001 lap u + 5 sin(u^2) (1 + 2 sin(pi t / 4)) sin(4 pi x) sin(2 pi y) (k = 1)."""
    lap = np.zeros_like(u)
    lap[1:-1, 1:-1] = (u[2:, 1:-1] + u[:-2, 1:-1] + u[1:-1, 2:] + u[1:-1, :-2] - 4 * u[1:-1, 1:-1]) / h**2
    du = 0.001 * lap + 5 * np.sin(u**2) * (1 + 2 * np.sin(np.pi * t / 4)) * forcing_shape
    du[0, :] = du[-1, :] = du[:, 0] = du[:, -1] = 0.0
    return du


def bilinear(grid, n, points):
    """Values of `grid` (on the n x n nodes of [0, 1]^2, indexed [x, y]) at `points`."""
    s = points * (n - 1)
    i = np.clip(np.floor(s).astype(int), 0, n - 2)
    f = s - i
    v00, v10 = grid[i[:, 0], i[:, 1]], grid[i[:, 0] + 1, i[:, 1]]
    v01, v11 = grid[i[:, 0], i[:, 1] + 1], grid[i[:, 0] + 1, i[:, 1] + 1]
    fx, fy = f[:, 0], f[:, 1]
    return (1 - fx) * (1 - fy) * v00 + fx * (1 - fy) * v10 + (1 - fx) * fy * v01 + fx * fy * v11


def rms(values):
    return float(np.sqrt(np.mean(values**2)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=129, help="grid points per side")
    p.add_argument("--dt", type=float, default=0.005, help="time step")
    args = p.parse_args(argv)

    data = np.loadtxt(REFERENCE, comments="%")
    nodes, reference = data[:, :2], data[:, 2:]  # one column per snapshot, t = 0, 0.2, ..., 100
    x = np.linspace(0.0, 1.0, args.n)
    X, Y = np.meshgrid(x, x, indexing="ij")
    u = np.sin(4 * np.pi * X) * np.sin(3 * np.pi * Y)
    shape = np.sin(4 * np.pi * X) * np.sin(2 * np.pi * Y)
    h, dt = x[1] - x[0], args.dt
    steps_per_unit = round(1 / dt)

    print(f"finite differences: {args.n} x {args.n} grid, RK4, dt = {dt}; reference: {len(nodes)} nodes")
    print("| t | reference rms | FD rms | relative L2 difference |")
    print("|---|---|---|---|")
    step, t = 0, 0.0
    for target in CHECKED_TIMES:
        while step < round(target * steps_per_unit):
            k1 = rate(u, t, h, shape)
            k2 = rate(u + dt / 2 * k1, t + dt / 2, h, shape)
            k3 = rate(u + dt / 2 * k2, t + dt / 2, h, shape)
            k4 = rate(u + dt * k3, t + dt, h, shape)
            u = u + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            step += 1
            t = step * dt
        ref = reference[:, round(target / 0.2)]
        fd = bilinear(u, args.n, nodes)
        diff = np.linalg.norm(fd - ref) / np.linalg.norm(ref)
        print(f"| {target:g} | {rms(ref):.3f} | {rms(fd):.3f} | {diff:.2e} |")


if __name__ == "__main__":
    main()
