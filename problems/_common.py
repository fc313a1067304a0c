"""Helpers shared by the problem modules: cached reference data and default-parameter checks."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from pinnjax.data import ReferenceData, load_pinnacle, pinnacle_path


def freeze(ref: ReferenceData) -> ReferenceData:
    """Make the arrays of a cached reference read-only, so no caller can alter the shared copy."""
    for a in (ref.points, ref.values, ref.space_points) + ((ref.times,) if ref.times is not None else ()):
        a.flags.writeable = False
    return ref


@functools.lru_cache(maxsize=None)
def pinnacle_reference(name: str) -> ReferenceData:
    """A packaged PINNacle reference file, loaded once per process (space-time points for
    time-dependent files, time last)."""
    return freeze(load_pinnacle(pinnacle_path(name)))


def has_default_parameters(problem, names) -> bool:
    """Whether the fields ``names`` of ``problem`` hold their declared defaults: a data-file
    reference is only valid for the parameters it was computed with."""
    defaults = {f.name: f.default for f in dataclasses.fields(problem)}
    return all(np.all(np.asarray(getattr(problem, n)) == np.asarray(defaults[n])) for n in names)
