"""pinnjax: physics-informed neural networks in JAX, built on a forward derivative engine."""

__version__ = "0.1.0"

from . import data as data
from . import derivatives as derivatives
from . import geometry as geometry
from . import nn as nn
from ._cpu_flags import use_fast_cpu_flags as use_fast_cpu_flags
from ._solve import load as load
from ._solve import Solution as Solution
from ._solve import solve as solve
from .derivatives import Estimator as Estimator
from .derivatives import Jet as Jet
from .derivatives import Request as Request
from .derivatives import jet as jet
from .geometry import Ball as Ball
from .geometry import Box as Box
from .geometry import Difference as Difference
from .geometry import Intersection as Intersection
from .geometry import Interval as Interval
from .geometry import Polygon as Polygon
from .geometry import TimeInterval as TimeInterval
from .geometry import Union as Union
from .nn import MLP as MLP
from .problem import Dirichlet as Dirichlet
from .problem import exact_dirichlet as exact_dirichlet
from .problem import Initial as Initial
from .problem import Neumann as Neumann
from .problem import Periodic as Periodic
from .problem import PointData as PointData
from .problem import Problem as Problem
from .problem import Robin as Robin
from .problem import UndeclaredDerivativeError as UndeclaredDerivativeError
from .problem import unknown as unknown
from .problem import with_exact_dirichlet as with_exact_dirichlet


def _zoo_from_checkout():
    """The problem zoo is installed as ``pinnjax.problems`` (pyproject.toml maps it from the
    top-level ``problems/`` folder). Run from a source checkout, the same folder is found by
    adding the checkout to this package's search path."""
    import pathlib

    here = pathlib.Path(__file__).resolve().parent
    checkout = here.parent
    if not (here / "problems").is_dir() and (checkout / "problems" / "__init__.py").is_file():
        __path__.append(str(checkout))


_zoo_from_checkout()
