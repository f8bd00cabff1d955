"""SimSiam (Chen & He, CVPR 2021)."""
from typing import Dict, List, Optional

from torch import Tensor

from dira_mm.registry import ALGORITHMS
from .base import BaseSelfSupervisor


@ALGORITHMS.register_module()
class SimSiam(BaseSelfSupervisor):
    """Siamese regression with a predictor and stop-gradient, no negatives, no EMA.

    ``L = (D(p1, sg(z2)) + D(p2, sg(z1))) / 2`` with ``D = -cos``; ``z`` from the
    projector (``NonLinearNeck`` 2048-2048-2048-2048, last BN without affine), ``p``
    from the predictor inside ``LatentPredictHead`` (2048-512-2048). The published
    recipe keeps the predictor's learning rate fixed: ``paramwise_cfg`` marks the
    predictor with ``fix_lr=True`` and ``FixedLRHook`` holds it.

    Args:
        backbone: encoder-decoder config (``ResNetUNet``).
        neck: projector config.
        head: ``LatentPredictHead`` config with a ``CosineSimilarityLoss``.
        global_bn: BatchNorm statistics over the global batch (default True, as the
            official SyncBatchNorm).
    """

    online_views = (0, 1)
    default_global_bn = True

    def discriminative_loss(self, inputs: List[Tensor], feats: Dict[int, List[Tensor]],
                            data_samples: Optional[list] = None,
                            update_state: bool = True) -> Dict[str, Tensor]:
        """Symmetric negative cosine between predictions and stopped projections."""
        z1 = self.neck(feats[0])
        z2 = self.neck(feats[1])
        loss = 0.5 * (self.head.loss(z1, z2) + self.head.loss(z2, z1))
        return dict(loss_dis=loss)
