"""The run configuration schema: nested frozen dataclasses with typed defaults.

These defaults are the one source of truth: ``configs/base.yaml`` sets nothing that differs
from them (tests/test_config.py checks it) and README.md's config reference lists them.

Field metadata drives validation in `_load.py`:

- `choices`: the allowed values of an enumerated string;
- `min`: the smallest allowed value (inclusive); `gt`: a strict lower bound;
- `max_lt`: a strict upper bound.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar


def _field(default=dataclasses.MISSING, **meta):
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _positive(default):
    return _field(default, min=1)


def _nonnegative(default):
    return _field(default, min=0)


@dataclasses.dataclass(frozen=True)
class ProblemConfig:
    # A shipped problem name ("poisson2d") or "path/to/file.py:ClassName".
    name: str
    # Free-form keyword arguments for the problem constructor.
    params: dict[str, Any] = _field({})


class _PerType:
    """A config whose keys depend on its ``type``: ``KEYS`` maps each type to the keys that
    only it takes (the other fields are shared). The loader rejects a key given for a type
    that does not take it; unset per-type keys are None and left out of dumps."""

    KEYS: ClassVar[dict[str, tuple[str, ...]]] = {}
    REQUIRED: ClassVar[dict[str, tuple[str, ...]]] = {}
    DEFAULT_TYPE: ClassVar[str | None] = None


@dataclasses.dataclass(frozen=True)
class EmbeddingConfig(_PerType):
    # fourier: sin/cos of B x with B ~ N(0, scale^2) (features rows);
    # periodic: cos/sin(2 pi j x_k / P) for the listed axes, j = 1..harmonics
    type: str = _field(choices=("fourier", "periodic"))
    features: int | None = _field(None, min=1)
    scale: float | None = _field(None, gt=0)
    axes: list[int] | None = _field(None, min=0)
    periods: list[float] | None = _field(None, gt=0)
    harmonics: int | None = _field(None, min=1)

    KEYS: ClassVar = {"fourier": ("features", "scale"), "periodic": ("axes", "periods", "harmonics")}
    REQUIRED: ClassVar = {"periodic": ("periods",)}


@dataclasses.dataclass(frozen=True)
class FactorizationConfig:
    """Random weight factorisation ``W = exp(s) V`` with ``s ~ N(mean, std^2)`` per row."""

    mean: float = 1.0
    std: float = _field(0.1, min=0)


@dataclasses.dataclass(frozen=True)
class ModelConfig(_PerType):
    # mlp: `depth` dense hidden layers; modified_mlp: `depth` gated layers between two
    # encoders; pirate: `blocks` gated residual blocks (skip weight alpha starts at 0);
    # resnet: `blocks` two-layer residual blocks
    type: str = _field("mlp", choices=("mlp", "modified_mlp", "pirate", "resnet"))
    width: int = _positive(50)
    depth: int | None = _field(None, min=1)  # hidden layers (mlp, modified_mlp; default 4)
    blocks: int | None = _field(None, min=1)  # residual blocks (pirate 3, resnet 2 by default)
    # pirate: fit the output layer by least squares to the Dirichlet / initial values at start
    least_squares_init: bool | None = None
    activation: str = "tanh"
    embedding: EmbeddingConfig | None = None
    factorization: FactorizationConfig | None = None
    # true: impose the problem's Dirichlet conditions exactly; constant: only those whose data
    # are numbers (function data stay loss terms, so a closed-form solution given as boundary
    # data never enters the interior through the constraint's g)
    hard_constraint: bool | str = _field(False, choices=("constant",))
    dtype: str = _field("float32", choices=("float32", "float64"))
    # precision of the float32 matmuls of the compiled training step and of the run's
    # evaluation and predictions: auto = highest on GPUs (whose default may round through TF32
    # and spoil third- and fourth-order terms, and the measured error), the backend's default
    # elsewhere
    matmul_precision: str = _field("auto", choices=("auto", "default", "high", "highest"))

    KEYS: ClassVar = {"mlp": ("depth",), "modified_mlp": ("depth",), "pirate": ("blocks", "least_squares_init"), "resnet": ("blocks",)}
    DEFAULT_TYPE: ClassVar = "mlp"

    @property
    def n_depth(self) -> int:
        return self.depth if self.depth is not None else 4

    @property
    def n_blocks(self) -> int:
        if self.blocks is not None:
            return self.blocks
        return 3 if self.type == "pirate" else 2


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    steps: int = _positive(5000)
    lr: float = _field(1e-3, gt=0)
    warmup_steps: int = _nonnegative(0)
    decay: str = _field("exponential", choices=("none", "exponential", "cosine"))
    decay_rate: float = _field(0.9, gt=0)
    decay_steps: int = _positive(1000)
    lbfgs_steps: int = _nonnegative(0)  # L-BFGS steps after the Adam steps
    lbfgs_memory: int = _positive(50)
    log_every: int = _positive(100)
    checkpoint_every: int = _positive(1000)
    scan_steps: int = _positive(100)  # steps per compiled lax.scan chunk
    # Ordered optimiser phases, e.g. [{optimiser: adam, steps: 3000},
    # {optimiser: ssbroyden, steps: 5000, resample_every: 500}]; None: the shorthand
    # `steps` Adam steps then `lbfgs_steps` L-BFGS steps.
    phases: list[dict[str, Any]] | None = None


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    interior: int = _positive(2000)
    boundary: int = _nonnegative(400)
    initial: int = _nonnegative(400)
    resample_every: int = _positive(1)
    method: str = _field("uniform", choices=("uniform", "sobol", "halton"))
    rad: bool = False
    rad_every: int = _positive(1000)
    rad_k: float = _field(1.0, min=0)
    rad_c: float = _field(1.0, min=0)
    rad_pool: int = _positive(20000)


@dataclasses.dataclass(frozen=True)
class LossConfig:
    # Term name -> weight; terms not listed weigh 1.0.
    weights: dict[str, float] = _field({})
    balancing: str = _field("none", choices=("none", "gradnorm", "ntk"))
    balance_every: int = _positive(100)
    balance_momentum: float = _field(0.9, min=0, max_lt=1)
    causal: bool = False
    causal_eps: float = _field(1.0, min=0)
    causal_chunks: int = _positive(16)
    # Regularisation of the problem's unknowns (inverse problems): a loss term
    # "regularization" weighing regularization_weight (see pinnjax.problem.Regularization).
    regularization: str = _field("none", choices=("none", "tikhonov", "smoothness", "tv"))
    regularization_weight: float = _field(1e-3, min=0)
    regularization_points: int = _positive(256)  # interior points for a field network


@dataclasses.dataclass(frozen=True)
class DerivativesConfig:
    # exact: the Laplacian (lap_u, any contraction) through the engine's axes, d rows;
    # hutchinson: `samples` random directions per point (rademacher or gaussian), one row each;
    # sparse: `samples` of the d axes per point, rescaled (SDGD / STDE). Fresh each step.
    laplacian: str = _field("exact", choices=("exact", "hutchinson", "sparse"))
    samples: int = _positive(16)
    directions: str = _field("rademacher", choices=("rademacher", "gaussian"))
    # points per chunk of the engine's batched pass: "auto" (on CPU, large batches run in
    # cache-sized chunks, each recomputed in the backward pass: pinnjax.derivatives.auto_chunk),
    # 0 (whole batches) or a number of points
    chunk: int | str = _field("auto", min=0, choices=("auto",))


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    every: int = _positive(500)
    # Points for problems with exact solutions; data-file references use their nodes.
    points: int = _positive(10000)


@dataclasses.dataclass(frozen=True)
class OutputConfig:
    dir: str = "runs"
    name: str | None = None
    plots: bool = True
    keep_checkpoints: int = _positive(3)


@dataclasses.dataclass(frozen=True)
class DiagnosticsConfig:
    # Record the extreme Hessian and Gauss-Newton eigenvalues (Lanczos) every `every` steps
    # into diagnostics.csv (0: never); `lanczos_steps` steps, the `k` largest and smallest.
    every: int = _nonnegative(0)
    lanczos_steps: int = _positive(30)
    k: int = _positive(3)
    # Laplace uncertainty of an inverse problem's unknowns: the standard deviation of the
    # data noise (None: the problem's `noise` attribute; 0 or none there: not computed),
    # the data term's name and the interval's confidence level.
    noise: float | None = _field(None, gt=0)
    data_term: str = "data"
    level: float = _field(0.95, gt=0, max_lt=1)


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
    """The 1-D device mesh the collocation points are split over, and the processes of a
    multi-machine run (started with ``jax.distributed.initialize``)."""

    devices: int | str = _field("all", min=1, choices=("all",))  # "all" or how many
    # several processes: "host:port" of process 0 (or JAX_COORDINATOR_ADDRESS), how many
    # processes (JAX_NUM_PROCESSES) and which one this is (JAX_PROCESS_ID)
    coordinator: str | None = None
    num_processes: int | None = _field(None, min=1)
    process_id: int | None = _field(None, min=0)


@dataclasses.dataclass(frozen=True)
class MarchConfig:
    """Time marching (pinnjax/train/_march.py): the time interval in windows of about
    `window` time units (rounded so that equal windows tile it), one network per window, each
    starting exactly where the one before ended. None: one network for the whole interval."""

    window: float | None = _field(None, gt=0)
    grid: int = _positive(64)  # fixed collocation points per spatial axis (a grid on a box)
    first_steps: int = _nonnegative(4000)  # Adam steps of the first window
    steps: int = _nonnegative(300)  # Adam steps of each later window (from the one before)
    lbfgs_steps: int = _nonnegative(150)  # L-BFGS steps ending each window
    heldout: int = _positive(4096)  # spatial points each window's held-out residual is measured on


@dataclasses.dataclass(frozen=True)
class RunConfig:
    problem: ProblemConfig
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    sampling: SamplingConfig = dataclasses.field(default_factory=SamplingConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    derivatives: DerivativesConfig = dataclasses.field(default_factory=DerivativesConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    output: OutputConfig = dataclasses.field(default_factory=OutputConfig)
    diagnostics: DiagnosticsConfig = dataclasses.field(default_factory=DiagnosticsConfig)
    distributed: DistributedConfig = dataclasses.field(default_factory=DistributedConfig)
    march: MarchConfig = dataclasses.field(default_factory=MarchConfig)
    seed: int = 0
