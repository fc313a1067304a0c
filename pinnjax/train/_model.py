"""The network a config describes, and the run's float type."""

from __future__ import annotations

import contextlib
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..config import EmbeddingConfig, ModelConfig
from ..nn import MLP, FourierFeatures, ModifiedMLP, PeriodicEmbedding, PirateNet, ResNet
from ..problem import Dirichlet, Initial
from ..problem._conditions import _value_at


def set_precision(dtype: str):
    """The jnp dtype for ``model.dtype``. ``"float64"`` turns on ``jax_enable_x64``, which is
    process-wide: later float32 runs in the same process still train in float32 (samples and
    unknowns are cast to the model's dtype), but default-dtype arrays become float64."""
    if dtype == "float64":
        if not jax.config.jax_enable_x64:
            jax.config.update("jax_enable_x64", True)
        return jnp.float64
    if dtype == "float32":
        return jnp.float32
    raise ValueError(f"model.dtype must be 'float32' or 'float64', got {dtype!r}")


@contextlib.contextmanager
def precision(dtype: str):
    """The context a run works in: float64 runs turn on ``jax_enable_x64`` process-wide (see
    `set_precision`); float32 runs switch x64 off for their duration, so their numbers do not
    depend on whether something else in the process turned it on."""
    if set_precision(dtype) == jnp.float64:
        yield
    else:
        with jax.enable_x64(False), warnings.catch_warnings():
            # float64 arrays made before (e.g. PointData) are truncated: intended here
            warnings.filterwarnings("ignore", message="Explicitly requested dtype float64")
            yield


def build_embedding(cfg: EmbeddingConfig | None, in_size: int, *, key, dtype, lower=None, upper=None):
    """The embedding ``model.embedding`` describes. The networks feed it inputs already mapped
    from [lower, upper] onto [-1, 1], so periods (given in the problem's units) are rescaled."""
    if cfg is None:
        return None
    if cfg.type == "fourier":
        features = 64 if cfg.features is None else cfg.features
        emb = FourierFeatures(in_size, features, 1.0 if cfg.scale is None else cfg.scale, key=key)
    elif cfg.type == "periodic":
        axes = [0] if cfg.axes is None else list(cfg.axes)
        periods = list(cfg.periods)
        bad = [a for a in axes if not 0 <= a < in_size]
        if bad:
            raise ValueError(f"model.embedding.axes: axis {bad[0]} out of range for a {in_size}-dimensional problem")
        if len(axes) != len(periods):
            raise ValueError(f"model.embedding: {len(axes)} axes but {len(periods)} periods")
        if lower is not None:
            periods = [p * 2.0 / (upper[a] - lower[a]) for a, p in zip(axes, periods)]
        emb = PeriodicEmbedding(in_size, axes, periods, 1 if cfg.harmonics is None else cfg.harmonics)
    else:  # the schema admits no other type
        raise ValueError(f"model.embedding: unknown type {cfg.type!r} (use 'fourier' or 'periodic')")
    return jax.tree.map(lambda a: a.astype(dtype), emb)


NETWORKS = {"mlp": MLP, "modified_mlp": ModifiedMLP, "pirate": PirateNet, "resnet": ResNet}


def build_model(problem, model_cfg: ModelConfig, *, key):
    """The network ``model.type`` names for `problem`: one input per coordinate, one output
    per output name, inputs mapped from the domain's bounding box onto [-1, 1]."""
    dtype = set_precision(model_cfg.dtype)
    dim, n_out = problem.domain.dim, len(problem.outputs)
    with jax.ensure_compile_time_eval():  # concrete even under eval_shape
        lo, hi = ([float(v) for v in np.asarray(b)] for b in problem.domain.bbox())
    ekey, mkey = jax.random.split(key)
    emb = build_embedding(model_cfg.embedding, dim, key=ekey, dtype=dtype, lower=lo, upper=hi)
    fact = model_cfg.factorization
    size = model_cfg.n_blocks if model_cfg.type in ("pirate", "resnet") else model_cfg.n_depth
    model = NETWORKS[model_cfg.type](
        dim,
        n_out,
        model_cfg.width,
        size,
        model_cfg.activation,
        key=mkey,
        embedding=emb,
        factorization=None if fact is None else {"mean": fact.mean, "std": fact.std},
        input_lower=lo,
        input_upper=hi,
        dtype=dtype,
    )
    if model_cfg.least_squares_init:
        model = least_squares_output(model, problem, key=jax.random.fold_in(key, 1))
    return model


@eqx.filter_jit
def least_squares_output(model: PirateNet, problem, *, key, points: int = 256) -> PirateNet:
    """The PirateNet with its output layer fitted by (ridge-regularised) least squares to the
    values the problem's Dirichlet and Initial conditions prescribe, at ``points`` samples of
    each. With every skip weight alpha at 0 the network is linear in that layer, so this is
    the best start for those conditions (Wang et al. 2024). Outputs no such condition names,
    and problems with a hard constraint, keep the random layer."""
    if problem.has_constraint:
        return model
    features, targets = {}, {}
    for i, term in enumerate(problem.terms()):
        c = term.condition
        if not isinstance(c, (Dirichlet, Initial)):
            continue
        xs = term.sample(problem, jax.random.fold_in(key, i), points).astype(model.alpha.dtype)
        features.setdefault(c.output, []).append(jax.vmap(model.features)(xs))
        targets.setdefault(c.output, []).append(jax.vmap(lambda x, c=c: _value_at(c.value, x))(xs))
    W, b = model.output.weight, model.output.bias
    for name in features:
        o = problem.outputs.index(name)
        F = jnp.concatenate(features[name])
        A = jnp.concatenate([F, jnp.ones((F.shape[0], 1), F.dtype)], axis=1)
        g = jnp.concatenate(targets[name])
        gram = A.T @ A
        ridge = 1e-6 * jnp.trace(gram) / gram.shape[0]
        w = jnp.linalg.solve(gram + ridge * jnp.eye(gram.shape[0], dtype=gram.dtype), A.T @ g)
        W, b = W.at[o].set(w[:-1]), b.at[o].set(w[-1])
    layer = model.output
    V = W if layer.log_scale is None else W / jnp.exp(layer.log_scale)[:, None]
    return eqx.tree_at(lambda m: (m.output.V, m.output.bias), model, (V, b))
