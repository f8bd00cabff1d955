"""Stop a run whose dataloaders give no batches, before the first iteration."""
from mmengine.hooks import Hook

from dira_mm.registry import HOOKS
from dira_mm.utils.preflight import ConfigError, silence_known_warnings

__all__ = ['PreflightHook']


def _describe(loader, key: str) -> str:
    """Why ``loader`` (the built ``key``) has no batches, and which keys to change."""
    sampler = getattr(loader, 'sampler', None)
    per_process = len(sampler) if sampler is not None and hasattr(sampler, '__len__') else None
    batch_size = getattr(loader, 'batch_size', None)
    if batch_size is None:
        batch_size = getattr(getattr(loader, 'batch_sampler', None), 'batch_size', None)
    drop_last = getattr(loader, 'drop_last', None)
    if drop_last is None:
        drop_last = getattr(getattr(loader, 'batch_sampler', None), 'drop_last', None)
    return (f'{key} gives 0 batches per epoch: {per_process} sample(s) per process '
            f'(dataset of {len(loader.dataset)}), {key}.batch_size={batch_size}, '
            f'drop_last={drop_last}. Lower {key}.batch_size to at most {per_process}, set '
            f'{key}.drop_last=False, or check the dataset\'s data_root/ann_file.')


@HOOKS.register_module()
class PreflightHook(Hook):
    """Refuses to train when the train (or validation) dataloader is empty.

    A batch larger than the dataset with ``drop_last=True`` gives 0 iterations: mmengine
    would "train" every epoch without a step and save checkpoints (even a "best" one) of
    the untrained model. The config-only checks run earlier, in
    :func:`dira_mm.utils.preflight.preflight`; this one needs the built dataloaders, so it
    runs in ``before_train``. In ``before_run`` (before mmengine's LoggerHook and
    CheckpointHook create their FileClient) it drops mmengine's FileClient deprecation
    warnings from the run's log, which every run printed and no config can avoid.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        silence_known_warnings(runner.logger)

    def before_train(self, runner) -> None:
        problems = []
        if len(runner.train_dataloader) == 0:
            problems.append(_describe(runner.train_dataloader, 'train_dataloader'))
        val_loop = runner.val_loop
        if val_loop is not None and len(val_loop.dataloader) == 0:
            problems.append(_describe(val_loop.dataloader, 'val_dataloader'))
        if problems:
            raise ConfigError('\n'.join(problems))
