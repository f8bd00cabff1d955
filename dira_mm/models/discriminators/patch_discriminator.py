"""The patch discriminator of the official DiRA code."""
from typing import Sequence, Tuple

from mmengine.model import BaseModule
from torch import Tensor, nn

from dira_mm.registry import DISCRIMINATORS


@DISCRIMINATORS.register_module()
class PatchDiscriminator(BaseModule):
    """Conv 64(s2) -> 128(s2, IN) -> 256(s2, IN) -> 512(s1, IN) -> 1(s1); LeakyReLU 0.2.

    All kernels are 3x3 with padding 1; InstanceNorm has no affine parameters; there is
    no sigmoid (least-squares GAN). Conv weights are drawn from N(0, 0.02) as the official
    ``weights_init_normal`` does (biases keep PyTorch's default). The output is a map of
    patch scores whose size follows from the input (224 -> 28 x 28, the official
    hard-coded shape; 64 -> 8 x 8).

    Args:
        in_channels: channels of the judged images (1 for gray restorations).
        channels: widths of the four hidden convolutions.
        strides: their strides.
    """

    def __init__(self,
                 in_channels: int = 1,
                 channels: Sequence[int] = (64, 128, 256, 512),
                 strides: Sequence[int] = (2, 2, 2, 1),
                 init_std: float = 0.02) -> None:
        super().__init__()
        if len(channels) != len(strides):
            raise ValueError('PatchDiscriminator: channels and strides need the same length')
        layers = []
        prev = int(in_channels)
        for i, (ch, stride) in enumerate(zip(channels, strides)):
            layers.append(nn.Conv2d(prev, ch, 3, stride, 1))
            if i > 0:
                layers.append(nn.InstanceNorm2d(ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            prev = ch
        layers.append(nn.Conv2d(prev, 1, 3, 1, 1))
        self.model = nn.Sequential(*layers)
        self.strides = tuple(strides)
        self.init_std = init_std
        self._init_normal()

    def _init_normal(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, self.init_std)

    def output_shape(self, height: int, width: int) -> Tuple[int, int]:
        """Patch-map size for an input of ``height x width``."""
        for s in self.strides:
            height = (height + 2 - 3) // s + 1
            width = (width + 2 - 3) // s + 1
        return height, width

    def forward(self, x: Tensor) -> Tensor:
        """Patch scores ``(N, 1, h, w)``."""
        return self.model(x)
