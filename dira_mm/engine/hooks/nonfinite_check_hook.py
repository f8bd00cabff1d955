"""Stop a run with NaN/Inf losses or weights before anything non-finite is saved."""
from typing import Optional

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.model import MMDistributedDataParallel

from dira_mm.models.utils import unwrap
from dira_mm.models.utils.nonfinite import (NonFiniteGuard, NonFiniteLossCheckMixin,
                                            find_nonfinite, named_tensors)
from dira_mm.registry import HOOKS

__all__ = ['NonFiniteCheckHook', 'NonFiniteWeightsError']

_KEY = 'default_hooks.nonfinite_check'


class NonFiniteWeightsError(FloatingPointError):
    """A parameter, buffer or optimizer state holds NaN/Inf (raised by the hook)."""


@HOOKS.register_module()
class NonFiniteCheckHook(Hook):
    """Non-finite losses stop (or skip) the step; non-finite weights are never saved.

    Losses: installs a :class:`~dira_mm.models.utils.nonfinite.NonFiniteGuard` with
    ``loss_policy`` on the model; every training step of a model with
    :class:`~dira_mm.models.utils.nonfinite.NonFiniteLossCheckMixin` (all dira_mm models)
    checks its loss terms before the optimizer step and raises, naming the term (e.g.
    ``loss_d``), its value, the epoch and iteration (``'stop'``), or skips the step
    (``'skip'``, counted as ``train/skipped_steps`` in the logs, stopping after
    ``max_consecutive_skips`` in a row).

    Weights: every parameter and buffer is checked before training (a NaN ``load_from``
    or resumed checkpoint), every ``param_interval`` iterations, after each training epoch
    (before ``CheckpointHook``, which runs later at priority ``VERY_LOW``), and the state
    dict and optimizer state of every checkpoint in ``before_save_checkpoint``, which
    mmengine calls (on rank 0) before writing the file, so best and iteration-based
    checkpoints too. The first non-finite tensor stops the run with
    :class:`NonFiniteWeightsError`; no file is written. Weights can diverge while every
    loss stays finite (BatchNorm hides it: a generator lr of 1e6 gives Inf BN running
    variances and finite losses), hence the periodic check. Under DDP the ranks agree (one
    ``all_reduce``) so all of them stop. Weights already scanned since the last change
    (an epoch end right after a ``param_interval`` check, or the epoch-end checkpoint right
    after the epoch-end check) are not scanned again: the next training iteration or a
    validation (which may move a momentum encoder or a queue with ``official_val``)
    invalidates the scan.

    Args:
        loss_policy: ``'stop'`` or ``'skip'``.
        max_consecutive_skips: with ``'skip'``, stop after this many skipped steps of one
            optimizer in a row.
        check_params: check the weights before training, every ``param_interval``
            iterations and after each epoch (checkpoints are always checked).
        param_interval: iterations between weight checks during an epoch (one
            ``isfinite`` per tensor and one host sync); 0 checks at epoch ends only.
    """

    priority = 'ABOVE_NORMAL'
    _INFO_KEY = 'nonfinite_skipped_steps'

    def __init__(self, loss_policy: str = 'stop', max_consecutive_skips: int = 10,
                 check_params: bool = True, param_interval: int = 50) -> None:
        if param_interval < 0:
            raise ValueError(f'{_KEY}.param_interval must be >= 0, got {param_interval}.')
        # validates both keys now, not after the first epoch
        self._guard = NonFiniteGuard(loss_policy, max_consecutive_skips, hook_key=_KEY)
        self.loss_policy = loss_policy
        self.max_consecutive_skips = max_consecutive_skips
        self.check_params = check_params
        self.param_interval = int(param_interval)
        self._base = 0  # skipped steps of the run before a resume
        self._epoch_start = 0
        self._work_dir: Optional[str] = None
        self._scanned = False  # the weights are unchanged since they were last scanned

    @property
    def skipped_steps(self) -> int:
        """Optimizer steps skipped in the whole run (including before a resume)."""
        return self._base + self._guard.skipped

    # ------------------------------------------------------------------ losses
    def before_train(self, runner) -> None:
        """Install the loss guard; refuse what cannot work; check the starting weights."""
        self._work_dir = runner.work_dir
        self._guard.work_dir = runner.work_dir
        model = unwrap(runner.model)
        if isinstance(model, NonFiniteLossCheckMixin):
            model.nonfinite_guard = self._guard
        else:
            runner.logger.warning(
                f'NonFiniteCheckHook: {type(model).__name__} does not check its losses '
                '(it lacks dira_mm.models.utils.NonFiniteLossCheckMixin); only its weights '
                f'are checked, and {_KEY}.loss_policy has no effect.')
        if (self.loss_policy == 'skip' and isinstance(runner.model, MMDistributedDataParallel)
                and type(runner.model).train_step is MMDistributedDataParallel.train_step):
            raise ValueError(
                f"{_KEY}.loss_policy='skip' cannot skip steps under "
                "MMDistributedDataParallel, whose train_step always updates; set "
                "model_wrapper_cfg=dict(type='MMSeparateDistributedDataParallel') or use "
                "loss_policy='stop'.")
        self._base = int(runner.message_hub.get_info(self._INFO_KEY, 0) or 0)
        self._epoch_start = self.skipped_steps
        if self.check_params:
            self._check_model(runner, 'before training (the loaded or initial weights)')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """Keep the skip count in the logs and the checkpoints (message hub)."""
        if self.loss_policy == 'skip':
            runner.message_hub.update_info(self._INFO_KEY, self.skipped_steps)
            runner.message_hub.update_scalar('train/skipped_steps', self.skipped_steps)
        if (self.check_params and self.param_interval
                and self.every_n_train_iters(runner, self.param_interval)):
            self._check_model(runner, f'at epoch {runner.epoch + 1}, iteration '
                                      f'{runner.iter + 1}')

    # ------------------------------------------------------------------ weights
    def after_train_epoch(self, runner) -> None:
        """Report the epoch's skipped steps; check the weights before they are saved."""
        skipped = self.skipped_steps - self._epoch_start
        if skipped:
            runner.logger.warning(
                f'NonFiniteCheckHook: {skipped} optimizer step(s) skipped for non-finite '
                f'losses in epoch {runner.epoch + 1} ({self.skipped_steps} in the run).')
        self._epoch_start = self.skipped_steps
        if self.check_params and not self._scanned:
            self._check_model(runner, f'after epoch {runner.epoch + 1} '
                                      f'(iteration {runner.iter})')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        """The step about to run changes the weights: the last scan no longer holds."""
        self._scanned = False

    def before_val_epoch(self, runner) -> None:
        """Validation may change buffers (queues, momentum copies): scan again after it."""
        self._scanned = False

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Refuse to write a checkpoint with a non-finite weight or optimizer state."""
        meta = checkpoint.get('meta') or {}
        when = (f'in the checkpoint of epoch {meta.get("epoch", "?")}, iteration '
                f'{meta.get("iter", "?")}, before it was written')
        bad = None
        if not self._scanned:
            bad = find_nonfinite(named_tensors(checkpoint.get('state_dict', {})))
        if bad is None:
            bad = find_nonfinite(named_tensors(checkpoint.get('optimizer', {}), 'optimizer'))
        if bad is not None:
            self._fail(runner, bad, when)

    def _check_model(self, runner, when: str) -> None:
        model = unwrap(runner.model)
        # parameters and buffers themselves: no state-dict rebuild every param_interval
        bad = find_nonfinite(list(model.named_parameters()) + list(model.named_buffers()))
        if get_world_size() > 1:  # buffers may differ across ranks: stop all of them
            flag = torch.tensor([float(bad is not None)])
            all_reduce(flag, op='max')
            if bad is None and flag.item() > 0:
                bad = 'a tensor on another rank'
        if bad is not None:
            self._fail(runner, bad, when)
        self._scanned = True

    def _fail(self, runner, bad: str, when: str) -> None:
        raise NonFiniteWeightsError(
            f'NonFiniteCheckHook: non-finite weights {when}: {bad}. The run is stopped so '
            f'no non-finite checkpoint is written; the checkpoints already in '
            f'{self._work_dir or runner.work_dir} were checked finite when saved. Resume '
            'from the last one (--resume) with a lower learning rate '
            '(optim_wrapper[.generator/.discriminator].optimizer.lr) or gradient clipping '
            '(optim_wrapper[...].clip_grad=dict(max_norm=1.0)).')
