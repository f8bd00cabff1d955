"""Model utilities."""
from .batch_shuffle import batch_shuffle_ddp, batch_unshuffle_ddp, concat_all_gather
from .builder import build_module
from .cls_data_preprocessor import ClsDataPreprocessor
from .data_preprocessor import DiRADataPreprocessor
from .float32 import autocast_enabled, run_in_float32
from .global_batch_norm import GlobalBatchNorm, convert_global_batchnorm, global_batch_norm
from .load_checked import load_checked, strip_ddp_prefix
from .misc import get_ssl_algorithm, preserve_training_state, unwrap
from .momentum_encoder import MomentumEncoder
from .momentum_target import MomentumTargetMixin
from .nonfinite import (NonFiniteGuard, NonFiniteLossCheckMixin, NonFiniteLossError,
                        find_nonfinite)
from .pretrained import (encoder_weights_from_checkpoint, read_pretrained,
                         unet_weights_from_checkpoint)

__all__ = [
    'DiRADataPreprocessor', 'ClsDataPreprocessor', 'GlobalBatchNorm', 'MomentumEncoder',
    'MomentumTargetMixin',
    'convert_global_batchnorm',
    'global_batch_norm', 'batch_shuffle_ddp', 'batch_unshuffle_ddp',
    'concat_all_gather', 'get_ssl_algorithm', 'preserve_training_state', 'unwrap',
    'load_checked', 'strip_ddp_prefix', 'build_module', 'read_pretrained',
    'encoder_weights_from_checkpoint', 'unet_weights_from_checkpoint',
    'run_in_float32', 'autocast_enabled',
    'NonFiniteGuard', 'NonFiniteLossCheckMixin', 'NonFiniteLossError', 'find_nonfinite'
]
