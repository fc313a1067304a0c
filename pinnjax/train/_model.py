"""The network a config describes, and the run's float type."""

from __future__ import annotations

import contextlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..config import EmbeddingConfig, ModelConfig
from ..nn import MLP, FourierFeatures, ModifiedMLP, PeriodicEmbedding, PirateNet, ResNet
from ..problem import Dirichlet, Initial
from ..problem._conditions import _value_at


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


def resolve_matmul_precision(setting: str | None) -> str | None:
    """``model.matmul_precision`` for this backend (None: JAX's default). ``auto`` is
    ``highest`` on GPUs, whose default float32 matmul may round its inputs to TF32 (10-bit
    mantissa), which the higher-order derivative groups cannot afford."""
    if setting == "auto":
        return "highest" if jax.default_backend() == "gpu" else None
    return None if setting in (None, "default") else setting


@contextlib.contextmanager
def precision(dtype: str, matmul: str | None = None):
    """The context a run works in, decided once where the run starts: 64-bit JAX on for a
    float64 run and off for a float32 one, for this thread and only while the context lasts
    (``jax.enable_x64``), so no library call changes the caller's process-wide settings and a
    float32 run's numbers do not depend on them. `matmul` (``model.matmul_precision``, None:
    the backend's default) is the precision of every matmul traced inside: the training step,
    and as much the evaluation and predictions of the trained network (on a GPU, an error
    measured with TF32 matmuls has a floor near 1e-4 whatever the network)."""
    if dtype not in ("float32", "float64"):
        raise ValueError(f"model.dtype must be 'float32' or 'float64', got {dtype!r}")
    resolved = resolve_matmul_precision(matmul)
    with jax.enable_x64(dtype == "float64"):
        with contextlib.nullcontext() if resolved is None else jax.default_matmul_precision(resolved):
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
