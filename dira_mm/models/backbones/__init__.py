"""Backbones: encoder-decoders following :class:`BaseEncoderDecoder`."""
from .base_backbone import BaseEncoderDecoder
from .resnet_unet import ResNetUNet

__all__ = ['BaseEncoderDecoder', 'ResNetUNet']
