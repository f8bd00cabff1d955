"""Backbones."""
from .resnet_unet import ResNetUNet

__all__ = ['ResNetUNet']
