"""Backbones: encoder-decoders following :class:`BaseEncoderDecoder`."""
from .base_backbone import BaseEncoderDecoder
from .resnet_unet import ResNetUNet

__all__ = ['BaseEncoderDecoder', 'ResNetUNet']
from .genesis_unet3d import GenesisUNet3D  # noqa: E402 (issue 9: 3-D backbones)
from .resnet_unet3d import ResNetUNet3D  # noqa: E402

__all__ += ['GenesisUNet3D', 'ResNetUNet3D']
