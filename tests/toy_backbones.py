"""A toy 3-D backbone that implements the backbone protocol and nothing more (tests only)."""
import torch
from torch import nn

from dira_mm.models.backbones import BaseEncoderDecoder
from dira_mm.registry import MODELS

__all__ = ['NDToyUNet3D']


class _Encoder3D(nn.Module):
    """Two stride-2 stages: (N, 1, S, S, S) -> [(N, w, S/2...), (N, 2w, S/4...)]."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv3d(in_channels, width, 3, 2, 1), nn.BatchNorm3d(width),
                                  nn.ReLU())
        self.stage1 = nn.Sequential(nn.Conv3d(width, 2 * width, 3, 2, 1), nn.ReLU())

    def forward(self, x):
        a = self.stem(x)
        return [a, self.stage1(a)]


@MODELS.register_module(force=True)
class NDToyUNet3D(BaseEncoderDecoder):
    """The smallest 3-D encoder-decoder that follows the protocol (tests only)."""

    spatial_dims = 3
    encoder_prefixes = ('enc.', )
    decoder_prefixes = ('dec.', 'head.')

    def __init__(self, in_channels: int = 1, width: int = 4, out_channels: int = 1,
                 activation='sigmoid', with_decoder: bool = True) -> None:
        super().__init__()
        self.width, self.with_decoder = width, with_decoder
        self.enc = _Encoder3D(in_channels, width)
        if with_decoder:
            self.dec = nn.ConvTranspose3d(2 * width, width, 2, stride=2)
            self.head = nn.Sequential(nn.Upsample(scale_factor=2),
                                      nn.Conv3d(2 * width, out_channels, 1),
                                      nn.Sigmoid() if activation == 'sigmoid' else nn.Identity())

    @property
    def out_channels(self):
        return [self.width, 2 * self.width]

    @property
    def input_multiple(self):
        return (4, 4, 4)

    def encoder_module(self):
        return self.enc

    def encoder_stages(self):
        return [[self.enc.stem], [self.enc.stage1]]

    def forward_decoder(self, features):
        self.require_decoder()
        a, b = features
        return self.head(torch.cat([a, self.dec(b)], dim=1))
