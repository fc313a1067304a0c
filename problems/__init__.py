"""The problem zoo: one definition per PDE, looked up by name.

    from pinnjax.problems import get_problem
    problem = get_problem("poisson2d")()          # or get_problem("heatnd")(dim=10)

``PROBLEMS`` maps every shipped name to its class.
"""

from __future__ import annotations

import difflib

from .allen_cahn import AllenCahn1D as AllenCahn1D
from .burgers import Burgers1D as Burgers1D
from .heat import Heat1D as Heat1D
from .heat import Heat2D as Heat2D
from .heat import Heat2DLongTime as Heat2DLongTime
from .heat import HeatND as HeatND
from .helmholtz import Helmholtz2D as Helmholtz2D
from .highdim import AllenCahnBall as AllenCahnBall
from .highdim import PoissonBall as PoissonBall
from .highdim import SineGordonBall as SineGordonBall
from .inverse import InverseDiffusion as InverseDiffusion
from .inverse import InverseDiffusionField as InverseDiffusionField
from .kdv import KdV as KdV
from .plate import KirchhoffPlate as KirchhoffPlate
from .poisson import Poisson1D as Poisson1D
from .poisson import Poisson2D as Poisson2D
from .poisson import Poisson2DC as Poisson2DC
from .poisson import PoissonBoltzmann2D as PoissonBoltzmann2D
from .poisson import PoissonND as PoissonND
from .wave import Wave1D as Wave1D

PROBLEMS: dict[str, type] = {
    "poisson1d": Poisson1D,
    "poisson2d": Poisson2D,
    "poisson2d_c": Poisson2DC,
    "poisson_boltzmann2d": PoissonBoltzmann2D,
    "poissonnd": PoissonND,
    "heat1d": Heat1D,
    "heat2d": Heat2D,
    "heatnd": HeatND,
    "heat2d_lt": Heat2DLongTime,
    "burgers1d": Burgers1D,
    "allen_cahn1d": AllenCahn1D,
    "wave1d": Wave1D,
    "helmholtz2d": Helmholtz2D,
    "kdv": KdV,
    "inverse_diffusion": InverseDiffusion,
    "inverse_diffusion_noisy": InverseDiffusionField,
    "kirchhoff_plate": KirchhoffPlate,
    "poisson_ball": PoissonBall,
    "sine_gordon_ball": SineGordonBall,
    "allen_cahn_ball": AllenCahnBall,
}


class UnknownProblemError(KeyError, ValueError):
    """``get_problem`` was given a name that is not in ``PROBLEMS``."""

    def __str__(self):
        return str(self.args[0])


def get_problem(name: str) -> type:
    """The problem class registered as ``name``; ``UnknownProblemError`` (a ``KeyError`` and a
    ``ValueError``) naming the closest shipped names otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"problem name must be a string, got {type(name).__name__}")
    try:
        return PROBLEMS[name]
    except KeyError:
        pass
    hints = difflib.get_close_matches(name.lower(), PROBLEMS, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(h) for h in hints)}?" if hints else ""
    raise UnknownProblemError(f"unknown problem {name!r}{hint} (shipped: {', '.join(sorted(PROBLEMS))})") from None


__all__ = ["PROBLEMS", "UnknownProblemError", "get_problem"] + [cls.__name__ for cls in PROBLEMS.values()]
