"""InfoNCE head: cross-entropy over one positive and the queued negatives."""
import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from dira_mm.registry import HEADS
from ..utils.float32 import run_in_float32


@HEADS.register_module()
class ContrastiveHead(BaseModule):
    """InfoNCE loss ``CE([pos, neg] / T, 0)``, as MoCo computes it.

    Args:
        temperature: softmax temperature (DiRA official 0.2; MoCo-v1 0.07).
    """

    def __init__(self, temperature: float = 0.2) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'ContrastiveHead: temperature must be > 0, got {temperature}')
        self.temperature = temperature

    def logits(self, pos: Tensor, neg: Tensor) -> Tensor:
        """Logits ``(N, 1 + K)``: the positive similarity first."""
        return torch.cat([pos, neg], dim=1) / self.temperature

    @run_in_float32
    def loss(self, pos: Tensor, neg: Tensor) -> Tensor:
        """Mean InfoNCE of ``pos`` (N, 1) against ``neg`` (N, K)."""
        logits = self.logits(pos, neg)
        labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        return F.cross_entropy(logits, labels)
