"""Reference data (PINNacle COMSOL exports) and error metrics."""

from ._metrics import (
    error_metrics as error_metrics,
    l2_relative_error as l2_relative_error,
    max_abs_error as max_abs_error,
)
from ._pinnacle import (
    load_pinnacle as load_pinnacle,
    pinnacle_path as pinnacle_path,
    ReferenceData as ReferenceData,
)
