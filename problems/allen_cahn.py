"""Allen-Cahn equation with periodic boundary conditions, and a spectral reference solver."""

from __future__ import annotations

import functools
import pathlib

import jax.numpy as jnp
import numpy as np

import pinnjax as pj
from pinnjax.data import ReferenceData

from ._common import freeze


class AllenCahn1D(pj.Problem):
    """``u_t - eps u_xx + gamma (u^3 - u) = 0`` (``eps = 1e-4``, ``gamma = 5``) on
    ``x in [-1, 1]``, ``t in [0, 1]``; ``u(x, 0) = x^2 cos(pi x)``; periodic in ``x`` (``u`` and
    ``u_x`` equal at ``x = -1`` and ``x = 1``). The standard PINN benchmark (Raissi et al. 2019).

    No closed form. ``reference()`` solves the PDE with a Fourier pseudo-spectral method in ``x``
    (1,024 modes) and ETDRK4 in time (step 5e-4, Kassam & Trefethen 2005), about half a second
    once per process and per parameter set; it returns 257 nodes (x = -1, ..., 1 step 1/128)
    x 201 snapshots (t = 0, 0.005, ..., 1). Doubling the modes and halving the step changes it by
    2e-6 in L2 relative norm (largest change 3e-4, near the kink of the initial data at
    ``x = +-1`` just after ``t = 0``).
    """

    eps: float = 1e-4
    gamma: float = 5.0

    domain = pj.Interval(-1.0, 1.0) * pj.TimeInterval(0.0, 1.0)
    needs = ("u", "u_t", "u_xx")
    conditions = (
        pj.Periodic(axis=0, derivative=True),
        pj.Initial(lambda x: x[0] ** 2 * jnp.cos(jnp.pi * x[0])),
    )

    def residual(self, x, d):
        del x
        return d.u_t - self.eps * d.u_xx + self.gamma * (d.u**3 - d.u)

    def reference(self):
        return _reference(float(self.eps), float(self.gamma))


def solve_allen_cahn(eps=1e-4, gamma=5.0, *, n_modes=1024, step=5e-4, t_end=1.0, n_snapshots=201):
    """Pseudo-spectral ETDRK4 solution of the periodic Allen-Cahn problem above.

    Returns ``(x, t, u)``: the ``n_modes`` grid points ``x_j = -1 + 2 j / n_modes``, the snapshot
    times and ``u`` of shape ``(n_snapshots, n_modes)``.

    ``u_t = L u + N(u)`` with the linear part ``L = -eps k^2 + gamma`` diagonal in Fourier space
    and ``N(u) = -gamma u^3``; the ETDRK4 coefficients are evaluated by contour integrals
    (Kassam & Trefethen, SIAM J. Sci. Comput. 26, 2005) to avoid cancellation.
    """
    n = n_modes
    x = -1.0 + 2.0 * np.arange(n) / n
    k = np.pi * np.fft.rfftfreq(n, d=1.0 / n)  # period 2: wavenumbers pi * m
    lin = -eps * k**2 + gamma
    h = step
    E, E2 = np.exp(h * lin), np.exp(h * lin / 2)
    m = 32
    r = np.exp(1j * np.pi * (np.arange(1, m + 1) - 0.5) / m)
    LR = h * lin[:, None] + r[None, :]
    Q = h * np.real(np.mean((np.exp(LR / 2) - 1) / LR, axis=1))
    f1 = h * np.real(np.mean((-4 - LR + np.exp(LR) * (4 - 3 * LR + LR**2)) / LR**3, axis=1))
    f2 = h * np.real(np.mean((2 + LR + np.exp(LR) * (-2 + LR)) / LR**3, axis=1))
    f3 = h * np.real(np.mean((-4 - 3 * LR - LR**2 + np.exp(LR) * (4 - LR)) / LR**3, axis=1))

    def nonlinear(v):
        return -gamma * np.fft.rfft(np.fft.irfft(v, n) ** 3)

    steps = int(round(t_end / h))
    every = steps // (n_snapshots - 1)
    if every * (n_snapshots - 1) != steps:
        raise ValueError(f"{steps} steps do not divide into {n_snapshots - 1} snapshot intervals")
    v = np.fft.rfft(x**2 * np.cos(np.pi * x))
    snaps = [np.fft.irfft(v, n)]
    for s in range(1, steps + 1):
        Nv = nonlinear(v)
        a = E2 * v + Q * Nv
        Na = nonlinear(a)
        b = E2 * v + Q * Na
        Nb = nonlinear(b)
        c = E2 * a + Q * (2 * Nb - Nv)
        Nc = nonlinear(c)
        v = E * v + Nv * f1 + 2 * (Na + Nb) * f2 + Nc * f3
        if s % every == 0:
            snaps.append(np.fft.irfft(v, n))
    return x, np.linspace(0.0, t_end, n_snapshots), np.asarray(snaps)


@functools.lru_cache(maxsize=8)
def _reference(eps: float, gamma: float) -> ReferenceData:
    x, t, u = solve_allen_cahn(eps, gamma)
    stride = 4
    xs = np.append(x[::stride], 1.0)  # x = 1 is the periodic image of x = -1
    us = np.concatenate([u[:, ::stride], u[:, :1]], axis=1)  # (n_t, n_x)
    n_x, n_t = len(xs), len(t)
    points = np.stack([np.tile(xs, n_t), np.repeat(t, n_x)], axis=1)  # snapshot-major, as load_pinnacle
    return freeze(
        ReferenceData(
            points=points,
            values=us.reshape(-1, 1),
            times=t,
            space_points=xs[:, None],
            n_nodes=n_x,
            source=pathlib.Path(f"<allen_cahn1d ETDRK4 reference, eps={eps}, gamma={gamma}>"),
        )
    )
