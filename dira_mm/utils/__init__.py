"""Utilities: safe checkpoints, CPU distributed launch, weight export, env setup, config
preflight checks."""
from .checkpoint import (PLAIN_TYPE_TAG, UnsafeCheckpointError, find_unsafe_globals,
                         from_plain, get_rng_state, register_safe_loader,
                         safe_torch_load, set_rng_state, to_plain)
from .checkpoint_files import (IncompleteCheckpointError, checkpoint_problem,
                               find_resume_checkpoint, save_checkpoint_atomic,
                               write_text_atomic)
from .config import isolate_run, iter_dataset_cfgs, leaf_dataset_cfg
from .convert import (WeightConversionError, convert_checkpoint, extract_unet,
                      verify_converted)
from .dist import cpu_dist_env, setup_cpu_distributed, teardown_distributed
from .preflight import ConfigError, run_preflight
from .setup_env import register_all_modules

__all__ = [
    'PLAIN_TYPE_TAG', 'UnsafeCheckpointError', 'find_unsafe_globals', 'from_plain',
    'get_rng_state', 'register_safe_loader', 'safe_torch_load', 'set_rng_state',
    'to_plain', 'WeightConversionError', 'convert_checkpoint', 'extract_unet',
    'verify_converted', 'cpu_dist_env', 'setup_cpu_distributed', 'teardown_distributed',
    'register_all_modules', 'iter_dataset_cfgs', 'leaf_dataset_cfg', 'isolate_run',
    'ConfigError', 'run_preflight', 'IncompleteCheckpointError',
    'checkpoint_problem', 'find_resume_checkpoint', 'save_checkpoint_atomic',
    'write_text_atomic'
]
