"""Restorative head: the loss between a reconstruction and its target."""
from typing import Optional

import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from dira_mm.registry import HEADS
from ..utils.float32 import run_in_float32
from ..utils.spatial import check_input_dims, check_spatial_dims


@HEADS.register_module()
class RestorativeHead(BaseModule):
    """Pixel loss of the U-Net reconstruction against the undistorted view.

    The decoder itself lives in the backbone (a U-Net), so that its state dict is the
    smp U-Net users load downstream; this head only holds the criterion.

    The loss is a mean over every element, the same maths for images and volumes, so the
    head needs no ``spatial_dims``; set it (2 or 3) to have the inputs checked and the
    model's parts compared with it (``DiRA`` refuses parts that disagree).

    Args:
        criterion: ``'mse'`` (official) or ``'l1'``.
        spatial_dims: None (any dimensionality), 2 or 3.
    """

    def __init__(self, criterion: str = 'mse', spatial_dims: Optional[int] = None) -> None:
        super().__init__()
        if criterion not in ('mse', 'l1'):
            raise ValueError(f"RestorativeHead: criterion must be 'mse' or 'l1', got {criterion!r}")
        self.criterion = criterion
        self.spatial_dims = None if spatial_dims is None else check_spatial_dims(
            spatial_dims, 'RestorativeHead: model.restorative.spatial_dims')

    @run_in_float32
    def loss(self, reconstruction: Tensor, target: Tensor) -> Tensor:
        """Mean pixel (voxel) loss over ``N x C x *spatial`` (in float32, also under AMP)."""
        if self.spatial_dims is not None:
            check_input_dims(reconstruction, self.spatial_dims, 'RestorativeHead',
                             'model.restorative.spatial_dims')
        if reconstruction.shape != target.shape:
            raise ValueError(
                f'RestorativeHead: reconstruction {tuple(reconstruction.shape)} and target '
                f'{tuple(target.shape)} differ; the backbone out_channels must match the '
                'target channels (1 for gray images).')
        if self.criterion == 'mse':
            return F.mse_loss(reconstruction, target)
        return F.l1_loss(reconstruction, target)
