"""Model utilities."""
from .batch_shuffle import batch_shuffle_ddp, batch_unshuffle_ddp, concat_all_gather
from .cls_data_preprocessor import ClsDataPreprocessor
from .data_preprocessor import DiRADataPreprocessor
from .global_batch_norm import GlobalBatchNorm, convert_global_batchnorm, global_batch_norm
from .misc import get_ssl_algorithm, preserve_training_state, unwrap
from .momentum_encoder import MomentumEncoder

__all__ = [
    'DiRADataPreprocessor', 'ClsDataPreprocessor', 'GlobalBatchNorm', 'MomentumEncoder',
    'convert_global_batchnorm',
    'global_batch_norm', 'batch_shuffle_ddp', 'batch_unshuffle_ddp',
    'concat_all_gather', 'get_ssl_algorithm', 'preserve_training_state', 'unwrap'
]
