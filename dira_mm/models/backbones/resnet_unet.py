"""2-D U-Net with a ResNet encoder, built with segmentation-models-pytorch.

The official DiRA generator is ``smp.Unet('resnet50', encoder_weights=None,
activation='sigmoid')`` (decoder 256-128-64-32-16, one output channel). This module
builds the same network with smp and keeps smp's attribute names, so its state dict
loads unchanged into ``smp.Unet`` (and its ``encoder.*`` part into torchvision's ResNet),
while exposing the encoder and decoder separately: the key/target branch of an SSL
method needs only the encoder, and DiRA decodes the features the online encoder has
already computed instead of running the encoder twice.
"""
from typing import List, Optional, Sequence

import segmentation_models_pytorch as smp
import torch
from torch import Tensor, nn

from dira_mm.registry import BACKBONES
from dira_mm.utils.convert import SMP_DECODER_PREFIXES, SMP_ENCODER_PREFIXES
from .base_backbone import BaseEncoderDecoder


@BACKBONES.register_module()
class ResNetUNet(BaseEncoderDecoder):
    """U-Net (smp) whose encoder and decoder can run separately.

    Args:
        encoder_name: smp encoder name, e.g. ``'resnet50'`` (official) or ``'resnet18'``.
        encoder_depth: number of encoder stages (3-5); the decoder has as many blocks.
        decoder_channels: decoder widths, one per stage (official 256-128-64-32-16).
        in_channels: image channels the encoder takes (official: 3, gray repeated).
        out_channels: channels of the reconstruction (official: 1).
        activation: activation of the reconstruction head (official ``'sigmoid'``).
        with_decoder: build the decoder and reconstruction head. ``False`` gives an
            encoder-only network for plain discriminative training (no unused parameters
            under DDP).
        encoder_weights: smp encoder weights; ``None`` (random init) by default. Only a
            local path or ``None`` works offline.
        decoder_use_norm: normalisation in the decoder blocks (official: batchnorm).
        init_cfg: mmengine init config (rarely needed: smp initialises as the official
            code does: torchvision's init for the encoder, Kaiming-uniform for the
            decoder, Xavier for the head).
    """

    spatial_dims = 2
    # smp's layout, which the converters' smp / torchvision / timm formats are written in
    encoder_prefixes = SMP_ENCODER_PREFIXES
    decoder_prefixes = SMP_DECODER_PREFIXES

    def __init__(self,
                 encoder_name: str = 'resnet50',
                 encoder_depth: int = 5,
                 decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
                 in_channels: int = 3,
                 out_channels: int = 1,
                 activation: Optional[str] = 'sigmoid',
                 with_decoder: bool = True,
                 encoder_weights: Optional[str] = None,
                 decoder_use_norm: str = 'batchnorm',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(decoder_channels) != encoder_depth:
            raise ValueError(
                f'ResNetUNet: decoder_channels has {len(decoder_channels)} values but '
                f'encoder_depth is {encoder_depth}; give one decoder width per stage.')
        self.encoder_name = encoder_name
        self.in_channels = int(in_channels)
        self.with_decoder = with_decoder
        if with_decoder:
            unet = smp.Unet(
                encoder_name=encoder_name,
                encoder_depth=encoder_depth,
                encoder_weights=encoder_weights,
                decoder_channels=tuple(decoder_channels),
                decoder_use_norm=decoder_use_norm,
                in_channels=in_channels,
                classes=out_channels,
                activation=activation)
            self.encoder = unet.encoder
            self.decoder = unet.decoder
            self.segmentation_head = unet.segmentation_head
        else:
            self.encoder = smp.encoders.get_encoder(
                encoder_name, in_channels=in_channels, depth=encoder_depth,
                weights=encoder_weights)

    @property
    def out_channels(self) -> List[int]:
        """Channels of each encoder feature map (the last is the deepest stage)."""
        return list(self.encoder.out_channels)

    def encoder_module(self) -> nn.Module:
        """smp's encoder (its call returns the feature list, shallowest first)."""
        return self.encoder

    @property
    def arch_name(self) -> str:
        """The smp encoder name (``'resnet50'``), as reports have always named it."""
        return self.encoder_name

    def encoder_stages(self) -> Optional[List[List[nn.Module]]]:
        """ResNet stages of the encoder: the stem (``conv1``, ``bn1``), then ``layer1..4``
        (only those present: ``encoder_depth`` < 5 builds fewer); None for an encoder
        without a ResNet stem."""
        enc = self.encoder
        if not all(isinstance(getattr(enc, n, None), nn.Module) for n in ('conv1', 'bn1')):
            return None
        stages = [[enc.conv1, enc.bn1]]
        for i in range(1, 5):
            layer = getattr(enc, f'layer{i}', None)
            if not isinstance(layer, nn.Module):
                break
            stages.append([layer])
        return stages

    def forward_decoder(self, features: List[Tensor]) -> Tensor:
        """Reconstruction from encoder features."""
        self.require_decoder()
        return self.segmentation_head(self.decoder(features))

    def unet_state_dict(self) -> 'dict[str, torch.Tensor]':
        """State dict with smp.Unet's key names (what users load downstream)."""
        return {k: v.detach().clone() for k, v in self.state_dict().items()}
