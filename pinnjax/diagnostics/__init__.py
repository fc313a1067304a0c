"""The curvature of a PINN loss: Hessian- and Gauss-Newton-vector products, Lanczos
spectra, the critical-point report, ``pinnjax diagnose`` and the Laplace uncertainty of an
inverse problem's unknowns."""

from ._critical import classify as classify
from ._critical import critical_point_report as critical_point_report
from ._lanczos import SpectralDensity as SpectralDensity
from ._lanczos import condition_number as condition_number
from ._lanczos import extreme_eigenvalues as extreme_eigenvalues
from ._lanczos import lanczos as lanczos
from ._lanczos import spectral_density as spectral_density
from ._laplace import gaussian_posterior as gaussian_posterior
from ._laplace import laplace_unknowns as laplace_unknowns
from ._objective import FlatLoss as FlatLoss
from ._objective import flat_loss as flat_loss
from ._products import curvature_operator as curvature_operator
from ._products import gauss_newton_vector_product as gauss_newton_vector_product
from ._products import hessian_vector_product as hessian_vector_product
from ._diagnose import Settings as Settings
from ._diagnose import curvature_at as curvature_at
from ._diagnose import diagnose_run as diagnose_run
