"""MoCo-v2 (Chen et al., 2020), the discriminative half of the official DiRA."""
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dira_mm.registry import ALGORITHMS
from ..utils import batch_shuffle_ddp, batch_unshuffle_ddp, concat_all_gather
from ..utils.momentum_target import MomentumTargetMixin
from ..utils.float32 import run_in_float32
from .base import BaseSelfSupervisor


@run_in_float32
def _similarities(q: Tensor, k: Tensor, queue: Tensor) -> Tuple[Tensor, Tensor]:
    """Cosine similarities ``(N, 1)`` of the queries to their keys and ``(N, K)`` to the
    queue, in float32 also under AMP: the head divides them by a temperature of 0.2, which
    would amplify bfloat16 rounding (a 1.6 % loss gap to float32 at the first step)."""
    q = F.normalize(q, dim=1)
    pos = torch.einsum('nc,nc->n', q, k).unsqueeze(-1)
    neg = torch.einsum('nc,ck->nk', q, queue)
    return pos, neg


@ALGORITHMS.register_module()
class MoCo(MomentumTargetMixin, BaseSelfSupervisor):
    """Momentum contrast with a queue of negatives.

    The query view (0) goes through the online encoder and neck; the key view (1)
    through a momentum copy of the **encoder and neck only**: the official DiRA code
    copies the whole U-Net and runs its decoder on the keys for nothing (~25 % of the
    forward FLOPs); the keys never use it, so results are unchanged.

    The momentum copy (:class:`~dira_mm.models.utils.MomentumTargetMixin`, shared with
    BYOL) is updated by ``MomentumUpdateHook`` after each optimizer step (equivalent to the
    official update at the start of the next forward).

    Args:
        backbone: encoder-decoder config (``ResNetUNet``).
        neck: projector config (``MoCoV2Neck``: 2048-2048-128).
        head: ``ContrastiveHead`` config (temperature 0.2 in DiRA).
        queue_len: number of negative keys (official 65536). Any length works: keys
            wrap around the end of the queue.
        feat_dim: embedding size (official 128).
        momentum: EMA momentum of the key encoder (official 0.999).
        shuffle_bn: shuffle the key batch across processes (MoCo's shuffle-BN). With a
            single process it is a no-op. The alternative is global BN: set
            ``shuffle_bn=False, global_bn=True`` (CPU and GPU), or ``shuffle_bn=False``
            with mmengine's ``sync_bn='torch'`` (GPU only).
        global_bn: see :class:`BaseSelfSupervisor`.
    """

    online_views = (0, )

    def __init__(self,
                 backbone: Union[dict, nn.Module],
                 neck: Union[dict, nn.Module],
                 head: Union[dict, nn.Module],
                 queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.999,
                 shuffle_bn: bool = True,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 global_bn: Optional[bool] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(backbone, neck, head, data_preprocessor, global_bn=global_bn,
                         init_cfg=init_cfg)
        if queue_len < 1:
            raise ValueError(f'MoCo: queue_len must be >= 1, got {queue_len}')
        self.queue_len = int(queue_len)
        self.shuffle_bn = shuffle_bn
        self.init_momentum_target(momentum)
        self.register_buffer('queue', F.normalize(torch.randn(feat_dim, queue_len), dim=0))
        self.register_buffer('queue_ptr', torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def encode_keys(self, im_k: Tensor) -> Tensor:
        """L2-normalised keys from the momentum encoder (shuffle-BN across processes)."""
        if self.shuffle_bn:
            im_k, idx_unshuffle = batch_shuffle_ddp(im_k)
        k = F.normalize(self.momentum_projection(im_k), dim=1)
        if self.shuffle_bn:
            k = batch_unshuffle_ddp(k, idx_unshuffle)
        return k

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys: Tensor) -> None:
        keys = concat_all_gather(keys)
        ptr = int(self.queue_ptr.item())
        idx = (ptr + torch.arange(keys.shape[0], device=keys.device)) % self.queue_len
        self.queue[:, idx] = keys.T.to(self.queue.dtype)
        self.queue_ptr[0] = (ptr + keys.shape[0]) % self.queue_len

    def discriminative_loss(self, inputs: List[Tensor], feats: Dict[int, List[Tensor]],
                            data_samples: Optional[list] = None,
                            update_state: bool = True) -> Dict[str, Tensor]:
        """InfoNCE of query view 0 against key view 1 and the queue."""
        q = self.neck(feats[0])
        k = self.encode_keys(inputs[1])
        pos, neg = _similarities(q, k, self.queue.clone().detach())
        loss = self.head.loss(pos, neg)
        if update_state:
            self._dequeue_and_enqueue(k)
        return dict(loss_dis=loss)
