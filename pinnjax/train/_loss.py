"""Loss terms and their weights: fixed, gradient-norm balancing (Wang et al. 2023), NTK-trace
balancing (Wang, Yu & Perdikaris 2022) and causal weighting in time (Wang et al. 2024)."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jax.sharding import PartitionSpec as P

from ..derivatives._param_jacobian import kronecker_jacobian
from ._mesh import AXIS, point_spec
from ._spec import TrainSpec, active_terms


def causal_weights(chunk_losses, eps: float) -> jax.Array:
    """``w_i = exp(-eps * sum_{j<i} L_j)``, with no gradient through the weights."""
    before = jnp.cumsum(chunk_losses) - chunk_losses
    return jax.lax.stop_gradient(jnp.exp(-eps * before))


def causal_loss(t, sq_residual, t0: float, t1: float, chunks: int, eps: float):
    """Causally weighted mean of per-point squared residuals: points are split into `chunks`
    equal time slabs of [t0, t1]; returns ``(mean_i w_i L_i, w)``."""
    idx = jnp.clip(jnp.floor((t - t0) / (t1 - t0) * chunks).astype(jnp.int32), 0, chunks - 1)
    sums = jax.ops.segment_sum(sq_residual, idx, num_segments=chunks)
    counts = jax.ops.segment_sum(jnp.ones_like(sq_residual), idx, num_segments=chunks)
    chunk_losses = sums / jnp.maximum(counts, 1.0)
    w = causal_weights(chunk_losses, eps)
    return jnp.mean(w * chunk_losses), w


def term_losses(spec: TrainSpec, problem, model, points, *, causal: bool | None = None, key=None) -> jax.Array:
    """``mean(residual^2)`` of every term on its samples, shape (n_terms,). ``key``: the random
    directions of a randomised Laplacian (``spec.laplacian``), fresh each step."""
    causal = spec.causal if causal is None else causal
    out = []
    for i, (term, pts) in enumerate(zip(active_terms(problem, spec), points)):
        r = term.residuals(problem, model, pts, **_estimate(spec, key, i))
        r = r.astype(spec.jnp_dtype)  # e.g. a float64 constant in a float32 run
        if causal and term.kind == "interior":
            t0, t1 = spec.time_bounds
            sq = jnp.mean(r**2, axis=-1)
            loss, _ = causal_loss(pts[:, spec.time_axis], sq, t0, t1, spec.causal_chunks, spec.causal_eps)
        else:
            loss = jnp.mean(r**2)
        out.append(loss)
    return jnp.stack(out)


def _estimate(spec: TrainSpec, key, index: int) -> dict:
    """The ``estimator`` / ``key`` keywords of term ``index``'s residuals (none when exact)."""
    if spec.laplacian is None or key is None:
        return {}
    return {"estimator": spec.laplacian, "key": jax.random.fold_in(key, index)}


@eqx.filter_jit
def laplacian_variance(spec: TrainSpec, problem, model, points, key) -> jax.Array:
    """Variance of the randomised PDE residual at a batch (``spec.laplacian``), mean over the
    interior points: the sample variance of ``samples`` single-direction residuals per point,
    divided by ``samples`` (the directions are independent, so this is the variance of the
    ``samples``-direction estimate the step uses). Reported in the history; never trained on."""
    index = spec.interior_index
    term = active_terms(problem, spec)[index]
    n = spec.laplacian.samples
    single = dataclasses.replace(spec.laplacian, samples=1)
    one = lambda k: term.residuals(problem, model, points[index], estimator=single, key=k)  # noqa: E731
    r = jax.vmap(one)(jax.random.split(key, n)).astype(spec.jnp_dtype)  # (n, points, components)
    return jnp.mean(jnp.var(r, axis=0, ddof=1)) / n


def gradnorm_weights(grad_norms, old, momentum: float) -> jax.Array:
    """``lambda_i = sum_j ||grad L_j|| / ||grad L_i||``, smoothed: ``m old + (1 - m) lambda``.
    A term with no gradient keeps its old weight; so does a term whose gradient is at
    round-off relative to the total (a condition met exactly by construction, e.g. a periodic
    embedding): its weight would otherwise grow to ~1/eps and amplify round-off."""
    total = jnp.sum(grad_norms)
    floor = jnp.maximum(jnp.finfo(grad_norms.dtype).tiny * 1e6, jnp.finfo(grad_norms.dtype).eps * total)
    ok = grad_norms > floor
    new = jnp.where(ok, total / jnp.where(ok, grad_norms, 1.0), old)
    new = jnp.where(jnp.isfinite(new), new, old)
    return momentum * old + (1.0 - momentum) * new


def ntk_weights(traces, old, momentum: float) -> jax.Array:
    """``lambda_i = sum_j tr K_j / tr K_i`` (Wang, Yu & Perdikaris 2022, eq. 6.5, with the
    per-point mean trace of each term's neural tangent kernel, as our terms are means),
    smoothed like :func:`gradnorm_weights`, with the same guards. A term whose kernel is
    small learns slowly under gradient descent; its weight lifts it to the average rate."""
    return gradnorm_weights(traces, old, momentum)


# Points per term whose per-point parameter gradients give the NTK trace: the trace is a mean
# over points, so a random subset of the (randomly drawn) batch estimates it.
NTK_TRACE_POINTS = 256


def term_ntk_traces(spec: TrainSpec, params, rest, points) -> jax.Array:
    """Mean over the first ``NTK_TRACE_POINTS`` points of each term of ``||d r(x) / d theta||^2``
    (summed over residual components): the mean diagonal of the term's neural tangent kernel
    ``K_ii = J_i J_i^T``, for every term. Per-point ``jax.jacrev``, vmapped over the points."""
    flat, unravel = ravel_pytree(params)
    _, problem = eqx.combine(params, rest)
    out = []
    for term, pts in zip(active_terms(problem, spec), points):
        J = _per_point_jacobian(spec, term, rest, unravel, flat, pts[:NTK_TRACE_POINTS])  # (n, k, P)
        out.append(jnp.mean(jnp.sum(J**2, axis=(1, 2))))
    return jnp.stack(out)


def _per_point_jacobian(spec: TrainSpec, term, rest, unravel, flat, pts, method: str = "jacrev") -> jax.Array:
    """``d r(x) / d theta`` of one term at every point, (N, k, P): per point ``jax.jacrev``
    (or ``jacfwd``) of that point's residual, vmapped over the points."""

    def one(fl, s):
        m, pr = eqx.combine(unravel(fl), rest)
        return term.residuals(pr, m, s[None]).astype(spec.jnp_dtype).reshape(-1)

    jac = jax.jacrev(one) if method == "jacrev" else jax.jacfwd(one)
    return jax.vmap(jac, in_axes=(None, 0))(flat, pts)


def term_grad_norms(loss_vector_fn, params) -> jax.Array:
    """||grad L_i|| w.r.t. the trainable params, for every term i."""
    jac = jax.jacrev(loss_vector_fn)(params)
    sq = [jnp.sum(g.reshape(g.shape[0], -1) ** 2, axis=1) for g in jax.tree.leaves(jac)]
    return jnp.sqrt(sum(sq))


def weighted_residuals(spec: TrainSpec, problem, model, points, weights) -> jax.Array:
    """The flat vector ``r`` of all residual components, each term scaled by
    ``sqrt(fixed_i * weights_i / size_i)`` so that ``sum(r**2)`` is the weighted loss (no
    causal weighting): the least-squares form the Gauss-Newton family works on."""
    out = []
    for i, (term, pts) in enumerate(zip(active_terms(problem, spec), points)):
        r = term.residuals(problem, model, pts).astype(spec.jnp_dtype)
        scale = jnp.sqrt(spec.fixed_weights[i] * weights[i] / r.size)
        out.append(scale * r.reshape(-1))
    return jnp.concatenate(out)


def weighted_residual_jacobian(spec: TrainSpec, params, rest, points, weights, method: str = "jacrev"):
    """``(r, J, flat, unravel)``: `weighted_residuals` at ``(params, rest)``, its Jacobian
    (N, P) with respect to the flat parameters, the flat parameters and the map back.

    Generic autodiff, any network: per collocation point, ``jax.jacrev`` (or ``jacfwd``) of
    that point's residual, vmapped over the points (differentiating the batched residual
    instead would cost N full-batch backward passes). ``method="kronecker"``: the dense
    layers' columns in Kronecker form from the engine's carried inputs and one backward pass
    per residual component (``pinnjax/derivatives/_param_jacobian.py``), the rest by autodiff.

    On a device mesh (``spec.mesh``) each device forms the rows of its own points, and the
    rows come device by device: ``r`` and ``J`` are those of one device with their rows
    reordered (split along the mesh), which leaves ``r^T r``, ``J^T J`` and ``J^T r`` as they
    are."""
    if spec.mesh is None:
        return _residual_jacobian(spec, params, rest, points, weights, method)
    flat, unravel = ravel_pytree(params)
    r, J = _per_device(spec, params, rest, points, weights, method, lambda r, J: (r, J), P(AXIS))
    return r, J, flat, unravel


def weighted_normal_equations(spec: TrainSpec, params, rest, points, weights, method: str = "jacrev"):
    """``(r^T r, J^T J, J^T r, flat, unravel)`` of `weighted_residual_jacobian`. On a device
    mesh each device forms them from its block of rows of ``J`` and the blocks are summed
    over the devices (one all-reduce): no device holds more than its own rows of ``J``."""
    if spec.mesh is None:
        r, J, flat, unravel = _residual_jacobian(spec, params, rest, points, weights, method)
        return r @ r, J.T @ J, J.T @ r, flat, unravel
    flat, unravel = ravel_pytree(params)

    def blocks(r, J):
        return tuple(jax.lax.psum(b, AXIS) for b in (r @ r, J.T @ J, J.T @ r))

    value, G, g = _per_device(spec, params, rest, points, weights, method, blocks, P())
    return value, G, g, flat, unravel


def _per_device(spec: TrainSpec, params, rest, points, weights, method, reduce, out_spec):
    """``reduce(r_d, J_d)`` on every device d of ``spec.mesh``, where ``(r_d, J_d)`` are the
    rows of its points (`_residual_jacobian` with ``parts`` = devices: a term whose points
    are not split is computed whole on every device and scaled by ``1/sqrt(devices)``, so its
    rows still add up to its share of ``J^T J``)."""
    mesh = spec.mesh
    arrays, static = eqx.partition(rest, eqx.is_array)
    point_specs = tuple(point_spec(mesh, pts.shape) for pts in points)

    def local(params, arrays, points, weights):
        r, J, _, _ = _residual_jacobian(spec, params, eqx.combine(arrays, static), points, weights, method,
                                        parts=mesh.size)
        return reduce(r, J)

    return jax.shard_map(local, mesh=mesh, in_specs=(P(), P(), point_specs, P()), out_specs=out_spec,
                         check_vma=False)(params, arrays, points, weights)


def _residual_jacobian(spec: TrainSpec, params, rest, points, weights, method: str = "jacrev", parts: int = 1):
    """`weighted_residual_jacobian` on the points given, each term scaled as if it had
    ``parts`` times as many (the points of one of ``parts`` devices)."""
    flat, unravel = ravel_pytree(params)

    rs, js = [], []
    model, problem = eqx.combine(params, rest)
    for i, (term, pts) in enumerate(zip(active_terms(problem, spec), points)):
        r = term.residuals(problem, model, pts).astype(spec.jnp_dtype)
        if method == "kronecker":

            def batch(p, xs, term=term):
                m, pr = eqx.combine(p, rest)
                return term.residuals(pr, m, xs).astype(spec.jnp_dtype)

            J = kronecker_jacobian(batch, unravel(flat), pts)
        else:
            J = _per_point_jacobian(spec, term, rest, unravel, flat, pts, method)  # (N, k, P)
        scale = jnp.sqrt(spec.fixed_weights[i] * weights[i] / (r.size * parts))
        rs.append(scale * r.reshape(-1))
        js.append(scale * J.reshape(-1, flat.shape[0]))
    return jnp.concatenate(rs), jnp.concatenate(js), flat, unravel
