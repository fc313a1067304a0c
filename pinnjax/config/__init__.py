"""YAML run configuration: a typed schema and a strict loader."""

from ._load import (
    config_from_dict as config_from_dict,
    config_to_dict as config_to_dict,
    ConfigError as ConfigError,
    dump_config as dump_config,
    load_config as load_config,
)
from ._schema import (
    DerivativesConfig as DerivativesConfig,
    DistributedConfig as DistributedConfig,
    EmbeddingConfig as EmbeddingConfig,
    EvalConfig as EvalConfig,
    FactorizationConfig as FactorizationConfig,
    LossConfig as LossConfig,
    ModelConfig as ModelConfig,
    OutputConfig as OutputConfig,
    ProblemConfig as ProblemConfig,
    RunConfig as RunConfig,
    SamplingConfig as SamplingConfig,
    TrainConfig as TrainConfig,
)
