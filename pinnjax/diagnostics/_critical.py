"""What kind of point the parameters are (seed ``jacobian-hessian-notes.txt``, "Critical
points"): at a critical point (gradient zero) the eigenvalues of the Hessian decide it, all
positive a local minimum, all negative a local maximum, mixed signs a saddle. A Hessian with
eigenvalues at zero (to the tolerance) has flat directions, along which second order says
nothing: a PINN with more parameters than residuals always has them."""

from __future__ import annotations

import jax
import numpy as np

from ._lanczos import extreme_eigenvalues
from ._products import hessian_vector_product


def classify(smallest: float, largest: float, zero_tol: float) -> str:
    """``minimum`` / ``maximum`` / ``saddle`` from the extreme eigenvalues, or ``minimum with
    flat directions`` / ``maximum with flat directions`` / ``flat`` when an end is within
    `zero_tol` of zero."""
    lo = 0 if abs(smallest) <= zero_tol else (1 if smallest > 0 else -1)
    hi = 0 if abs(largest) <= zero_tol else (1 if largest > 0 else -1)
    if lo < 0 < hi:
        return "saddle"
    if lo > 0:
        return "minimum"
    if hi < 0:
        return "maximum"
    if lo == 0 and hi > 0:
        return "minimum with flat directions"
    if hi == 0 and lo < 0:
        return "maximum with flat directions"
    return "flat"


def critical_point_report(loss, theta, *, k: int = 5, steps: int = 80, seed: int = 0,
                          rtol: float = 1e-6, gtol: float | None = None, extremes: dict | None = None) -> dict:
    """Gradient norm, the `k` extreme Hessian eigenvalues (Lanczos, `steps` steps), the
    number of negative ones found and the verdict.

    An eigenvalue counts as zero within ``rtol * max|lambda|``. Ritz values lie inside the
    spectrum (interlacing), so ``j`` Ritz values below ``-tol`` prove ``j`` negative
    eigenvalues (the count is a lower bound); a minimum needs the smallest Ritz value above
    ``tol`` by more than its error bound. ``stationary``: the gradient norm is at most
    `gtol` (default ``sqrt(rtol) * max(1, |lambda|_max)``); the verdict is that of a critical
    point only when it is true, else it describes the curvature where the run stopped.
    `extremes`: the Hessian's ``extreme_eigenvalues`` record, when already computed."""
    theta = jax.numpy.asarray(theta)
    grad = np.asarray(jax.grad(loss)(theta), np.float64)
    ext = extremes
    if ext is None:
        matvec = jax.jit(lambda v: hessian_vector_product(loss, theta, v))
        ext = extreme_eigenvalues(matvec, theta.shape[0], k=k, steps=steps, seed=seed, dtype=np.asarray(theta).dtype)
    scale = float(max(abs(ext["smallest"][0]), abs(ext["largest"][0])))
    zero_tol = rtol * scale
    n_negative = int(np.sum(np.asarray(ext["smallest"]) < -zero_tol))  # among the k smallest
    gnorm = float(np.linalg.norm(grad))
    gtol = float(np.sqrt(rtol) * max(1.0, scale)) if gtol is None else gtol
    lo = ext["smallest"][0]
    if lo > 0:  # a lower bound on lambda_min: the Ritz value less its error bound
        lo = max(lo - ext["smallest_error"][0], 0.0)
    verdict = classify(lo, ext["largest"][0], zero_tol)
    return {
        "loss": float(loss(theta)),
        "gradient_norm": gnorm,
        "stationary": gnorm <= gtol,
        "gradient_tolerance": gtol,
        "largest_eigenvalues": ext["largest"],
        "smallest_eigenvalues": ext["smallest"],
        "lanczos_steps": ext["steps"],
        "zero_tolerance": zero_tol,
        "negative_eigenvalues_found": n_negative,
        "verdict": verdict,
    }
