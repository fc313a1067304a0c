"""The network a config describes, and the run's float type."""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np

from ..config import ModelConfig
from ..nn import MLP, FourierFeatures, PeriodicEmbedding


def set_precision(dtype: str):
    """The jnp dtype for ``model.dtype``. It changes no JAX setting: a float64 network needs
    64-bit JAX on where it is built, i.e. inside ``precision("float64")`` (as ``fit`` and
    ``solve`` run) or with ``jax_enable_x64`` set by the caller."""
    if dtype == "float64":
        if not jax.config.jax_enable_x64:
            raise ValueError(
                "model.dtype float64 needs 64-bit JAX: build it inside pinnjax.train.precision('float64') "
                "(fit and solve do), or set jax_enable_x64 at start-up"
            )
        return jnp.float64
    if dtype == "float32":
        return jnp.float32
    raise ValueError(f"model.dtype must be 'float32' or 'float64', got {dtype!r}")


@contextlib.contextmanager
def precision(dtype: str):
    """The context a run works in, decided once where the run starts: 64-bit JAX on for a
    float64 run and off for a float32 one, for this thread and only while the context lasts
    (``jax.enable_x64``), so no library call changes the caller's process-wide settings and a
    float32 run's numbers do not depend on them."""
    if dtype not in ("float32", "float64"):
        raise ValueError(f"model.dtype must be 'float32' or 'float64', got {dtype!r}")
    with jax.enable_x64(dtype == "float64"):
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
