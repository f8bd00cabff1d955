"""Model utilities."""
from .batch_shuffle import batch_shuffle_ddp, batch_unshuffle_ddp, concat_all_gather
from .data_preprocessor import DiRADataPreprocessor
from .misc import get_ssl_algorithm, unwrap
from .momentum_encoder import MomentumEncoder

__all__ = [
    'DiRADataPreprocessor', 'MomentumEncoder', 'batch_shuffle_ddp', 'batch_unshuffle_ddp',
    'concat_all_gather', 'get_ssl_algorithm', 'unwrap'
]
