"""Staged DiRA training: warm-up without the adversary, then all three losses."""
from mmengine.hooks import Hook

from dira_mm.registry import HOOKS
from dira_mm.models.utils import unwrap


@HOOKS.register_module()
class DiRAStageHook(Hook):
    """Turns the adversarial term on at a given epoch (or iteration).

    The paper trains discriminative + restorative first (warm-up, ``dir``) and then all
    three (``dira``). The official code does it in two runs; this hook does it inside one
    run. The stage is a function of the epoch/iteration, so it resumes exactly.

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

    def before_train_epoch(self, runner) -> None:
        self._set(runner)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if not self.by_epoch:
            self._set(runner)
