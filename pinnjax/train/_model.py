"""The network a config describes, and the run's float type."""

from __future__ import annotations

import contextlib
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from ..config import EmbeddingConfig, ModelConfig
from ..nn import MLP, FourierFeatures, ModifiedMLP, PeriodicEmbedding, PirateNet, ResNet


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
    return NETWORKS[model_cfg.type](
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
