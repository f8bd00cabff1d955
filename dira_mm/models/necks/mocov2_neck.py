"""MoCo-v2 projection head: global average pool of the last stage, then an MLP."""
from typing import List, Optional, Sequence, Union

from mmengine.model import BaseModule
from torch import Tensor, nn

from dira_mm.registry import NECKS
from ..utils.spatial import adaptive_avg_pool_cls, check_input_dims, check_spatial_dims


@NECKS.register_module()
class MoCoV2Neck(BaseModule):
    """GAP(last encoder stage) -> Linear -> ReLU -> Linear (MoCo-v2's ``--mlp`` head).

    The official DiRA head is ``Linear(2048, 2048), ReLU, Linear(2048, 128)`` with
    PyTorch's default init and no BatchNorm.

    Args:
        in_channels: channels of the deepest encoder stage (2048 for ResNet-50).
        hid_channels: hidden width (official 2048).
        out_channels: embedding size (official 128).
        with_avg_pool: pool the feature map globally before the MLP.
        spatial_dims: spatial axes of the feature map (2: ``(N, C, H, W)``, 3:
            ``(N, C, D, H, W)``); pooled with ``AdaptiveAvgPool2d`` / ``AdaptiveAvgPool3d``.
    """

    def __init__(self,
                 in_channels: int = 2048,
                 hid_channels: int = 2048,
                 out_channels: int = 128,
                 with_avg_pool: bool = True,
                 spatial_dims: int = 2,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.with_avg_pool = with_avg_pool
        self.spatial_dims = check_spatial_dims(spatial_dims, 'MoCoV2Neck: neck.spatial_dims')
        self.avgpool = adaptive_avg_pool_cls(self.spatial_dims)(1)
        self.mlp = nn.Sequential(
            nn.Linear(in_channels, hid_channels), nn.ReLU(inplace=True),
            nn.Linear(hid_channels, out_channels))

    def forward(self, features: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Embed the deepest feature map (a list of stages or one tensor)."""
        x = features[-1] if isinstance(features, (list, tuple)) else features
        if self.with_avg_pool:
            check_input_dims(x, self.spatial_dims, 'MoCoV2Neck', 'model...neck.spatial_dims')
            x = self.avgpool(x)
        return self.mlp(x.flatten(1))
