"""Staged DiRA training: warm-up without the adversary, then all three losses."""
from typing import Optional

from mmengine.hooks import Hook

from dira_mm.registry import HOOKS
from dira_mm.models.utils import unwrap


@HOOKS.register_module()
class DiRAStageHook(Hook):
    """Turns the adversarial term on at a given epoch (or iteration).

    The paper trains discriminative + restorative first (warm-up, ``dir``) and then all
    three (``dira``). The official code does it in two runs; this hook does it inside one
    run. The stage is a function of the epoch/iteration, so it resumes exactly.

    Checkpoints record the stage they were trained in (``meta['adversarial_enabled']``);
    loading one (``tools/test.py``, ``load_from``) restores it, so a warm-up (``dir``)
    checkpoint is evaluated without the ``loss_adv`` term it never trained with. Older
    checkpoints without the key get the stage of their last trained epoch/iteration.

    Args:
        adversarial_begin: first epoch (``by_epoch=True``) or iteration with the
            adversarial loss and discriminator steps.
        by_epoch: count ``adversarial_begin`` in epochs or iterations.
    """

    priority = 'NORMAL'

    def __init__(self, adversarial_begin: int, by_epoch: bool = True) -> None:
        if adversarial_begin < 0:
            raise ValueError('DiRAStageHook: adversarial_begin must be >= 0')
        self.adversarial_begin = adversarial_begin
        self.by_epoch = by_epoch

    def _set(self, runner) -> None:
        model = unwrap(runner.model)
        if not getattr(model, 'with_adversarial', False):
            raise TypeError('DiRAStageHook needs a DiRA model with model.adversarial set.')
        now = runner.epoch if self.by_epoch else runner.iter
        on = now >= self.adversarial_begin
        if on != model.adversarial_enabled:
            runner.logger.info(
                f'DiRA stage: adversarial {"on" if on else "off"} at '
                f'{"epoch" if self.by_epoch else "iter"} {now}')
        model.adversarial_enabled = on
        runner.message_hub.update_scalar('train/adversarial', float(on))

    def before_train(self, runner) -> None:
        self._set(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = unwrap(runner.model)
        checkpoint.setdefault('meta', {})['adversarial_enabled'] = bool(
            getattr(model, 'adversarial_enabled', True))

    def checkpoint_stage(self, meta: dict) -> Optional[bool]:
        """The stage a checkpoint was trained in: its recorded flag, else that of its last
        trained epoch (iteration); None when the meta has neither."""
        if 'adversarial_enabled' in meta:
            return bool(meta['adversarial_enabled'])
        done = meta.get('epoch' if self.by_epoch else 'iter')
        if done is None:
            return None
        return max(int(done) - 1, 0) >= self.adversarial_begin

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # training sets the stage again in before_train; evaluation keeps this one
        model = unwrap(runner.model)
        if not getattr(model, 'with_adversarial', False):
            return
        on = self.checkpoint_stage(checkpoint.get('meta') or {})
        if on is None:
            return
        if on != model.adversarial_enabled:
            runner.logger.info(f'DiRA stage of the loaded checkpoint: adversarial '
                               f'{"on" if on else "off (warm-up, no loss_adv)"}')
        model.adversarial_enabled = on

    def before_train_epoch(self, runner) -> None:
        self._set(runner)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if not self.by_epoch:
            self._set(runner)
