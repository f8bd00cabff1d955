"""Count the unreadable images the datasets skipped and put the total in the logs."""
from typing import Optional, Sequence

import torch
from mmengine.dist import all_reduce, get_world_size, is_main_process
from mmengine.hooks import Hook, LoggerHook

from dira_mm.registry import HOOKS

__all__ = ['SkippedSamplesHook', 'count_skipped']


def count_skipped(data_batch) -> int:
    """Sum of ``skipped`` over ``data_batch['data_samples']`` (0 where it is absent)."""
    if not isinstance(data_batch, dict):
        return 0
    samples = data_batch.get('data_samples')
    if samples is None:
        return 0
    if not isinstance(samples, Sequence):
        samples = [samples]
    total = 0
    for sample in samples:
        value = sample.get('skipped', 0) if hasattr(sample, 'get') else \
            getattr(sample, 'skipped', 0)
        total += int(value.sum()) if torch.is_tensor(value) else int(value or 0)
    return total


@HOOKS.register_module()
class SkippedSamplesHook(Hook):
    """Make skipped unreadable images visible: a warning per batch and a running total.

    A dataset with ``on_error='skip'`` replaces an unreadable image by the next one and
    records how many it skipped in ``data_sample.skipped``. This hook sums them, warns when a
    batch had skips (the dataset's own warning named the files), and keeps the running
    total of all ranks (``mmengine.dist.all_reduce``, every ``interval`` iterations and at
    the end of each epoch, at the same iterations on every rank) in the message hub as
    ``train/skipped_images``, so it appears in the log lines. The total survives a resume
    (message hub runtime info). Validation and test totals are ``val/skipped_images`` and
    ``test/skipped_images``, per run.

    Args:
        interval (int, optional): Iterations between cross-rank reductions of the training
            total. Defaults to None: the ``LoggerHook``'s interval (10 without one).
    """

    priority = 'NORMAL'
    _INFO_KEY = 'skipped_images_total'

    def __init__(self, interval: Optional[int] = None) -> None:
        if interval is not None and interval < 1:
            raise ValueError(f'SkippedSamplesHook: interval must be >= 1, got {interval}.')
        self.interval = interval
        self._interval = interval or 10
        self._base = 0  # global total restored from a checkpoint
        self._local = 0  # this rank, since the start of this run
        self._total = 0  # global, as of the last reduction
        self._eval_local = 0

    def before_train(self, runner) -> None:
        """Pick the reduction interval and restore the total of a resumed run."""
        if self.interval is None:
            loggers = [h for h in runner.hooks if isinstance(h, LoggerHook)]
            self._interval = loggers[0].interval if loggers else 10
        self._base = int(runner.message_hub.get_info(self._INFO_KEY, 0) or 0)
        self._local = 0
        self._total = self._base

    @staticmethod
    def _reduce(count: int) -> int:
        if get_world_size() == 1:
            return count
        tensor = torch.tensor([count], dtype=torch.int64)
        all_reduce(tensor, op='sum')
        return int(tensor.item())

    def _warn_batch(self, runner, mode: str, new: int, so_far: int) -> None:
        runner.logger.warning(
            f'SkippedSamplesHook: {new} unreadable image(s) skipped in this {mode} batch '
            f'(epoch {runner.epoch}, iter {runner.iter}); {so_far} on this rank so far. The '
            'files are named in the dataset warnings above.')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """Count this batch's skips; reduce across ranks at the logging interval."""
        new = count_skipped(data_batch)
        if new:
            self._local += new
            self._warn_batch(runner, 'train', new, self._local)
        if (self.every_n_train_iters(runner, self._interval)
                or self.end_of_epoch(runner.train_dataloader, batch_idx)):
            total = self._base + self._reduce(self._local)
            if total > self._total and get_world_size() > 1 and is_main_process():
                runner.logger.warning(
                    f'SkippedSamplesHook: {total} unreadable images skipped so far '
                    '(all ranks).')
            self._total = total
            runner.message_hub.update_info(self._INFO_KEY, total)
        runner.message_hub.update_scalar('train/skipped_images', self._total)

    def _before_eval(self) -> None:
        self._eval_local = 0

    def _after_eval_iter(self, runner, mode: str, data_batch) -> None:
        new = count_skipped(data_batch)
        if new:
            self._eval_local += new
            self._warn_batch(runner, mode, new, self._eval_local)

    def _after_eval(self, runner, mode: str) -> None:
        runner.message_hub.update_scalar(f'{mode}/skipped_images',
                                         self._reduce(self._eval_local))

    def before_val_epoch(self, runner) -> None:
        self._before_eval()

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._after_eval_iter(runner, 'val', data_batch)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._after_eval(runner, 'val')

    def before_test_epoch(self, runner) -> None:
        self._before_eval()

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._after_eval_iter(runner, 'test', data_batch)

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._after_eval(runner, 'test')
