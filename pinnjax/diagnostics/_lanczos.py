"""Lanczos on a symmetric operator given only by its products ``v -> M v``: the extreme
eigenvalues, and the spectral density by stochastic Lanczos quadrature (SLQ).

``m`` steps from a unit vector ``q_1`` build an orthonormal basis ``Q`` of the Krylov space
``span(q_1, M q_1, ..., M^(m-1) q_1)`` and the tridiagonal ``T = Q^T M Q`` (diagonal
``alpha``, off-diagonal ``beta``). The eigenvalues of ``T`` (Ritz values) converge to the
extreme eigenvalues of ``M`` first; ``|beta_m s_mi|`` (``s`` the eigenvectors of ``T``) bounds
how far Ritz value ``i`` can be from an eigenvalue. The basis is re-orthogonalised in full at
every step (the Krylov spaces here are a few hundred vectors), so ``m = dim`` gives the exact
spectrum. SLQ (Ubaru, Chen & Saad 2017): with ``q_1 = v/|v|`` for a random probe ``v``, the
Gauss quadrature with nodes ``theta_i`` (Ritz values) and weights ``s_1i^2`` is exact for
polynomials up to degree ``2m - 1`` of ``v^T f(M) v / |v|^2``; averaged over Rademacher probes
it estimates ``tr f(M) / dim``, the density of eigenvalues."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Tridiagonal:
    alpha: np.ndarray  # (m,)
    beta: np.ndarray  # (m,): beta[j] couples step j and j + 1; beta[-1] the residual norm

    def ritz(self):
        """Ritz values (ascending), their quadrature weights ``s_1i^2`` and error bounds
        ``|beta_m s_mi|``."""
        m = self.alpha.shape[0]
        T = np.diag(self.alpha) + np.diag(self.beta[: m - 1], 1) + np.diag(self.beta[: m - 1], -1)
        theta, s = np.linalg.eigh(T)
        return theta, s[0] ** 2, np.abs(self.beta[-1] * s[-1])


def lanczos(matvec, start, steps: int) -> Tridiagonal:
    """`steps` Lanczos steps of ``matvec`` from the direction `start` (float64 on the host;
    each product runs in the operator's own dtype). Stops early on an invariant subspace."""
    q = np.asarray(start, np.float64)
    q = q / np.linalg.norm(q)
    n = q.shape[0]
    steps = min(steps, n)
    basis = np.zeros((steps, n))
    alpha, beta = [], []
    dtype = np.asarray(start).dtype
    for j in range(steps):
        basis[j] = q
        w = np.asarray(matvec(q.astype(dtype)), np.float64)
        a = float(q @ w)
        w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)  # full re-orthogonalisation, twice
        w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        b = float(np.linalg.norm(w))
        alpha.append(a)
        beta.append(b)
        scale = max(abs(a), max(np.abs(alpha)), 1e-300)
        if b <= 1e-12 * scale:  # the Krylov space is invariant: T holds exact eigenvalues
            break
        q = w / b
    return Tridiagonal(np.asarray(alpha), np.asarray(beta))


def _start(dim: int, seed: int, dtype) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(dim).astype(dtype)


def extreme_eigenvalues(matvec, dim: int, *, k: int = 5, steps: int = 80, seed: int = 0, dtype=np.float64) -> dict:
    """The `k` largest and `k` smallest Ritz values of `steps` Lanczos steps from a random
    start (`seed`), with their error bounds: ``{"largest", "smallest", "largest_error",
    "smallest_error", "steps"}`` (largest first, smallest ascending)."""
    tri = lanczos(matvec, _start(dim, seed, dtype), steps)
    theta, _, err = tri.ritz()
    k = min(k, theta.shape[0])
    return {
        "largest": theta[::-1][:k].tolist(),
        "largest_error": err[::-1][:k].tolist(),
        "smallest": theta[:k].tolist(),
        "smallest_error": err[:k].tolist(),
        "steps": int(tri.alpha.shape[0]),
    }


def condition_number(extremes: dict) -> float:
    """``lambda_max / lambda_min`` of a positive semi-definite operator from its extreme Ritz
    values (inf when the smallest is not positive): an estimate, as the smallest Ritz value
    converges last."""
    hi, lo = extremes["largest"][0], extremes["smallest"][0]
    return float(hi / lo) if lo > 0 else float("inf")


@dataclasses.dataclass(frozen=True)
class SpectralDensity:
    """Quadrature nodes and weights of every probe: ``nodes[p]``, ``weights[p]`` (each
    probe's weights sum to 1). ``histogram`` and ``smoothed`` turn them into a density."""

    nodes: list[np.ndarray]
    weights: list[np.ndarray]

    def histogram(self, edges) -> np.ndarray:
        """The fraction of eigenvalues in each bin ``[edges[i], edges[i+1])`` (the last bin closed)."""
        edges = np.asarray(edges, np.float64)
        out = np.zeros(edges.shape[0] - 1)
        for nodes, weights in zip(self.nodes, self.weights):
            idx = np.clip(np.searchsorted(edges, nodes, side="right") - 1, 0, edges.shape[0] - 2)
            inside = (nodes >= edges[0]) & (nodes <= edges[-1])
            np.add.at(out, idx[inside], weights[inside])
        return out / len(self.nodes)

    def smoothed(self, grid, width: float) -> np.ndarray:
        """The density convolved with a Gaussian of standard deviation `width`, on `grid`."""
        grid = np.asarray(grid, np.float64)
        out = np.zeros_like(grid)
        for nodes, weights in zip(self.nodes, self.weights):
            z = (grid[:, None] - nodes[None, :]) / width
            out += (np.exp(-0.5 * z**2) / (width * np.sqrt(2.0 * np.pi))) @ weights
        return out / len(self.nodes)

    def range(self) -> tuple[float, float]:
        return float(min(n.min() for n in self.nodes)), float(max(n.max() for n in self.nodes))


def spectral_density(matvec, dim: int, *, steps: int = 60, probes: int = 8, seed: int = 0,
                     dtype=np.float64, start_vectors=None) -> SpectralDensity:
    """SLQ: `probes` Rademacher probes (or the given `start_vectors`), `steps` Lanczos steps each."""
    if start_vectors is None:
        rng = np.random.default_rng(seed)
        start_vectors = rng.choice(np.asarray([-1.0, 1.0]), size=(probes, dim)).astype(dtype)
    nodes, weights = [], []
    for v in start_vectors:
        theta, w, _ = lanczos(matvec, v, steps).ritz()
        nodes.append(theta)
        weights.append(w)
    return SpectralDensity(nodes, weights)
