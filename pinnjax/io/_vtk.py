"""VTK XML files ParaView opens, written to the format's specification ("VTK File Formats",
XML section): a structured grid (``.vts``), a set of points (``.vtu``, one vertex cell per
point) and a time-series collection (``.pvd``). ASCII data, so the files are readable as text."""

from __future__ import annotations

import os
import pathlib
from xml.sax.saxutils import quoteattr

import numpy as np

from ._atomic import atomic_write_text


def _numbers(a) -> str:
    a = np.asarray(a)
    if np.issubdtype(a.dtype, np.integer):
        return " ".join(str(int(v)) for v in a.ravel())
    return " ".join(repr(float(v)) for v in a.ravel())


def _points3(points) -> np.ndarray:
    """(N, d) with d <= 3 as (N, 3): VTK points always have three components."""
    points = np.asarray(points, np.float64)
    if points.ndim != 2 or not 1 <= points.shape[1] <= 3:
        raise ValueError(f"VTK points need 1 to 3 coordinates, got shape {points.shape}")
    return np.concatenate([points, np.zeros((points.shape[0], 3 - points.shape[1]))], axis=1)


def _point_data(fields: dict) -> str:
    arrays = []
    for name, values in fields.items():
        values = np.asarray(values, np.float64)
        arrays.append(
            f'        <DataArray type="Float64" Name={quoteattr(name)} format="ascii">{_numbers(values)}</DataArray>'
        )
    first = quoteattr(next(iter(fields))) if fields else '""'
    return f"      <PointData Scalars={first}>\n" + "\n".join(arrays) + "\n      </PointData>\n"


def _points_xml(points) -> str:
    return (
        "      <Points>\n"
        f'        <DataArray type="Float64" NumberOfComponents="3" format="ascii">{_numbers(_points3(points))}</DataArray>\n'
        "      </Points>\n"
    )


def write_vts(path, points, shape, fields: dict) -> pathlib.Path:
    """A structured grid: `points` (N, d) ordered with the first axis fastest (VTK's order),
    `shape` the number of points along each axis (at most 3), `fields` name -> (N,) values."""
    shape = tuple(int(n) for n in shape) + (1,) * (3 - len(shape))
    if int(np.prod(shape)) != np.asarray(points).shape[0]:
        raise ValueError(f"grid shape {shape} does not match {np.asarray(points).shape[0]} points")
    extent = " ".join(f"0 {n - 1}" for n in shape)
    text = (
        '<?xml version="1.0"?>\n'
        '<VTKFile type="StructuredGrid" version="0.1" byte_order="LittleEndian">\n'
        f'  <StructuredGrid WholeExtent="{extent}">\n'
        f'    <Piece Extent="{extent}">\n'
        + _point_data(fields)
        + _points_xml(points)
        + "    </Piece>\n  </StructuredGrid>\n</VTKFile>\n"
    )
    return atomic_write_text(path, text)


def write_vtu_points(path, points, fields: dict) -> pathlib.Path:
    """An unstructured grid of points: one vertex cell (VTK type 1) per point."""
    n = np.asarray(points).shape[0]
    cells = (
        "      <Cells>\n"
        f'        <DataArray type="Int64" Name="connectivity" format="ascii">{_numbers(np.arange(n))}</DataArray>\n'
        f'        <DataArray type="Int64" Name="offsets" format="ascii">{_numbers(np.arange(1, n + 1))}</DataArray>\n'
        f'        <DataArray type="UInt8" Name="types" format="ascii">{_numbers(np.ones(n, np.int64))}</DataArray>\n'
        "      </Cells>\n"
    )
    text = (
        '<?xml version="1.0"?>\n'
        '<VTKFile type="UnstructuredGrid" version="0.1" byte_order="LittleEndian">\n'
        "  <UnstructuredGrid>\n"
        f'    <Piece NumberOfPoints="{n}" NumberOfCells="{n}">\n'
        + _point_data(fields)
        + _points_xml(points)
        + cells
        + "    </Piece>\n  </UnstructuredGrid>\n</VTKFile>\n"
    )
    return atomic_write_text(path, text)


def write_pvd(path, entries) -> pathlib.Path:
    """A time-series collection: `entries` are ``(time, file)``, files relative to `path`'s
    folder (or absolute)."""
    folder = pathlib.Path(os.fspath(path)).parent
    rows = []
    for t, file in entries:
        file = pathlib.Path(os.fspath(file))
        rel = os.path.relpath(file, folder) if file.is_absolute() else str(file)
        rows.append(f'    <DataSet timestep="{float(t)!r}" group="" part="0" file={quoteattr(rel)}/>')
    text = (
        '<?xml version="1.0"?>\n'
        '<VTKFile type="Collection" version="0.1" byte_order="LittleEndian">\n'
        "  <Collection>\n" + "\n".join(rows) + "\n  </Collection>\n</VTKFile>\n"
    )
    return atomic_write_text(path, text)
