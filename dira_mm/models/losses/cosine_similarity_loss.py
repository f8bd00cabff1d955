"""Negative-cosine regression loss of SimSiam and BYOL."""
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from dira_mm.registry import LOSSES
from ..utils.float32 import run_in_float32


@LOSSES.register_module()
class CosineSimilarityLoss(BaseModule):
    """``mean_n(shift - scale * cos(pred_n, target_n))``, the target detached.

    SimSiam: ``shift=0, scale=1`` (``-cos``); BYOL: ``shift=2, scale=2``
    (``||p/|p| - z/|z|||^2 = 2 - 2 cos``).
    """

    def __init__(self, shift: float = 0.0, scale: float = 1.0) -> None:
        super().__init__()
        self.shift = float(shift)
        self.scale = float(scale)

    @run_in_float32
    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Mean loss over the batch (float32 under AMP); gradient flows into ``pred`` only."""
        cos = F.cosine_similarity(pred, target.detach(), dim=1)
        return (self.shift - self.scale * cos).mean()
