"""BYOL (Grill et al., NeurIPS 2020)."""
from typing import Dict, List, Optional, Union

import torch
from torch import Tensor, nn

from dira_mm.registry import ALGORITHMS
from ..utils import MomentumEncoder
from .base import BaseSelfSupervisor


@ALGORITHMS.register_module()
class BYOL(BaseSelfSupervisor):
    """Bootstrap your own latent: predict a slow-moving target network's projection.

    Online: encoder -> projector (``neck``) -> predictor (in ``LatentPredictHead``).
    Target: an EMA copy of encoder + projector (``MomentumEncoder``; the decoder of a
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
        self.momentum_encoder = MomentumEncoder(self._target_source(), base_momentum)

    def _target_source(self) -> nn.ModuleDict:
        """The online modules the target network mirrors (encoder + projector)."""
        return nn.ModuleDict(dict(encoder=self.backbone.encoder, neck=self.neck))

    def init_weights(self) -> None:
        """Initialise, then make the target network equal to the online one."""
        super().init_weights()
        self.momentum_encoder.copy_from(self._target_source())

    @property
    def momentum(self) -> float:
        return self.momentum_encoder.momentum

    def momentum_update(self, momentum: Optional[float] = None) -> None:
        """``t = m t + (1 - m) o`` over the encoder and projector parameters."""
        self.momentum_encoder.update(self._target_source(), momentum)

    @torch.no_grad()
    def target_projection(self, x: Tensor) -> Tensor:
        """Projection of ``x`` by the target network."""
        net = self.momentum_encoder.module
        return net['neck'](net['encoder'](x))

    def discriminative_loss(self, inputs: List[Tensor], feats: Dict[int, List[Tensor]],
                            data_samples: Optional[list] = None,
                            update_state: bool = True) -> Dict[str, Tensor]:
        """Symmetric BYOL loss of views 0 and 1."""
        z1, z2 = self.neck(feats[0]), self.neck(feats[1])
        t1, t2 = self.target_projection(inputs[0]), self.target_projection(inputs[1])
        loss = self.head.loss(z1, t2) + self.head.loss(z2, t1)
        return dict(loss_dis=loss)
