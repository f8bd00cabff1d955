"""Barlow Twins' redundancy-reduction loss on a cross-correlation matrix."""
from mmengine.model import BaseModule
from torch import Tensor

from dira_mm.registry import LOSSES
from ..utils.float32 import run_in_float32


@LOSSES.register_module()
class CrossCorrelationLoss(BaseModule):
    """``sum_i (1 - C_ii)^2 + lambd * sum_{i != j} C_ij^2`` (Zbontar et al., 2021).

    Args:
        lambd: weight of the off-diagonal (redundancy) term; 5.1e-3 in the official code
            (the paper states 5e-3).
    """

    def __init__(self, lambd: float = 5.1e-3) -> None:
        super().__init__()
        if lambd < 0:
            raise ValueError(f'CrossCorrelationLoss: lambd must be >= 0, got {lambd}')
        self.lambd = float(lambd)

    @run_in_float32
    def forward(self, c: Tensor) -> Tensor:
        """Loss of a square (D, D) cross-correlation matrix."""
        if c.dim() != 2 or c.shape[0] != c.shape[1]:
            raise ValueError(f'CrossCorrelationLoss: expected a square matrix, got {tuple(c.shape)}')
        diag = c.diagonal()
        on_diag = (diag - 1).pow(2).sum()
        off_diag = c.pow(2).sum() - diag.pow(2).sum()
        return on_diag + self.lambd * off_diag
