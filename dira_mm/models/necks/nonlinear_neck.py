"""MLP projectors and predictors of Barlow Twins, SimSiam and BYOL."""
from typing import List, Optional, Sequence, Union

from mmengine.model import BaseModule
from torch import Tensor, nn

from dira_mm.registry import NECKS
from ..utils.spatial import adaptive_avg_pool_cls, check_input_dims, check_spatial_dims


@NECKS.register_module()
class NonLinearNeck(BaseModule):
    """[GAP] -> (Linear -> BN -> ReLU) x (num_layers - 1) -> Linear [-> BN].

    One configurable MLP covers the published heads:

    - Barlow Twins projector: ``2048-8192-8192-8192``, ``num_layers=3``,
      ``with_bias=False``, ``with_last_bias=False``, ``with_last_bn=False``.
    - SimSiam projector: ``2048-2048-2048-2048``, ``num_layers=3``, ``with_bias=False``,
      ``with_last_bias=False``, ``with_last_bn=True``, ``last_bn_affine=False`` (the
      official output Linear's bias is frozen and followed by a BN: it has no effect).
    - SimSiam predictor: ``2048-512-2048``, ``num_layers=2``, ``with_bias=False``,
      ``with_last_bias=True``, ``with_avg_pool=False``.
    - BYOL projector/predictor: ``-4096-256``, ``num_layers=2``, ``with_bias=True``.

    Args:
        in_channels: input width (2048 for a ResNet-50's last stage).
        hid_channels: hidden width.
        out_channels: output width.
        num_layers: number of Linear layers (>= 1).
        with_bias: bias in the hidden Linear layers.
        with_last_bias: bias in the output Linear layer.
        with_last_bn: BatchNorm after the output layer.
        last_bn_affine: learnable scale/shift of that BatchNorm.
        with_avg_pool: global-average-pool a feature map (the last of a list of stages)
            first; False for an embedding input (predictors). An ``(N, C)`` input is
            taken as already pooled.
        spatial_dims: spatial axes of the feature map (2 or 3), pooled with
            ``AdaptiveAvgPool2d`` / ``AdaptiveAvgPool3d``.
    """

    def __init__(self,
                 in_channels: int = 2048,
                 hid_channels: int = 2048,
                 out_channels: int = 2048,
                 num_layers: int = 2,
                 with_bias: bool = False,
                 with_last_bias: bool = True,
                 with_last_bn: bool = False,
                 last_bn_affine: bool = True,
                 with_avg_pool: bool = True,
                 spatial_dims: int = 2,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_layers < 1:
            raise ValueError(f'NonLinearNeck: num_layers must be >= 1, got {num_layers}')
        self.with_avg_pool = with_avg_pool
        self.spatial_dims = check_spatial_dims(spatial_dims, 'NonLinearNeck: neck.spatial_dims')
        self.avgpool = adaptive_avg_pool_cls(self.spatial_dims)(1) if with_avg_pool else None
        layers: List[nn.Module] = []
        width = in_channels
        for _ in range(num_layers - 1):
            layers += [nn.Linear(width, hid_channels, bias=with_bias),
                       nn.BatchNorm1d(hid_channels), nn.ReLU(inplace=True)]
            width = hid_channels
        layers.append(nn.Linear(width, out_channels, bias=with_last_bias))
        if with_last_bn:
            layers.append(nn.BatchNorm1d(out_channels, affine=last_bn_affine))
        self.mlp = nn.Sequential(*layers)

    def forward(self, features: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Embed the deepest feature map (a list of stages or one tensor)."""
        x = features[-1] if isinstance(features, (list, tuple)) else features
        if self.with_avg_pool and x.dim() > 2:
            check_input_dims(x, self.spatial_dims, 'NonLinearNeck', 'model...neck.spatial_dims')
            x = self.avgpool(x)
        return self.mlp(x.flatten(1))
