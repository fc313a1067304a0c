"""Checkpoints: equinox leaf serialisation behind a small verified header.

File layout::

    PINNJAX-CHECKPOINT\\n
    {"format": 1, "step": 1200, "payload_bytes": ..., "sha256": "...", ...}\\n
    <payload written by eqx.tree_serialise_leaves>

The header lets a checkpoint be identified and its step read without the matching
pytree, and the length + checksum turn a truncated or corrupted file into a clear
error instead of a confusing one from deep inside numpy.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import re
from typing import Any

import equinox as eqx
import jax

from ._atomic import atomic_write_bytes, to_python

_MAGIC = b"PINNJAX-CHECKPOINT\n"
_FORMAT = 1
_NAME_RE = re.compile(r"^step_(\d+)\.eqx$")


class CheckpointError(ValueError):
    """A checkpoint file is truncated, corrupted or does not match `like`."""


# --- leaf handling: typed PRNG keys are stored as their raw key data --------------


def _is_typed_key(x) -> bool:
    return isinstance(x, (jax.Array, jax.ShapeDtypeStruct)) and jax.dtypes.issubdtype(
        x.dtype, jax.dtypes.prng_key
    )


def _key_impl(x):
    if isinstance(x, jax.Array):
        return jax.random.key_impl(x)
    return getattr(x.dtype, "_impl", None)  # ShapeDtypeStruct: no public accessor


def _serialise_leaf(f, x):
    if _is_typed_key(x):
        x = jax.random.key_data(x)
    eqx.default_serialise_filter_spec(f, x)


def _keys_as_data(like):
    """`like` with each typed key replaced by the shape of its raw key data."""
    return jax.tree.map(
        lambda x: jax.eval_shape(jax.random.key_data, x) if _is_typed_key(x) else x,
        like,
    )


def _rewrap_keys(loaded, like):
    """Turns loaded raw key data back into typed keys where `like` has them."""
    return jax.tree.map(
        lambda new, old: (
            jax.random.wrap_key_data(new, impl=_key_impl(old))
            if _is_typed_key(old)
            else new
        ),
        loaded,
        like,
    )


# --- saving / loading --------------------------------------------------------------


def checkpoint_path(directory, step: int) -> pathlib.Path:
    """The canonical checkpoint file name `directory/step_XXXXXXXX.eqx`."""
    return pathlib.Path(os.fspath(directory)) / f"step_{int(step):08d}.eqx"


def save_checkpoint(
    path, state: Any, *, step: int | None = None, metadata: dict | None = None
) -> pathlib.Path:
    """Atomically saves a pytree of arrays / equinox modules to `path`.

    **Arguments:**

    - `path`: the file to write (see [`checkpoint_path`][] for the usual name).
    - `state`: any pytree: models, optax states, PRNG keys (raw `uint32` key data or
        typed `jax.random.key`s), step counters, loss weights, ...
    - `step`: stored in the header, readable with [`read_checkpoint_info`][].
    - `metadata`: extra JSON-serialisable information for the header.
    """
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, state, filter_spec=_serialise_leaf)
    payload = buffer.getvalue()
    header = {
        "format": _FORMAT,
        "step": None if step is None else int(step),
        "payload_bytes": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "metadata": to_python(metadata or {}),
    }
    head = json.dumps(header, separators=(",", ":")).encode() + b"\n"
    return atomic_write_bytes(path, _MAGIC + head + payload)


def _read_verified(path) -> tuple[dict, bytes]:
    path = pathlib.Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    blob = path.read_bytes()
    if not blob.startswith(_MAGIC):
        raise CheckpointError(f"{path}: not a pinnjax checkpoint (bad magic bytes)")
    end = blob.find(b"\n", len(_MAGIC))
    try:
        header = json.loads(blob[len(_MAGIC) : end]) if end >= 0 else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or "payload_bytes" not in header:
        raise CheckpointError(f"{path}: checkpoint header is truncated or corrupted")
    if header.get("format") != _FORMAT:
        raise CheckpointError(
            f"{path}: unsupported checkpoint format {header.get('format')!r} "
            f"(this pinnjax reads format {_FORMAT})"
        )
    payload = blob[end + 1 :]
    if len(payload) != header["payload_bytes"]:
        raise CheckpointError(
            f"{path}: checkpoint is truncated or corrupted "
            f"(payload has {len(payload)} bytes, header says {header['payload_bytes']})"
        )
    if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise CheckpointError(f"{path}: checkpoint is corrupted (checksum mismatch)")
    return header, payload


def read_checkpoint_info(path) -> dict:
    """The verified header of a checkpoint: `format`, `step`, `metadata`, ..."""
    header, _ = _read_verified(path)
    return header


def load_checkpoint(path, like: Any) -> Any:
    """Loads a checkpoint written by [`save_checkpoint`][].

    `like` is a pytree with the same structure, leaf types, shapes and dtypes as the
    saved one (e.g. a freshly initialised state, or `eqx.filter_eval_shape` of one).

    **Raises:** `FileNotFoundError` if the file is missing; [`CheckpointError`][] if
    it is truncated, corrupted, or does not match `like`. Both name the file.
    """
    header, payload = _read_verified(path)
    buffer = io.BytesIO(payload)
    try:
        loaded = eqx.tree_deserialise_leaves(buffer, _keys_as_data(like))
        state = _rewrap_keys(loaded, like)
    except Exception as e:
        raise CheckpointError(
            f"{path}: checkpoint does not match the structure of `like` ({e})"
        ) from e
    if buffer.tell() != len(payload):
        raise CheckpointError(
            f"{path}: checkpoint holds more leaves than `like` "
            f"({len(payload) - buffer.tell()} bytes unread)"
        )
    return state


# --- checkpoint folders ------------------------------------------------------------


def list_checkpoints(directory) -> list[tuple[int, pathlib.Path]]:
    """`(step, path)` of every `step_XXXXXXXX.eqx` in `directory`, oldest first."""
    directory = pathlib.Path(os.fspath(directory))
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        match = _NAME_RE.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def latest_checkpoint(directory) -> pathlib.Path | None:
    """The checkpoint with the highest step in `directory`, or `None`."""
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


def prune_checkpoints(directory, keep: int = 3) -> list[pathlib.Path]:
    """Deletes all but the newest `keep` checkpoints; returns the deleted paths."""
    if keep < 0:
        raise ValueError(f"keep must be >= 0, got {keep}")
    found = list_checkpoints(directory)
    doomed = [path for _, path in found[: max(len(found) - keep, 0)]]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed
