"""Predictor + regression loss of SimSiam and BYOL."""
from typing import Optional

from mmengine.model import BaseModule
from torch import Tensor

from dira_mm.registry import HEADS, LOSSES, NECKS


@HEADS.register_module()
class LatentPredictHead(BaseModule):
    """``loss(predictor(z_online), stopgrad(z_target))``.

    Args:
        predictor: MLP config (``NonLinearNeck`` with ``with_avg_pool=False``).
        loss: ``CosineSimilarityLoss`` config (SimSiam ``shift=0, scale=1``; BYOL
            ``shift=2, scale=2``).
    """

    def __init__(self, predictor: dict, loss: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.predictor = NECKS.build(predictor)
        self.criterion = LOSSES.build(loss or dict(type='CosineSimilarityLoss'))

    def loss(self, online: Tensor, target: Tensor) -> Tensor:
        """Regress the prediction of ``online`` onto the detached ``target``."""
        return self.criterion(self.predictor(online), target.detach())
