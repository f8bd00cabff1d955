"""Barlow Twins head: global-batch cross-correlation of two embeddings."""
from typing import Optional

import torch
from mmengine import dist
from mmengine.model import BaseModule
from torch import Tensor

from dira_mm.registry import HEADS, LOSSES
from ..utils.float32 import run_in_float32
from ..utils.global_batch_norm import global_batch_norm


@HEADS.register_module()
class CrossCorrelationHead(BaseModule):
    """``C = BN(z1)^T BN(z2) / N_global``, summed over processes, then the loss.

    As in the official Barlow Twins: each embedding is batch-normalised without affine
    parameters over the **global** batch (official: ``SyncBatchNorm``), each process adds
    its share ``BN(z1_r)^T BN(z2_r) / N_global`` and the shares are summed with an
    all-reduce that carries no gradient (the official ``all_reduce`` on ``c``; under DDP
    the averaged gradient is then the global loss's gradient divided by the world size,
    exactly as in the original). One process gives the same ``C`` as the global batch.
    The normalisation always uses the batch's statistics (validation too).

    Args:
        loss: loss on ``C`` (``CrossCorrelationLoss`` with lambd 5.1e-3).
        eps: BN epsilon (torch default 1e-5, as the official).
    """

    def __init__(self, loss: Optional[dict] = None, eps: float = 1e-5,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.criterion = LOSSES.build(loss or dict(type='CrossCorrelationLoss'))
        self.eps = eps

    @run_in_float32
    def cross_correlation(self, z1: Tensor, z2: Tensor) -> Tensor:
        """The global (D, D) cross-correlation matrix of two (N, D) embedding batches
        (in float32 with autocast off: under AMP the ``mm`` would run in half precision)."""
        if z1.shape != z2.shape or z1.dim() != 2:
            raise ValueError('CrossCorrelationHead: expected two (N, D) embeddings of one '
                             f'shape, got {tuple(z1.shape)} and {tuple(z2.shape)}')
        world = dist.get_world_size()
        global_n = z1.shape[0] * world
        if global_n < 2:
            raise ValueError('CrossCorrelationHead: batch normalisation needs a global batch '
                             'of at least 2 samples')
        z1 = global_batch_norm(z1.float(), self.eps)
        z2 = global_batch_norm(z2.float(), self.eps)
        c = z1.T @ z2 / global_n
        if world > 1:
            shares = c.detach().clone()
            dist.all_reduce(shares, op='sum')
            # value of the global sum, gradient of the local share (official semantics)
            c = c + (shares - c.detach())
        return c

    def loss(self, z1: Tensor, z2: Tensor) -> Tensor:
        """Barlow Twins loss of two embedding batches."""
        return self.criterion(self.cross_correlation(z1, z2))
