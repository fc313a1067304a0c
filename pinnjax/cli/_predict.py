"""``pinnjax predict`` and ``pinnjax export``: a finished run evaluated at new points, written
as .npy / .csv, or as VTK (ParaView) / .npz files. Every bad input is a ConfigError naming
the option or file (one line, exit status 2, nothing written)."""

from __future__ import annotations

import pathlib

import numpy as np

from ..config import ConfigError

DEFAULT_GRID = {1: (201,), 2: (101, 101), 3: (41, 41, 41)}
DEFAULT_TIMES = 11


def read_points(path: pathlib.Path, dim: int) -> np.ndarray:
    """(N, dim) points from a .npy or .csv file (a csv header line is skipped)."""
    if not path.is_file():
        raise ConfigError(f"--points: file not found: {path}")
    if path.suffix == ".npy":
        try:
            pts = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise ConfigError(f"--points: {path} is not a readable .npy file ({exc})") from None
    elif path.suffix == ".csv":
        lines = path.read_text().splitlines()
        skip = 1 if lines and any(c.isalpha() for c in lines[0].replace("e", "").replace("E", "")) else 0
        try:
            pts = np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2)
        except ValueError as exc:
            raise ConfigError(f"--points: {path} is not a numeric csv file ({exc})") from None
    else:
        raise ConfigError(f"--points: {path} must be a .npy or .csv file")
    pts = np.asarray(pts, np.float64)
    if pts.ndim == 1 and dim == 1:
        pts = pts[:, None]
    if pts.ndim != 2 or pts.shape[1] != dim or pts.shape[0] == 0:
        raise ConfigError(f"--points: {path} holds an array of shape {pts.shape}; the problem needs (N, {dim}) points")
    if not np.all(np.isfinite(pts)):
        raise ConfigError(f"--points: {path} holds non-finite coordinates")
    return pts


def parse_grid(text: str | None, space_dim: int) -> tuple[int, ...]:
    if text is None:
        if space_dim not in DEFAULT_GRID:
            raise ConfigError(f"--grid: give the points per axis for {space_dim} spatial coordinates (e.g. 8x8x8x8)")
        return DEFAULT_GRID[space_dim]
    try:
        shape = tuple(int(n) for n in text.lower().split("x"))
    except ValueError:
        shape = ()
    if not shape or any(n < 2 for n in shape):
        raise ConfigError(f"--grid {text!r}: expected points per axis like 101x101 (each at least 2)")
    if len(shape) != space_dim:
        raise ConfigError(f"--grid {text!r} has {len(shape)} axes; the problem has {space_dim} spatial coordinates")
    return shape


def parse_times(text: str | None, problem) -> tuple[float, ...] | None:
    """The times of a time-dependent problem (default: 11 evenly spaced); None if steady."""
    domain, axis = problem.domain, problem.time_axis
    if axis is None:
        if text is not None:
            raise ConfigError(f"--times: {type(problem).__name__} is steady (its domain has no time axis)")
        return None
    lo, hi = (float(np.asarray(b)[axis]) for b in domain.bbox())
    if text is None:
        return tuple(np.linspace(lo, hi, DEFAULT_TIMES).tolist())
    try:
        times = tuple(float(t) for t in text.split(","))
    except ValueError:
        raise ConfigError(f"--times {text!r}: expected numbers separated by commas, e.g. 0,0.5,1") from None
    outside = [t for t in times if not lo <= t <= hi]
    if outside:
        raise ConfigError(f"--times: {outside[0]} is outside the problem's time interval [{lo}, {hi}]")
    return times


def spatial_grid(problem, shape):
    """Grid points over the spatial bounding box, first axis fastest (VTK's order); and
    which of them lie in the domain."""
    space = problem.domain.space if problem.time_axis is not None and problem.domain.dim > 1 else problem.domain
    lo, hi = (np.asarray(b, np.float64) for b in space.bbox())
    axes = [np.linspace(a, b, n) for a, b, n in zip(lo, hi, shape)]
    mesh = np.meshgrid(*axes, indexing="ij")
    pts = np.stack([m.ravel(order="F") for m in mesh], axis=-1)
    import jax

    inside = np.asarray(jax.vmap(space.contains)(pts.astype(np.float32)))
    return space, pts, inside


def _is_box(space) -> bool:
    from ..geometry import Box, Interval

    return isinstance(space, (Box, Interval))


def grid_samples(problem, grid, times):
    """``[(time or None, points (N, dim), shape or None)]``: for a box, the whole structured
    grid; elsewhere the grid points inside the domain (shape None)."""
    if problem.time_axis is not None and problem.domain.dim == 1:
        raise ConfigError("--grid: the domain is time only; give --points")
    space_dim = problem.domain.dim - (problem.time_axis is not None)
    shape = parse_grid(grid, space_dim)
    space, pts, inside = spatial_grid(problem, shape)
    keep_all = _is_box(space)
    if not keep_all:
        pts, shape = pts[inside], None
    if times is None:
        return [(None, pts, shape)]
    return [(t, np.concatenate([pts, np.full((pts.shape[0], 1), t)], axis=1), shape) for t in times]


def _write_table(path: pathlib.Path, header, table: np.ndarray):
    if path.suffix == ".npy":
        from ..io import atomic_write_bytes
        import io

        buf = io.BytesIO()
        np.save(buf, table)
        atomic_write_bytes(path, buf.getvalue())
    else:
        from ..io import atomic_write_text

        rows = [",".join(header)] + [",".join(repr(float(v)) for v in row) for row in table]
        atomic_write_text(path, "\n".join(rows) + "\n")


def check_out(path: pathlib.Path, suffixes, option="--out"):
    if path.suffix not in suffixes:
        raise ConfigError(f"{option} {path}: expected a file ending in {' or '.join(suffixes)}")
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder")
    if not path.parent.is_dir():
        raise ConfigError(f"{option} {path}: folder {path.parent} does not exist")


def predict(solution, *, points=None, grid=None, times=None, out) -> pathlib.Path:
    """Write coordinates and outputs, one row per point: ``x, [y, ...], [t], u, ...``."""
    out = pathlib.Path(out)
    check_out(out, (".npy", ".csv"))
    problem = solution.problem
    if (points is None) == (grid is None):
        raise ConfigError("give exactly one of --points FILE and --grid NxM")
    if points is not None:
        if times is not None:
            raise ConfigError("--times goes with --grid (a points file holds its own times)")
        pts = read_points(pathlib.Path(points), problem.domain.dim)
    else:
        samples = grid_samples(problem, grid, parse_times(times, problem))
        pts = np.concatenate([p for _, p, _ in samples], axis=0)
    values = np.asarray(solution(pts), np.float64)
    header = list(problem.coords) + list(problem.outputs)
    _write_table(out, header, np.concatenate([pts, values], axis=1))
    return out


def export(solution, *, fmt: str, out, grid=None, times=None) -> list[pathlib.Path]:
    """VTK (a .vts structured grid for a box, .vtu points elsewhere, a .pvd collection over
    time) or one .npz with ``points``, one array per output and ``times``."""
    from ..io._vtk import write_pvd, write_vts, write_vtu_points

    out = pathlib.Path(out)
    problem = solution.problem
    time_list = parse_times(times, problem)
    if fmt == "npz":
        check_out(out, (".npz",))
        samples = grid_samples(problem, grid, time_list)
        pts = np.concatenate([p for _, p, _ in samples], axis=0)
        values = np.asarray(solution(pts), np.float64)
        arrays = {"points": pts, "coords": np.asarray(problem.coords)}
        arrays.update({name: values[:, k] for k, name in enumerate(problem.outputs)})
        if time_list is not None:
            arrays["times"] = np.asarray(time_list)
        import io

        from ..io import atomic_write_bytes

        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return [atomic_write_bytes(out, buf.getvalue())]
    space_dim = problem.domain.dim - (problem.time_axis is not None)
    if space_dim > 3:
        raise ConfigError(f"--format vtk: {space_dim} spatial coordinates do not fit VTK's three; use --format npz")
    samples = grid_samples(problem, grid, time_list)
    structured = samples[0][2] is not None
    piece = ".vts" if structured else ".vtu"
    check_out(out, (".pvd",) if time_list is not None else (piece,))

    def write_piece(path, pts, shape):
        values = np.asarray(solution(pts), np.float64)
        fields = {name: values[:, k] for k, name in enumerate(problem.outputs)}
        space_pts = pts[:, :space_dim]
        if structured:
            return write_vts(path, space_pts, shape, fields)
        return write_vtu_points(path, space_pts, fields)

    if time_list is None:
        _, pts, shape = samples[0]
        return [write_piece(out, pts, shape)]
    written = []
    for k, (t, pts, shape) in enumerate(samples):
        written.append(write_piece(out.with_name(f"{out.stem}_{k:04d}{piece}"), pts, shape))
    written.append(write_pvd(out, [(t, p.name) for (t, _, _), p in zip(samples, written)]))
    return written
