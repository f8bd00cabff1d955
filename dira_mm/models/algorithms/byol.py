"""BYOL (Grill et al., NeurIPS 2020)."""
from typing import Dict, List, Optional, Union

from torch import Tensor, nn

from dira_mm.registry import ALGORITHMS
from ..utils.momentum_target import MomentumTargetMixin
from .base import BaseSelfSupervisor


@ALGORITHMS.register_module()
class BYOL(MomentumTargetMixin, BaseSelfSupervisor):
    """Bootstrap your own latent: predict a slow-moving target network's projection.

    Online: encoder -> projector (``neck``) -> predictor (in ``LatentPredictHead``).
    Target: an EMA copy of encoder + projector
    (:class:`~dira_mm.models.utils.MomentumTargetMixin`, shared with MoCo; the decoder of a
    U-Net backbone is not copied: the target never restores). The symmetric loss is
    ``L(q1, z2') + L(q2, z1')`` with ``L = 2 - 2 cos`` (paper eq. 2). The momentum
    follows the published cosine schedule from ``base_momentum`` to 1 through
    ``MomentumUpdateHook(end_momentum=1.0)``.

    Args:
        backbone: encoder-decoder config (``ResNetUNet``).
        neck: projector config (``NonLinearNeck`` 2048-4096-256).
        head: ``LatentPredictHead`` config (predictor 256-4096-256,
            ``CosineSimilarityLoss(shift=2, scale=2)``).
        base_momentum: initial EMA momentum (published 0.996).
        global_bn: BatchNorm statistics over the global batch (the published
            cross-replica BN: True).
    """

    online_views = (0, 1)
    default_global_bn = True

    def __init__(self,
                 backbone: Union[dict, nn.Module],
                 neck: Union[dict, nn.Module],
                 head: Union[dict, nn.Module],
                 base_momentum: float = 0.996,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 global_bn: Optional[bool] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(backbone, neck, head, data_preprocessor, global_bn=global_bn,
                         init_cfg=init_cfg)
        if not 0.0 <= base_momentum <= 1.0:
            raise ValueError(f'BYOL: base_momentum must be in [0, 1], got {base_momentum}')
        self.init_momentum_target(base_momentum)

    def discriminative_loss(self, inputs: List[Tensor], feats: Dict[int, List[Tensor]],
                            data_samples: Optional[list] = None,
                            update_state: bool = True) -> Dict[str, Tensor]:
        """Symmetric BYOL loss of views 0 and 1."""
        z1, z2 = self.neck(feats[0]), self.neck(feats[1])
        t1, t2 = self.momentum_projection(inputs[0]), self.momentum_projection(inputs[1])
        loss = self.head.loss(z1, t2) + self.head.loss(z2, t1)
        return dict(loss_dis=loss)
