"""The network a config describes, and the run's float type."""

from __future__ import annotations

import contextlib
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from ..config import ModelConfig
from ..nn import MLP, FourierFeatures, PeriodicEmbedding


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


def build_embedding(cfg: dict | None, in_size: int, *, key, dtype, lower=None, upper=None):
    """The embedding a ``model.embedding`` dict describes. The MLP feeds it inputs already
    mapped from [lower, upper] onto [-1, 1], so periods (given in the problem's units) are
    rescaled to match."""
    if cfg is None:
        return None
    cfg = dict(cfg)
    kind = cfg.pop("type", None)
    try:
        if kind == "fourier":
            emb = FourierFeatures(in_size, int(cfg.pop("features", 64)), float(cfg.pop("scale", 1.0)), key=key)
            emb = jax.tree.map(lambda a: a.astype(dtype), emb)
        elif kind == "periodic":
            axes = cfg.pop("axes", [0])
            axes = [int(a) for a in (axes if isinstance(axes, (list, tuple)) else [axes])]
            periods = cfg.pop("periods")
            periods = [float(p) for p in (periods if isinstance(periods, (list, tuple)) else [periods])]
            if lower is not None and len(axes) == len(periods) and all(0 <= a < in_size for a in axes):
                periods = [p * 2.0 / (upper[a] - lower[a]) for a, p in zip(axes, periods)]
            harmonics = int(cfg.pop("harmonics", 1))
            emb = PeriodicEmbedding(in_size, axes, periods, harmonics)
            emb = jax.tree.map(lambda a: a.astype(dtype), emb)
        else:
            raise ValueError(f"model.embedding: unknown type {kind!r} (use 'fourier' or 'periodic')")
    except KeyError as e:
        raise ValueError(f"model.embedding ({kind}) needs the key {e.args[0]!r}") from None
    if cfg:
        raise ValueError(f"model.embedding ({kind}): unknown key(s) {sorted(cfg)}")
    return emb


def build_model(problem, model_cfg: ModelConfig, *, key) -> MLP:
    """The MLP for `problem`: one input per coordinate, one output per output name, inputs
    mapped from the domain's bounding box onto [-1, 1]."""
    dtype = set_precision(model_cfg.dtype)
    dim, n_out = problem.domain.dim, len(problem.outputs)
    with jax.ensure_compile_time_eval():  # concrete even under eval_shape
        lo, hi = ([float(v) for v in np.asarray(b)] for b in problem.domain.bbox())
    ekey, mkey = jax.random.split(key)
    emb = build_embedding(model_cfg.embedding, dim, key=ekey, dtype=dtype, lower=lo, upper=hi)
    return MLP(
        dim,
        n_out,
        model_cfg.width,
        model_cfg.depth,
        model_cfg.activation,
        key=mkey,
        embedding=emb,
        factorization=model_cfg.factorization,
        input_lower=lo,
        input_upper=hi,
        dtype=dtype,
    )
