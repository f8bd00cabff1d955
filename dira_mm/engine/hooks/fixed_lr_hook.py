"""Hold the learning rate of chosen parameter groups (SimSiam's fixed predictor lr)."""
from typing import Iterator, Optional

from mmengine.hooks import Hook
from mmengine.optim import OptimWrapperDict

from dira_mm.registry import HOOKS


@HOOKS.register_module()
class FixedLRHook(Hook):
    """Keeps every parameter group flagged ``fix_lr=True`` at a constant learning rate.

    SimSiam trains its predictor at the base learning rate without the cosine decay
    (``--fix-pred-lr``). Flag the groups with mmengine's ``paramwise_cfg``, e.g.
    ``paramwise_cfg=dict(custom_keys={'predictor': dict(fix_lr=True)})``; the schedulers
    change every group, and this hook puts the flagged ones back before each iteration.
    Works with one optimizer wrapper and with an ``OptimWrapperDict`` (DiRA).

    Args:
        lr: the fixed learning rate; None uses each group's initial learning rate.
    """

    priority = 'LOW'  # after ParamSchedulerHook

    def __init__(self, lr: Optional[float] = None) -> None:
        if lr is not None and lr <= 0:
            raise ValueError(f'FixedLRHook: lr must be > 0, got {lr}')
        self.lr = lr

    @staticmethod
    def _groups(runner) -> Iterator[dict]:
        wrapper = runner.optim_wrapper
        wrappers = wrapper.values() if isinstance(wrapper, OptimWrapperDict) else [wrapper]
        for w in wrappers:
            for group in w.optimizer.param_groups:
                if group.get('fix_lr', False):
                    yield group

    def before_train(self, runner) -> None:
        if not any(True for _ in self._groups(runner)):
            raise ValueError('FixedLRHook: no parameter group has fix_lr=True; add '
                             "paramwise_cfg=dict(custom_keys={'predictor': dict(fix_lr=True)})"
                             ' to the optim_wrapper (or its generator entry), or remove the hook.')
        for group in self._groups(runner):
            group.setdefault('fixed_lr', self.lr if self.lr is not None
                             else group.get('initial_lr', group['lr']))
        self._apply(runner)

    def _apply(self, runner) -> None:
        for group in self._groups(runner):
            group['lr'] = group['fixed_lr']

    def before_train_epoch(self, runner) -> None:
        self._apply(runner)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._apply(runner)
