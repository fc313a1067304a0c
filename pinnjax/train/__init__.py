"""Training: optimiser phases (``optimisers/``, one file each), one compiled step per phase
(state in, state out), chunks of steps in a ``lax.scan``, and the host loop that logs,
evaluates, checkpoints and plots between chunks."""

from ._evaluate import eval_set as eval_set
from ._evaluate import evaluate as evaluate
from ._evaluate import evaluate_run as evaluate_run
from ._evaluate import load_run_state as load_run_state
from ._evaluate import read_history as read_history
from ._fit import NonFiniteLossError as NonFiniteLossError
from ._fit import chunk_boundaries as chunk_boundaries
from ._fit import fit as fit
from ._fit import fit_state as fit_state
from ._loss import causal_loss as causal_loss
from ._loss import causal_weights as causal_weights
from ._loss import gradnorm_weights as gradnorm_weights
from ._mesh import initialize_distributed as initialize_distributed
from ._mesh import make_mesh as make_mesh
from ._model import build_model as build_model
from ._model import precision as precision
from ._model import set_precision as set_precision
from ._phases import Phase as Phase
from ._phases import phases_from_config as phases_from_config
from ._plots import make_plots as make_plots
from ._sampling import rad_probabilities as rad_probabilities
from ._sampling import rad_select as rad_select
from ._spec import TrainSpec as TrainSpec
from ._spec import make_spec as make_spec
from ._state import TrainState as TrainState
from ._state import init_state as init_state
from ._step import TRACE_COUNTS as TRACE_COUNTS
from ._step import adam_chunk as adam_chunk
from ._step import phase_chunk as phase_chunk
