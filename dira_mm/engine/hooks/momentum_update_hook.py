"""EMA update of the key/target encoder after every optimizer step."""
import math
from typing import Optional

from mmengine.hooks import Hook

from dira_mm.registry import HOOKS
from dira_mm.models.utils import get_ssl_algorithm


@HOOKS.register_module()
class MomentumUpdateHook(Hook):
    """Sets the momentum and updates the momentum encoder after each train iteration.

    Constant momentum (MoCo-v2, official DiRA: 0.999) or, with ``end_momentum``, BYOL's
    cosine increase ``m_t = m_end - (m_end - m_0) (cos(pi t / T) + 1) / 2`` over the
    training iterations ``T``. Updating after the step is the same as the official
    update at the start of the next forward.

    Args:
        momentum: base momentum; None keeps the algorithm's configured value.
        end_momentum: final momentum of a cosine schedule; None for constant.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, momentum: Optional[float] = None,
                 end_momentum: Optional[float] = None) -> None:
        for name, m in (('momentum', momentum), ('end_momentum', end_momentum)):
            if m is not None and not 0.0 <= m <= 1.0:
                raise ValueError(f'MomentumUpdateHook: {name} must be in [0, 1], got {m}')
        self.momentum = momentum
        self.end_momentum = end_momentum
        self._base: Optional[float] = None

    def current_momentum(self, cur_iter: int, max_iters: int) -> float:
        """Momentum used for the update after iteration ``cur_iter`` (0-based)."""
        base = self._base
        if self.end_momentum is None:
            return base
        t = min(cur_iter, max_iters) / max(max_iters, 1)
        return self.end_momentum - (self.end_momentum - base) * (math.cos(math.pi * t) + 1) / 2

    def before_train(self, runner) -> None:
        algo = get_ssl_algorithm(runner.model)
        if not hasattr(algo, 'momentum_encoder'):
            raise TypeError(f'MomentumUpdateHook: {type(algo).__name__} has no momentum '
                            'encoder; remove the hook from custom_hooks.')
        self._base = self.momentum if self.momentum is not None else algo.momentum

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        algo = get_ssl_algorithm(runner.model)
        m = self.current_momentum(runner.iter, runner.max_iters)
        algo.momentum_encoder.momentum = m
        algo.momentum_update(m)
        runner.message_hub.update_scalar('train/momentum', m)
