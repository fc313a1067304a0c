"""Crash-safe file writes, plus CSV and JSON writers built on them."""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np


def _default_mode() -> int:
    # mkstemp creates files 0600; give new files the usual umask-derived mode.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_dir(directory: pathlib.Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path, data: bytes) -> pathlib.Path:
    """Writes `data` to `path` atomically and durably.

    The bytes go to a temporary file in the same folder, which is flushed, fsynced
    and then renamed over `path` (`os.replace`); finally the folder is fsynced. A
    crash at any point leaves either the old file or the new one, never a mix.
    Missing parent folders are created.
    """
    path = pathlib.Path(os.fspath(path))
    directory = path.parent.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else _default_mode()
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)
    return path


def atomic_write_text(path, text: str, encoding: str = "utf-8") -> pathlib.Path:
    """Text version of [`atomic_write_bytes`][]."""
    return atomic_write_bytes(path, text.encode(encoding))


def to_python(obj: Any) -> Any:
    """Converts numpy/JAX scalars and arrays (and paths) to plain python values."""
    if isinstance(obj, Mapping):
        return {to_python(k): to_python(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_python(v) for v in obj]
    if isinstance(obj, pathlib.PurePath):
        return str(obj)
    if isinstance(obj, (str, bytes, bool, int, float)) or obj is None:
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "__array__") and hasattr(obj, "shape"):  # numpy or JAX arrays
        return np.asarray(obj).tolist()
    return obj


def write_json(path, obj: Any) -> pathlib.Path:
    """Atomically writes `obj` as indented JSON (numpy/JAX values become python)."""
    text = json.dumps(to_python(obj), indent=2)
    return atomic_write_text(path, text + "\n")


def write_csv_rows(path, rows: Iterable[Mapping[str, Any]]) -> pathlib.Path:
    """Atomically writes dict rows as CSV.

    The header is the union of the rows' keys in first-seen order; missing entries
    are left empty.
    """
    rows = [to_python(dict(row)) for row in rows]
    fieldnames: dict[str, None] = {}
    for row in rows:
        fieldnames.update(dict.fromkeys(row))
    buffer = io.StringIO(newline="")
    if fieldnames:
        writer = csv.DictWriter(
            buffer, fieldnames=list(fieldnames), restval="", lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue())
