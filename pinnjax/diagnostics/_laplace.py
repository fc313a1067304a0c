"""Uncertainty of an inverse problem's unknowns: the Laplace (Gaussian) approximation of their
posterior from the Gauss-Newton matrix at the trained parameters (seed
``matrix-calculus-neural-models-lecture.txt``, "confidence sets for linear and nonlinear
models": linearise the model at the estimate and use the linear model's covariance).

The data term of the loss is ``w_d / n_d * sum_i (u(x_i) - y_i)^2`` (weight ``w_d``, ``n_d``
observations); with Gaussian noise of standard deviation ``sigma`` the negative
log-likelihood is ``sum_i (u(x_i) - y_i)^2 / (2 sigma^2) = s * L_data`` with
``s = n_d / (2 sigma^2 w_d)``. The whole loss, scaled the same way, plus a Gaussian prior
``alpha |theta|^2 / 2`` on all parameters, has the Gauss-Newton Hessian

    A = s G + alpha I,   G = 2 J^T J   (J: the weighted residual Jacobian, train/_loss.py).

``A^-1`` is the posterior covariance when every term were a noisy likelihood. But only the
data are noisy: the PDE residual and the boundary terms are exact constraints that the truth
meets, and the loss's own weights decide where the estimate sits between them and the data.
Linearised, the estimate minimises ``s L + alpha |theta|^2 / 2`` and its error is

    theta_hat - theta = A^-1 (s 2 J_d^T e - R (theta - theta_0)),

with ``e`` the data noise (covariance ``sigma^2 I``, so ``s 2 J_d^T e`` has covariance
``F = s G_d``, the data's Fisher information) and ``R = s G_r + alpha I`` the priors (the
regularisation term ``G_r`` and ``alpha``); the noise-free terms ``G_c`` enter only through
``A``, because the truth makes their residuals zero. Averaged over the noise and over the
priors (``theta - theta_0 ~ N(0, R^-1)``: the smoothing bias, as in Bayesian smoothing-spline
bands), the error covariance is

    Sigma = A^-1 (F + R) A^-1 = A^-1 - s A^-1 G_c A^-1        (A = F + R + s G_c),

the posterior ``A^-1`` less what the noise-free terms' fictitious noise would add. With no
noise-free term it is the posterior ``A^-1``; with no prior it is the estimator's sandwich
covariance ``A^-1 F A^-1``. (Weighting the noise-free terms by their own mean squared
residual, or as hard constraints, made the sds of the trained estimate two to four times
smaller than the spread of its error across seeds 100 to 106 of ``inverse_diffusion_noisy``,
an exploratory check of seven seeds whose scripts were not kept: the estimate minimises the
loss as weighted, not that posterior.)

The covariance of the unknowns is their block of ``Sigma`` (the marginal). For a linear
least-squares model ``y = X beta + noise`` with ``alpha -> 0`` this is
``sigma^2 (X^T X)^-1``, the textbook interval. ``alpha`` (the network's weights are never
determined by the data alone: ``G`` is singular when the parameters outnumber the residuals)
is chosen by the evidence of the linearised model (MacKay 1992):

    log p(y | alpha) = -s L - alpha |theta|^2 / 2 + P/2 log alpha - 1/2 sum_i log(s g_i + alpha) + const

over a grid of ``alpha``, with ``g_i`` the eigenvalues of ``G``: no reference value is seen.

A field unknown ``a(x)`` (a grid of node values the problem interpolates, or a field network:
``Problem.unknown_at``) gets a pointwise band: linearised in its entries ``theta_a`` (exact
for an interpolation, linear in the node values), ``a(x) ~ a_hat(x) + g(x)^T (theta_a -
theta_a_hat)`` with ``g(x) = d a(x) / d theta_a``, so ``var a(x) = g(x)^T Sigma_aa g(x)``,
on ``BAND_POINTS`` evenly spaced points of a 1-D domain."""

from __future__ import annotations

import statistics

import jax
import jax.numpy as jnp
import numpy as np

from ..problem import unknown_names
from ._objective import compiled_residuals

ALPHA_GRID = np.logspace(-10, 6, 161)
BAND_POINTS = 101
COVARIANCES = ("error", "posterior")


def log_evidence(alpha, scaled_eigenvalues, scaled_loss, theta_sq):
    """The linearised model's log evidence at prior precisions `alpha` (array), up to a constant."""
    alpha = np.asarray(alpha, np.float64)[:, None]
    p = scaled_eigenvalues.shape[0]
    logdet = np.sum(np.log(scaled_eigenvalues[None, :] + alpha), axis=1)
    return -scaled_loss - 0.5 * alpha[:, 0] * theta_sq + 0.5 * p * np.log(alpha[:, 0]) - 0.5 * logdet


def gaussian_posterior(J, residuals, theta, scale: float, prior_precision=None, noise_free=None):
    """``(covariance (P, P), alpha)`` of the Laplace approximation with precision
    ``A = scale * 2 J^T J + alpha I``; `prior_precision` None: ``alpha`` by the evidence.
    `noise_free`: a boolean mask of the rows of `J` that carry no noise (exact constraints);
    the covariance is then the error covariance ``A^-1 - scale A^-1 2 J_c^T J_c A^-1``
    (module docs), else the posterior ``A^-1``."""
    J = np.asarray(J, np.float64)
    theta = np.asarray(theta, np.float64)
    G = 2.0 * J.T @ J
    g, U = np.linalg.eigh(G)
    g = np.clip(g, 0.0, None)
    if prior_precision is None:
        loss = float(np.sum(np.asarray(residuals, np.float64) ** 2))
        ev = log_evidence(ALPHA_GRID, scale * g, scale * loss, float(theta @ theta))
        alpha = float(ALPHA_GRID[int(np.argmax(ev))])
    else:
        alpha = float(prior_precision)
    cov = (U / (scale * g + alpha)) @ U.T
    if noise_free is not None and np.any(noise_free):
        C = cov @ J[np.asarray(noise_free)].T  # A^-1 J_c^T
        cov = cov - 2.0 * scale * (C @ C.T)
    return cov, alpha


def noise_free_terms(flat_loss, data_term: str) -> list[str]:
    """The terms that carry no noise: every term but the data term and the regularisation
    (a prior, ``loss.regularization``)."""
    from ..problem import Regularization
    from ..train._spec import active_terms

    terms = active_terms(flat_loss.state.problem, flat_loss.spec)
    return [t.name for t in terms if t.name != data_term and not isinstance(t.condition, Regularization)]


def unknown_positions(flat_loss) -> dict[str, np.ndarray]:
    """Per unknown of the problem: its entries' positions in the flat parameter vector."""
    positions = flat_loss.unravel(jnp.arange(flat_loss.flat.shape[0], dtype=flat_loss.flat.dtype))
    _, problem_positions = positions
    out = {}
    for name in unknown_names(flat_loss.state.problem):
        leaves = jax.tree.leaves(getattr(problem_positions, name))
        if leaves:
            out[name] = np.concatenate([np.asarray(leaf).ravel() for leaf in leaves]).astype(int)
    return out


def laplace_unknowns(flat_loss, *, noise: float, data_term: str = "data", level: float = 0.95,
                     prior_precision=None, jacobian: str = "jacrev", covariance: str = "error") -> dict:
    """Standard deviation and `level` interval of every entry of every unknown (a scalar, or
    per node of a grid: the pointwise band), with what they were computed from. `covariance`:
    ``"error"`` (only the data term is noisy; module docs) or ``"posterior"`` (every term a
    noisy likelihood, ``A^-1``)."""
    names = flat_loss.term_names
    if data_term not in names:
        raise ValueError(f"diagnostics.data_term: the loss has no term {data_term!r} (its terms are {list(names)})")
    if not noise or noise <= 0:
        raise ValueError(f"diagnostics.noise: the data noise level must be positive, got {noise!r}")
    if covariance not in COVARIANCES:
        raise ValueError(f"laplace covariance must be one of {COVARIANCES}, got {covariance!r}")
    i = names.index(data_term)
    w_data = flat_loss.spec.fixed_weights[i] * float(flat_loss.state.weights[i])
    n_data = flat_loss.sizes[i]
    scale = n_data / (2.0 * noise**2 * w_data)
    J = flat_loss.jacobian(jacobian)
    r = compiled_residuals(flat_loss.spec, flat_loss.state, flat_loss.flat)
    exact = noise_free_terms(flat_loss, data_term) if covariance == "error" else []
    noise_free = np.concatenate([np.full(size, name in exact) for name, size in zip(names, flat_loss.sizes)])
    cov, alpha = gaussian_posterior(J, r, flat_loss.flat, scale, prior_precision, noise_free)
    z = statistics.NormalDist().inv_cdf(0.5 + level / 2.0)
    theta = np.asarray(flat_loss.flat, np.float64)
    unknowns = {}
    for name, pos in unknown_positions(flat_loss).items():
        if callable(getattr(flat_loss.state.problem, name)):  # a field network: its weights' sds mean little
            unknowns[name] = {"note": "a field network: its weights' standard deviations are not reported"}
        else:
            unknowns[name] = _interval(theta[pos], np.diag(cov)[pos], z)
        band = pointwise_band(flat_loss, name, cov[np.ix_(pos, pos)], pos, z)
        if band is not None:
            unknowns[name]["band"] = band
    method = ("laplace (Gauss-Newton), " + ("error covariance, noise in the data term only" if covariance == "error"
              else "posterior covariance") + (", prior precision by evidence" if prior_precision is None
                                              else ", given prior precision"))
    return {"noise": float(noise), "level": float(level), "data_term": data_term, "prior_precision": alpha,
            "covariance": covariance, "method": method, "noise_free_terms": exact,
            "unknowns": unknowns}


def _interval(value, variance, z: float) -> dict:
    sd = np.sqrt(np.clip(variance, 0.0, None))
    return {"value": value.tolist(), "sd": sd.tolist(), "lower": (value - z * sd).tolist(),
            "upper": (value + z * sd).tolist()}


def pointwise_band(flat_loss, name: str, cov_block, positions, z: float) -> dict | None:
    """The band of the field unknown `name` (module docs) at ``BAND_POINTS`` points of a 1-D
    domain, with the true field where the problem knows it; None when `name` is not a scalar
    field (``Problem.unknown_at`` gives None or several components) or the domain is not 1-D."""
    problem = flat_loss.problem(flat_loss.flat)
    if problem.domain.dim != 1:
        return None
    dtype = flat_loss.flat.dtype
    lo, hi = (float(np.asarray(corner)[0]) for corner in problem.domain.bbox())
    points = jnp.linspace(lo, hi, BAND_POINTS, dtype=dtype)[:, None]
    first = problem.unknown_at(name, points[0])
    if first is None or jnp.size(first) != 1:
        return None

    def field(flat, x):
        return jnp.reshape(flat_loss.problem(flat).unknown_at(name, x), ())

    # g(x) = d a(x) / d theta; one compiled program (op by op it took seconds)
    value, slopes = jax.jit(jax.vmap(jax.value_and_grad(field), (None, 0)))(flat_loss.flat, points)
    g = np.asarray(slopes, np.float64)[:, positions]
    out = {"x": np.asarray(points[:, 0], np.float64).tolist(),
           **_interval(np.asarray(value, np.float64), np.einsum("np,pq,nq->n", g, cov_block, g), z)}
    if problem.true_unknown(name, points[0]) is not None:
        true = jax.vmap(lambda x: jnp.reshape(problem.true_unknown(name, x), ()))(points)
        out["true"] = np.asarray(true, np.float64).tolist()
    return out
