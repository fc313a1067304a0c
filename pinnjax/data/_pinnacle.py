"""Reader for the COMSOL text exports that ship with the PINNacle benchmark."""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import re

import numpy as np

_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent / "pinnacle"

# `u (1) @ t=0.01`: one snapshot label in the column header line.
_TIME_RE = re.compile(r"@\s*t\s*=\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
# `% Nodes:   1246`: a `key: value` header line.
_META_RE = re.compile(r"^%\s*([A-Za-z][A-Za-z ]*?)\s*:\s*(.*?)\s*$")


@dataclasses.dataclass(frozen=True, eq=False)
class ReferenceData:
    """A reference solution sampled at fixed nodes.

    **Fields:**

    - `points`: `(N, d)` coordinates. For time-dependent data loaded with
        `time_coord=True`, `N = n_nodes * n_times` and time is the last coordinate;
        rows are ordered snapshot by snapshot (all nodes at `times[0]`, then all nodes
        at `times[1]`, ...). With `time_coord=False`, `points` equals `space_points`.
    - `values`: `(N, 1)` reference values matching `points` row for row (or
        `(n_nodes, n_times)` for time-dependent data loaded with `time_coord=False`).
    - `times`: `(n_times,)` snapshot times, or `None` for stationary data.
    - `space_points`: `(n_nodes, d_space)` spatial node coordinates.
    - `n_nodes`: number of spatial nodes.
    - `source`: the file the data was read from.
    """

    points: np.ndarray
    values: np.ndarray
    times: np.ndarray | None
    space_points: np.ndarray
    n_nodes: int
    source: pathlib.Path

    @property
    def is_time_dependent(self) -> bool:
        return self.times is not None

    @property
    def n_times(self) -> int:
        return 0 if self.times is None else len(self.times)

    @property
    def space_dim(self) -> int:
        return self.space_points.shape[1]

    def snapshots(self) -> np.ndarray:
        """Values as an `(n_times, n_nodes)` grid (time-dependent data only)."""
        if self.times is None:
            raise ValueError(f"{self.source}: stationary data has no snapshots")
        if self.values.shape == (self.n_nodes, self.n_times):  # time_coord=False
            return self.values.T
        return self.values.reshape(self.n_times, self.n_nodes)


def pinnacle_path(name: str) -> pathlib.Path:
    """Path of a packaged PINNacle reference file, e.g. `"burgers1d.dat"`."""
    path = _PACKAGE_DIR / name
    if pathlib.Path(name).name != name or not path.is_file():
        available = ", ".join(sorted(p.name for p in _PACKAGE_DIR.glob("*.dat")))
        raise FileNotFoundError(
            f"no packaged PINNacle file {name!r} (available: {available})"
        )
    return path


def _fail(source, lineno, message):
    return ValueError(f"{source}, line {lineno}: {message}")


def _parse_row(source, lineno, line):
    tokens = line.split()
    try:
        row = [float(tok) for tok in tokens]
    except ValueError:
        bad = next(tok for tok in tokens if not _is_float(tok))
        raise _fail(source, lineno, f"non-numeric token {bad!r}") from None
    if not all(math.isfinite(x) for x in row):
        raise _fail(source, lineno, "non-finite value (nan or inf)")
    return row


def _is_float(token):
    try:
        float(token)
    except ValueError:
        return False
    return True


def _read(source):
    """Splits a file into header lines and numeric rows, keeping line numbers."""
    header = []  # (lineno, text)
    rows = []  # (lineno, [floats])
    with open(source, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            stripped = line.strip()
            if not stripped:
                continue
            if stripped.startswith("%"):
                if rows:
                    raise _fail(source, lineno, "header line after data rows")
                header.append((lineno, stripped))
            else:
                rows.append((lineno, _parse_row(source, lineno, stripped)))
    if not rows:
        last = header[-1][0] if header else 0
        raise _fail(source, last, "no data rows")
    width = len(rows[0][1])
    for lineno, row in rows:
        if len(row) != width:
            raise _fail(
                source,
                lineno,
                f"row has {len(row)} columns but the first data row has {width}",
            )
    return header, rows


def _header_int(source, header, key):
    """Integer value of a `% Key: value` header line, or None when absent."""
    for lineno, text in header:
        match = _META_RE.match(text)
        if match and match.group(1).lower() == key.lower():
            try:
                return int(match.group(2)), lineno
            except ValueError:
                raise _fail(
                    source, lineno, f"header {key!r} is not an integer"
                ) from None
    return None, None


def _snapshot_times(source, header):
    """Snapshot times from the column-label line (the last header line)."""
    if not header:
        return None, None
    lineno, text = header[-1]
    times = [float(t) for t in _TIME_RE.findall(text)]
    if not times:
        return None, lineno
    if any(b <= a for a, b in zip(times, times[1:])):
        raise _fail(
            source,
            lineno,
            "snapshot times are not strictly increasing "
            "(files with several fields per snapshot are not supported)",
        )
    return np.asarray(times), lineno


def load_pinnacle(path, *, time_coord: bool = True) -> ReferenceData:
    """Reads a PINNacle (COMSOL text export) reference solution.

    **Arguments:**

    - `path`: the `.dat` file. Use [`pinnacle_path`][] for the packaged files.
    - `time_coord`: for time-dependent files, whether to flatten the snapshots into
        space-time points `(n_nodes * n_times, d_space + 1)` with time as the last
        coordinate (default), or keep `points = space_points` and values as an
        `(n_nodes, n_times)` grid.

    **Raises:**

    `FileNotFoundError` for a missing file, `ValueError` naming the file and line for
    malformed content.
    """
    source = pathlib.Path(os.fspath(path))
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such reference data file")
    header, rows = _read(source)
    data = np.asarray([row for _, row in rows], dtype=np.float64)
    first_row = rows[0][0]
    n_cols = data.shape[1]

    dim, dim_line = _header_int(source, header, "Dimension")
    times, label_line = _snapshot_times(source, header)
    n_values = 1 if times is None else len(times)
    if dim is None:
        dim = n_cols - n_values
    where = label_line if times is not None else (dim_line or first_row)
    if dim < 1 or n_cols != dim + n_values:
        what = "value column" if times is None else "snapshot time"
        raise _fail(
            source,
            where,
            f"{n_cols} data columns do not match {dim} coordinate column(s) "
            f"plus {n_values} {what}(s)",
        )

    n_nodes, nodes_line = _header_int(source, header, "Nodes")
    if n_nodes is not None and n_nodes != len(data):
        raise _fail(
            source,
            nodes_line,
            f"header says {n_nodes} nodes but found {len(data)} rows",
        )

    space = data[:, :dim]
    values = data[:, dim:]
    if times is None or not time_coord:
        points = space
    else:
        # Snapshot-major flattening: row k * n_nodes + i is node i at times[k].
        n_t = len(times)
        points = np.concatenate(
            [np.tile(space, (n_t, 1)), np.repeat(times, len(space))[:, None]], axis=1
        )
        values = values.T.reshape(-1, 1)
    return ReferenceData(
        points=points,
        values=values,
        times=times,
        space_points=space,
        n_nodes=len(space),
        source=source,
    )
