"""Restorative head: the loss between a reconstruction and its target."""
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from dira_mm.registry import HEADS
from ..utils.float32 import run_in_float32


@HEADS.register_module()
class RestorativeHead(BaseModule):
    """Pixel loss of the U-Net reconstruction against the undistorted view.

    The decoder itself lives in the backbone (a U-Net), so that its state dict is the
    smp U-Net users load downstream; this head only holds the criterion.

    Args:
        criterion: ``'mse'`` (official) or ``'l1'``.
    """

    def __init__(self, criterion: str = 'mse') -> None:
        super().__init__()
        if criterion not in ('mse', 'l1'):
            raise ValueError(f"RestorativeHead: criterion must be 'mse' or 'l1', got {criterion!r}")
        self.criterion = criterion

    @run_in_float32
    def loss(self, reconstruction: Tensor, target: Tensor) -> Tensor:
        """Mean pixel loss over N x C x H x W (in float32, also under AMP)."""
        if reconstruction.shape != target.shape:
            raise ValueError(
                f'RestorativeHead: reconstruction {tuple(reconstruction.shape)} and target '
                f'{tuple(target.shape)} differ; the backbone out_channels must match the '
                'target channels (1 for gray images).')
        if self.criterion == 'mse':
            return F.mse_loss(reconstruction, target)
        return F.l1_loss(reconstruction, target)
