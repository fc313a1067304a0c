from ._embeddings import AbstractEmbedding as AbstractEmbedding
from ._embeddings import FourierFeatures as FourierFeatures
from ._embeddings import PeriodicEmbedding as PeriodicEmbedding
from ._mlp import MLP as MLP
from ._mlp import Linear as Linear
