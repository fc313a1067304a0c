"""Several devices and processes, on JAX's own machinery: ``jax.distributed.initialize`` for
the processes, a 1-D ``jax.sharding.Mesh`` over every device, the collocation points (and RAD
pool) split along it, everything else (parameters, optimiser state) replicated. The compiled
step stays one ``jit`` program: XLA partitions it along the points, so each loss mean and each
gradient is summed over devices (an all-reduce) and equals the one-device number to
round-off. The Gauss-Newton systems are assembled explicitly from per-device blocks
(``shard_map`` in ``_loss.py``)."""

from __future__ import annotations

import os
import warnings

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..config import ConfigError

AXIS = "points"  # the one mesh axis

_ENV = {"coordinator": "JAX_COORDINATOR_ADDRESS", "num_processes": "JAX_NUM_PROCESSES",
        "process_id": "JAX_PROCESS_ID"}


def _process_settings(dist) -> dict:
    """coordinator, num_processes and process_id from the config, else the environment."""
    out = {}
    for key, env in _ENV.items():
        value = getattr(dist, key)
        if value is None and os.environ.get(env):
            raw = os.environ[env]
            if key != "coordinator":
                try:
                    raw = int(raw)
                except ValueError:
                    raise ConfigError(f"environment variable {env}: expected an int, got {raw!r}") from None
            value = raw
        out[key] = value
    return out


def initialize_distributed(dist) -> None:
    """Join a multi-process run when ``distributed`` (or the environment) names more than one
    process; must run before anything starts a JAX backend (importing pinnjax does not).
    Calling it again, or in a process already initialised, does nothing."""
    s = _process_settings(dist)
    if not s["num_processes"] or s["num_processes"] == 1 or jax.distributed.is_initialized():
        return
    if s["coordinator"] is None or s["process_id"] is None:
        raise ConfigError(
            f"key 'distributed.num_processes' is {s['num_processes']}: a multi-process run also needs "
            "distributed.coordinator (host:port of process 0) and distributed.process_id "
            "(or JAX_COORDINATOR_ADDRESS and JAX_PROCESS_ID)"
        )
    if not 0 <= s["process_id"] < s["num_processes"]:
        raise ConfigError(
            f"key 'distributed.process_id' is {s['process_id']}: expected 0 .. {s['num_processes'] - 1}"
        )
    jax.distributed.initialize(s["coordinator"], s["num_processes"], s["process_id"])


def make_mesh(dist) -> Mesh | None:
    """The 1-D mesh ``distributed.devices`` asks for; None for one device in one process
    (the run then takes exactly the one-device path)."""
    devices = jax.devices()
    if dist.devices == "all":
        n = len(devices)
    else:
        n = int(dist.devices)
        if n > len(devices):
            raise ConfigError(f"key 'distributed.devices' is {n} but JAX sees {len(devices)} device(s)")
        if jax.process_count() > 1 and n != len(devices):
            raise ConfigError(
                f"key 'distributed.devices' is {n}: a multi-process run uses every device of every "
                f"process ({len(devices)}); set it to all"
            )
    if n == 1 and jax.process_count() == 1:
        return None
    return Mesh(np.asarray(devices[:n]), (AXIS,))


def describe(mesh: Mesh | None) -> dict:
    """What metrics.json records about where the run ran."""
    devices = [jax.devices()[0]] if mesh is None else list(mesh.devices.flat)
    return {
        "devices": len(devices),
        "processes": jax.process_count(),
        "platform": devices[0].platform,
        "device_kind": devices[0].device_kind,
        "axis": None if mesh is None else AXIS,
    }


def _splits(mesh: Mesh, shape) -> bool:
    return len(shape) > 0 and shape[0] % mesh.size == 0


def point_spec(mesh: Mesh, shape) -> PartitionSpec:
    """Split along the points when their count is a multiple of the devices; else (a small
    data term, an odd count) every device holds them all."""
    return PartitionSpec(AXIS) if _splits(mesh, shape) else PartitionSpec()


def state_shardings(mesh: Mesh, state):
    """The sharding of every array of a TrainState: points and RAD pool split, the rest
    replicated."""
    replicated = NamedSharding(mesh, PartitionSpec())

    def points(tree):
        return jax.tree.map(lambda a: NamedSharding(mesh, point_spec(mesh, a.shape)), tree)

    out = jax.tree.map(lambda _: replicated, state)
    return eqx.tree_at(
        lambda s: (s.points, s.pool, s.pool_prob),
        out,
        (points(state.points), points(state.pool), points(state.pool_prob)),
        is_leaf=lambda x: x is None,
    )


def warn_unsplit(mesh: Mesh | None, spec, state) -> None:
    """Say which samples stay whole on every device (their count is not a multiple)."""
    if mesh is None or jax.process_index() != 0:
        return
    for name, pts in zip(spec.term_names, state.points):
        if not _splits(mesh, pts.shape):
            warnings.warn(
                f"term {name!r}: {pts.shape[0]} points are not a multiple of the {mesh.size} devices; "
                "every device computes all of them", stacklevel=3,
            )


def constrain(mesh: Mesh | None, tree, shardings=None):
    """Inside a trace: `tree` laid out as `shardings` (default: as points)."""
    if mesh is None:
        return tree
    if shardings is None:
        shardings = jax.tree.map(lambda a: NamedSharding(mesh, point_spec(mesh, a.shape)), tree)
    return jax.lax.with_sharding_constraint(tree, shardings)


def _is_key(a) -> bool:
    return isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)


def place(mesh: Mesh | None, state):
    """The state (host or one-device arrays, the same in every process) laid out on the
    mesh. Built from each process's own copy, so it works across processes."""
    if mesh is None:
        return state

    def one(a, sharding):
        if not isinstance(a, (jax.Array, np.ndarray)):
            return a
        if _is_key(a):
            impl = jax.random.key_impl(a)
            return jax.random.wrap_key_data(one(jax.random.key_data(a), sharding), impl=impl)
        host = np.asarray(a)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(one, state, state_shardings(mesh, state))


def to_host(tree):
    """Every array of `tree` as one local (host-backed) array, gathered from all devices and
    processes; every process must call it (it is a collective in a multi-process run)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        def gather(a):
            if _is_key(a):
                return jax.random.wrap_key_data(gather(jax.random.key_data(a)), impl=jax.random.key_impl(a))
            if isinstance(a, jax.Array) and not a.is_fully_addressable:
                return jax.numpy.asarray(multihost_utils.process_allgather(a, tiled=True))
            return a

        tree = jax.tree.map(gather, tree)
    return local(tree)


def local(tree):
    """`tree` with each array copied onto this process's first device (for evaluation and
    plots, which run outside the mesh). Arrays must be fully addressable here (replicated
    ones are)."""
    target = jax.local_devices()[0]

    def one(a):
        if not isinstance(a, jax.Array) or a.sharding.device_set == {target}:
            return a
        if _is_key(a):
            return jax.random.wrap_key_data(one(jax.random.key_data(a)), impl=jax.random.key_impl(a))
        if not a.is_fully_addressable:  # replicated over processes: any local shard is the whole
            a = a.addressable_shards[0].data
        return jax.device_put(np.asarray(a), target)

    return jax.tree.map(one, tree)
