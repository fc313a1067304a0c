"""XLA settings that make pinnjax's training steps faster on CPU.

XLA:CPU hands reductions to YNNPACK ("YNN reduce fusions") by default in jaxlib 0.10. A PINN
step is many small elementwise passes over ``(points, width)`` arrays with reductions among
them (sums over derivative rows, the batch sums of the weight gradients); as YNN fusions they
ran slower than XLA's own loop fusions (measured on a 2-core AMD EPYC: a modified-MLP Laplacian
training step 1.4x faster without them, `scripts/bench_derivatives.py --xla-flags`).

XLA reads its flags once, when its first backend starts, so they must be in ``XLA_FLAGS``
before the first computation. The ``pinnjax`` command calls :func:`use_fast_cpu_flags` first;
a library user may call it right after ``import pinnjax`` (importing pinnjax changes nothing
by itself). A flag the user already set in ``XLA_FLAGS`` is left as it is, and
``PINNJAX_XLA_DEFAULTS=1`` turns this off.
"""

from __future__ import annotations

import os

# (flag name, value) pairs; applied only on the jaxlib versions they were checked on: XLA
# aborts the process on a flag it does not know.
FAST_CPU_FLAGS = (("xla_cpu_experimental_ynn_fusion_type", "-reduce"),)
CHECKED_JAXLIB = ("0.10.",)


def _jaxlib_version() -> str:
    try:
        from jaxlib import version

        return version.__version__
    except ImportError:  # pragma: no cover - jaxlib is a dependency
        return ""


def _backend_started() -> bool:
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # private API moved: assume the worst
        return True


def use_fast_cpu_flags(environ=None) -> tuple[str, ...]:
    """Add pinnjax's XLA:CPU flags to ``XLA_FLAGS`` (of `environ`, default ``os.environ``)
    where the user has not set them; returns the flags added (empty when nothing was done:
    switched off, a jaxlib they were not checked on, or JAX's backend already started)."""
    env = os.environ if environ is None else environ
    if env.get("PINNJAX_XLA_DEFAULTS") == "1" or not _jaxlib_version().startswith(CHECKED_JAXLIB):
        return ()
    if environ is None and _backend_started():
        return ()
    current = env.get("XLA_FLAGS", "")
    added = tuple(f"--{name}={value}" for name, value in FAST_CPU_FLAGS if f"--{name}=" not in current)
    if added:
        env["XLA_FLAGS"] = " ".join([current, *added]).strip()
    return added
