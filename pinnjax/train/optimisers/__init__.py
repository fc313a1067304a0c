"""Optimiser phases: one file per optimiser; `OPTIMISERS` maps config names to classes."""

from ._base import AbstractOptimiser as AbstractOptimiser
from ._base import Objective as Objective
from ._base import StepOut as StepOut
from .adam import Adam as Adam
from .bfgs import BFGS as BFGS
from .bfgs import SSBFGS as SSBFGS
from .bfgs import SSBroyden as SSBroyden
from .engd import ENGD as ENGD
from .lbfgs import LBFGS as LBFGS
from .levenberg_marquardt import LevenbergMarquardt as LevenbergMarquardt
from .soap import SOAP as SOAP

OPTIMISERS = {cls.name: cls for cls in (Adam, SOAP, LBFGS, BFGS, SSBFGS, SSBroyden, LevenbergMarquardt, ENGD)}
