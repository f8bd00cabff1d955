"""The patch discriminator of the official DiRA code, in 2-D or 3-D."""
from typing import Sequence, Tuple

from mmengine.model import BaseModule
from torch import Tensor, nn

from dira_mm.registry import DISCRIMINATORS
from ..utils.spatial import check_input_dims, check_spatial_dims, conv_cls, instance_norm_cls


@DISCRIMINATORS.register_module()
class PatchDiscriminator(BaseModule):
    """Conv 64(s2) -> 128(s2, IN) -> 256(s2, IN) -> 512(s1, IN) -> 1(s1); LeakyReLU 0.2.

    All kernels are 3 wide per axis with padding 1; InstanceNorm has no affine parameters;
    there is no sigmoid (least-squares GAN). Conv weights are drawn from N(0, 0.02) as the
    official ``weights_init_normal`` does (biases keep PyTorch's default). The output is a
    map of patch scores whose size follows from the input (224 -> 28 x 28, the official
    hard-coded shape; 64 -> 8 x 8).

    ``spatial_dims=3`` is the same design with ``Conv3d`` / ``InstanceNorm3d`` (our design
    for 3-D DiRA; the official code has no 3-D adversary): a 64 x 64 x 32 cube gives an
    8 x 8 x 4 patch map.

    Args:
        in_channels: channels of the judged images (1 for gray restorations).
        channels: widths of the four hidden convolutions.
        strides: their strides.
        init_std: standard deviation of the normal init of the conv weights.
        spatial_dims: 2 (images ``(N, C, H, W)``) or 3 (volumes ``(N, C, D, H, W)``).
    """

    def __init__(self,
                 in_channels: int = 1,
                 channels: Sequence[int] = (64, 128, 256, 512),
                 strides: Sequence[int] = (2, 2, 2, 1),
                 init_std: float = 0.02,
                 spatial_dims: int = 2) -> None:
        super().__init__()
        if len(channels) != len(strides):
            raise ValueError('PatchDiscriminator: channels and strides need the same length')
        self.spatial_dims = check_spatial_dims(
            spatial_dims, 'PatchDiscriminator: discriminator.spatial_dims')
        conv, norm = conv_cls(self.spatial_dims), instance_norm_cls(self.spatial_dims)
        layers = []
        prev = int(in_channels)
        for i, (ch, stride) in enumerate(zip(channels, strides)):
            layers.append(conv(prev, ch, 3, stride, 1))
            if i > 0:
                layers.append(norm(ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            prev = ch
        layers.append(conv(prev, 1, 3, 1, 1))
        self.model = nn.Sequential(*layers)
        self.strides = tuple(strides)
        self.init_std = init_std
        self._init_normal()

    def _init_normal(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                nn.init.normal_(m.weight, 0.0, self.init_std)

    def output_shape(self, *sizes: int) -> Tuple[int, ...]:
        """Patch-map size for an input of the given spatial sizes (any number of axes):
        ``output_shape(224, 224) == (28, 28)``, ``output_shape(64, 64, 32) == (8, 8, 4)``."""
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
            sizes = tuple(sizes[0])
        out = []
        for size in sizes:
            for s in self.strides:
                size = (int(size) + 2 - 3) // s + 1
            out.append(size)
        return tuple(out)

    def forward(self, x: Tensor) -> Tensor:
        """Patch scores ``(N, 1, *patch_map)``."""
        check_input_dims(x, self.spatial_dims, 'PatchDiscriminator',
                         'model.adversarial.discriminator.spatial_dims')
        return self.model(x)
