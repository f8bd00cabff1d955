"""Hooks of dira_mm (registered in ``dira_mm.registry.HOOKS``)."""
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .checked_load_hook import CheckedLoadHook
from .dataset_epoch_hook import DatasetEpochHook
from .dira_stage_hook import DiRAStageHook
from .fixed_lr_hook import FixedLRHook
from .momentum_update_hook import MomentumUpdateHook
from .nonfinite_check_hook import NonFiniteCheckHook, NonFiniteWeightsError
from .preflight_hook import PreflightHook
from .probe_hook import ProbeHook
from .reconstruction_vis_hook import ReconstructionVisHook
from .run_summary_hook import RunSummaryHook
from .safe_checkpoint_hook import SafeCheckpointHook
from .skipped_samples_hook import SkippedSamplesHook

__all__ = [
    'DatasetEpochHook', 'DiRAStageHook', 'FixedLRHook', 'MomentumUpdateHook', 'ReconstructionVisHook',
    'SafeCheckpointHook', 'SkippedSamplesHook', 'ProbeHook', 'RunSummaryHook',
    'NonFiniteCheckHook', 'NonFiniteWeightsError', 'PreflightHook', 'AtomicCheckpointHook',
    'CheckedLoadHook'
]
