"""Error metrics against reference solutions (the one place errors are computed)."""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike


def _check_shapes(pred, ref):
    pred, ref = jnp.asarray(pred), jnp.asarray(ref)
    # No broadcasting: (N,) against (N, 1) is almost always a bug.
    if pred.shape != ref.shape:
        raise ValueError(
            f"shape mismatch: pred has shape {pred.shape} but ref has shape {ref.shape}"
        )
    return pred, ref


def l2_relative_error(pred: ArrayLike, ref: ArrayLike) -> Array:
    """`||pred - ref||_2 / ||ref||_2` over all entries. Shapes must match exactly.

    Works under `jax.jit`. Infinite (or nan) when `ref` is identically zero.
    """
    pred, ref = _check_shapes(pred, ref)
    return jnp.linalg.norm((pred - ref).ravel()) / jnp.linalg.norm(ref.ravel())


def max_abs_error(pred: ArrayLike, ref: ArrayLike) -> Array:
    """`max |pred - ref|` over all entries. Shapes must match exactly."""
    pred, ref = _check_shapes(pred, ref)
    return jnp.max(jnp.abs(pred - ref))


def error_metrics(pred: ArrayLike, ref: ArrayLike) -> dict[str, float]:
    """`{"l2re": ..., "max_error": ...}` as python floats."""
    return {
        "l2re": float(l2_relative_error(pred, ref)),
        "max_error": float(max_abs_error(pred, ref)),
    }
