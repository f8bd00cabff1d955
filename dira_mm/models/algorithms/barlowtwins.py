"""Barlow Twins (Zbontar et al., ICML 2021)."""
from typing import Dict, List, Optional

from torch import Tensor

from dira_mm.registry import ALGORITHMS
from .base import BaseSelfSupervisor


@ALGORITHMS.register_module()
class BarlowTwins(BaseSelfSupervisor):
    """Redundancy reduction between the embeddings of two views.

    Both views go through the same encoder and projector (``NonLinearNeck``
    2048-8192-8192-8192); ``CrossCorrelationHead`` computes the global-batch
    cross-correlation and the loss. The official code converts the whole network to
    ``SyncBatchNorm``: ``global_bn=True`` (the default here) does the same on any backend.

    Args:
        backbone: encoder-decoder config (``ResNetUNet``).
        neck: projector config.
        head: ``CrossCorrelationHead`` config.
        global_bn: BatchNorm statistics over the global batch (default True, as the
            official SyncBatchNorm).
    """

    online_views = (0, 1)
    default_global_bn = True

    def discriminative_loss(self, inputs: List[Tensor], feats: Dict[int, List[Tensor]],
                            data_samples: Optional[list] = None,
                            update_state: bool = True) -> Dict[str, Tensor]:
        """Cross-correlation loss of the projections of views 0 and 1."""
        z1 = self.neck(feats[0])
        z2 = self.neck(feats[1])
        return dict(loss_dis=self.head.loss(z1, z2))
