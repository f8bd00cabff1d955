"""3-D U-Net with a ResNet encoder, built with MONAI's ``FlexibleUNet``.

The 3-D counterpart of :class:`~dira_mm.models.backbones.ResNetUNet`: MONAI's
``FlexibleUNet(spatial_dims=3, backbone='resnet50', decoder_channels=(256, 128, 64, 32,
16))`` with the attribute names kept (``encoder.``, ``decoder.``, ``segmentation_head.``),
so its state dict loads unchanged into ``FlexibleUNet`` and its ``encoder.*`` part (minus
the prefix) into ``monai.networks.nets.resnet50(spatial_dims=3, n_input_channels=1,
conv1_t_stride=2, bias_downsample=False)`` (missing only ``fc``). The encoder keys use
torchvision's names (``conv1``, ``bn1``, ``layer1``-``layer4``), which is what lets a 2-D
encoder be inflated into it (:func:`inflate_2d_encoder`).
"""
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.logging import print_log
from torch import Tensor, nn

from dira_mm.registry import BACKBONES
from dira_mm.utils.convert import WeightConversionError
from .base_backbone import BaseEncoderDecoder

__all__ = ['ResNetUNet3D', 'inflate_2d_encoder', 'inflate_kernel', 'guess_resnet3d']

#: MONAI's 3-D ResNets that FlexibleUNet accepts
RESNET3D_NAMES = ('resnet10', 'resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152',
                  'resnet200')


def inflate_kernel(weight: Tensor, depth: int, axis: int = 2) -> Tensor:
    """I3D inflation of a 2-D kernel ``(O, I, kh, kw)`` to 3-D: repeated ``depth`` times
    along spatial ``axis`` (0-2 of the 3-D kernel) and divided by ``depth``.

    A volume that is constant along that axis then gives, away from its ends, the same
    response as the 2-D kernel on one slice.
    """
    if weight.dim() != 4:
        raise ValueError(f'inflate_kernel takes a 2-D kernel (O, I, kh, kw), got shape '
                         f'{tuple(weight.shape)}.')
    out = weight.unsqueeze(2 + axis)
    reps = [1] * out.dim()
    reps[2 + axis] = depth
    return out.repeat(*reps) / depth


def inflate_2d_encoder(weights_2d: Dict[str, Tensor], target: Dict[str, Tensor],
                       axis: int = 2, what: str = '2-D encoder'
                       ) -> Tuple['OrderedDict[str, Tensor]', List[str]]:
    """Inflate torchvision-named 2-D ResNet weights to the 3-D shapes of ``target``.

    Convolution kernels are inflated with :func:`inflate_kernel` to the depth of the
    target kernel (the 3-D stem is 7x7x7, the 2-D one 7x7); BatchNorm tensors and any
    other tensor of the same shape are copied. The stem rule: a 2-D stem that takes 3
    channels (dira_mm's 2-D U-Net reads the gray image repeated three times) becomes a
    1-channel 3-D stem by **summing** its kernel over the input channels, which gives
    exactly the 2-D stem's response to a gray image repeated on its three channels.

    Args:
        weights_2d: encoder weights without prefix (``conv1.weight``, ``layer1...``).
        target: the 3-D encoder's state dict (for the key set and shapes).
        axis: the spatial axis of the 3-D kernel to inflate along (2: the last, ``Z`` of
            dira_mm's ``(C, X, Y, Z)`` volumes, the axial slice direction).
        what: name of the source in error messages.

    Returns:
        ``(inflated, notes)``: weights keyed like ``target`` (only keys of ``weights_2d``)
        and one note per non-trivial rule used (stem summed).

    Raises:
        WeightConversionError: a tensor that is already 3-D, or whose shape cannot be
            inflated to the target's.
    """
    inflated, notes = OrderedDict(), []
    for key, value in weights_2d.items():
        if key not in target:
            inflated[key] = value  # left for the key-match report to name
            continue
        want = target[key].shape
        if value.dim() == 5:
            raise WeightConversionError(
                f'{what}: "{key}" is already 3-D {tuple(value.shape)}; inflate_from takes a '
                '2-D checkpoint. Load a 3-D checkpoint with init_cfg / load_from instead.')
        if value.dim() == 4 and len(want) == 5:
            if value.shape[1] != want[1]:
                if key == 'conv1.weight' and want[1] == 1:
                    value = value.sum(dim=1, keepdim=True)
                    notes.append(f'{key}: {tuple(weights_2d[key].shape[:2])} stem summed '
                                 'over its input channels to 1 channel')
                else:
                    raise WeightConversionError(
                        f'{what}: "{key}" takes {value.shape[1]} input channels, the 3-D '
                        f'model {want[1]}; only a 3-channel stem into a 1-channel one is '
                        'converted (summed). Set in_channels to match.')
            depth = want[2 + axis]
            value = inflate_kernel(value.float(), depth, axis).to(value.dtype)
        if tuple(value.shape) != tuple(want):
            raise WeightConversionError(
                f'{what}: "{key}" has shape {tuple(weights_2d[key].shape)}, which does not '
                f'inflate to the 3-D shape {tuple(want)}; use a 2-D encoder of the same '
                'ResNet depth and width as the 3-D backbone.')
        inflated[key] = value.clone()
    return inflated, notes


@BACKBONES.register_module()
class ResNetUNet3D(BaseEncoderDecoder):
    """3-D ResNet U-Net (MONAI ``FlexibleUNet``) whose encoder and decoder run separately.

    Args:
        backbone: MONAI 3-D ResNet, ``'resnet50'`` (default, 67.67 M parameters with the
            decoder) or ``'resnet10'`` / ``'resnet18'`` / ``'resnet34'`` / deeper ones.
        in_channels: volume channels (CT: 1).
        out_channels: channels of the restoration / segmentation output.
        decoder_channels: decoder widths (FlexibleUNet's default, as smp's).
        activation: output activation, any MONAI activation name; ``'sigmoid'`` (the
            restoration head of DiRA's generator) or ``None`` (segmentation logits). It has
            no weights, so the state dict is FlexibleUNet's either way.
        with_decoder: build the decoder and head; ``False`` gives the encoder only.
        inflate_from: a 2-D checkpoint or state dict whose ResNet encoder is inflated into
            this encoder (I3D, see :func:`inflate_2d_encoder`): a dira_mm 2-D pre-training
            checkpoint (``ssl.backbone.encoder.*`` / ``backbone.encoder.*``), an smp state
            dict (``encoder.*``) or a torchvision ResNet. Every encoder tensor must load
            (a key-match report is logged; anything missing raises); the 2-D decoder, head
            and ``fc`` are reported as unused.
        inflate_prefix: where the 2-D U-Net lives in a dira_mm checkpoint (``'auto'``).
        inflate_axis: spatial axis of the 3-D kernels the 2-D kernels are repeated along
            (2: ``Z``, the last axis of ``(C, X, Y, Z)``).
        upsample: FlexibleUNet's decoder upsampling (``'nontrainable'``, its default).
        init_cfg: mmengine init config. MONAI initialises the encoder (Kaiming normal).
    """

    spatial_dims = 3
    decoder_prefixes = ('decoder.', 'segmentation_head.')

    def __init__(self,
                 backbone: str = 'resnet50',
                 in_channels: int = 1,
                 out_channels: int = 1,
                 decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
                 activation: Optional[str] = 'sigmoid',
                 with_decoder: bool = True,
                 inflate_from: Optional[str] = None,
                 inflate_prefix: str = 'auto',
                 inflate_axis: int = 2,
                 upsample: str = 'nontrainable',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if backbone not in RESNET3D_NAMES:
            raise ValueError(f'ResNetUNet3D: backbone must be one of {RESNET3D_NAMES}, got '
                             f'{backbone!r}.')
        if len(decoder_channels) != 5:
            raise ValueError('ResNetUNet3D: decoder_channels needs 5 widths (one per encoder '
                             f'stage), got {tuple(decoder_channels)}.')
        self.backbone_name = backbone
        self.in_channels = in_channels
        self.with_decoder = with_decoder
        if with_decoder:
            from monai.networks.layers.utils import get_act_layer
            from monai.networks.nets import FlexibleUNet
            unet = FlexibleUNet(in_channels=in_channels, out_channels=out_channels,
                                backbone=backbone, pretrained=False,
                                decoder_channels=tuple(decoder_channels), spatial_dims=3,
                                upsample=upsample)
            self.encoder = unet.encoder
            self.decoder = unet.decoder
            self.segmentation_head = unet.segmentation_head
            if activation is not None:  # FlexibleUNet's head ends in a weightless Identity
                self.segmentation_head[2] = get_act_layer(activation)
            self._skip_connect = unet.skip_connect
        else:
            # the same class and arguments FlexibleUNet uses, so the keys are the same
            from monai.networks.nets.resnet import ResNetEncoder
            self.encoder = ResNetEncoder(backbone, pretrained=False, spatial_dims=3,
                                         in_channels=in_channels)
        if inflate_from is not None:
            self.inflate_report = self.inflate(inflate_from, inflate_prefix, inflate_axis)

    @property
    def out_channels(self) -> List[int]:
        """Channels of the 5 encoder maps (strides 2, 4, 8, 16, 32), shallowest first."""
        from monai.networks.nets.resnet import ResNetEncoder
        index = ResNetEncoder.get_encoder_names().index(self.backbone_name)
        return list(ResNetEncoder.num_channels_per_output()[index])

    @property
    def input_multiple(self) -> Sequence[int]:
        """The first map is already at stride 2, so the total stride is 32 per axis."""
        return (32, ) * 3

    @property
    def arch_name(self) -> str:
        """The MONAI ResNet name and the dimensionality, e.g. ``'resnet50 (3-D)'``."""
        return f'{self.backbone_name} (3-D)'

    def encoder_stages(self) -> List[List[nn.Module]]:
        """The stem (``conv1``, ``bn1``), then ``layer1``-``layer4``."""
        enc = self.encoder
        return [[enc.conv1, enc.bn1]] + [[getattr(enc, f'layer{i}')] for i in range(1, 5)]

    def encoder_module(self) -> nn.Module:
        """MONAI's ResNet encoder: its call returns the 5 maps, shallowest first (no input
        map, unlike smp's), which is what FlexibleUNet's decoder takes."""
        return self.encoder

    def forward_decoder(self, features: List[Tensor]) -> Tensor:
        """Restoration (sigmoid) or logits at the input size."""
        self.require_decoder()
        return self.segmentation_head(self.decoder(list(features), self._skip_connect))

    def inflate(self, filename_or_state, prefix: str = 'auto', axis: int = 2) -> dict:
        """Inflate a 2-D ResNet encoder into this encoder (see ``inflate_from``).

        Returns:
            :func:`~dira_mm.models.utils.load_checked`'s report, plus ``source``,
            ``unused_2d`` (2-D keys not used: decoder, head, ``fc``) and ``notes``.
        """
        from dira_mm.models.utils.load_checked import load_checked
        from dira_mm.models.utils.pretrained import (encoder_weights_from_checkpoint,
                                                     read_pretrained)
        name = filename_or_state if isinstance(filename_or_state, str) else 'state dict'
        checkpoint = (read_pretrained(filename_or_state) if isinstance(filename_or_state, str)
                      else filename_or_state)
        what = f'inflate_from "{name}"'
        try:
            weights, unused, source = encoder_weights_from_checkpoint(checkpoint, prefix)
        except WeightConversionError as err:
            raise WeightConversionError(f'{what}: {err}') from None
        weights_2d = OrderedDict((k[len('encoder.'):], v) for k, v in weights.items())
        inflated, notes = inflate_2d_encoder(weights_2d, self.encoder.state_dict(), axis,
                                             what)
        report = load_checked(self.encoder, inflated, what=f'{what} ({source}, inflated '
                              'to 3-D)', target=f'{type(self).__name__}.encoder '
                              f'({self.backbone_name})')
        lines = notes + ([f'{len(unused)} 2-D tensors unused (decoder / head / fc: '
                          f'{sorted({".".join(k.split(".")[:2]) for k in unused})})']
                         if unused else [])
        if lines:
            print_log(f'{what}: ' + '; '.join(lines), logger='current')
        report.update(source=source, unused_2d=list(unused), notes=notes)
        return report


def guess_resnet3d(encoder_state: Dict[str, Tensor]) -> Optional[str]:
    """The MONAI 3-D ResNet name whose block type and counts the encoder weights have
    (keys without ``encoder.``), or None."""
    from monai.networks.nets.resnet import resnet_params
    counts = []
    for stage in range(1, 5):
        counts.append(len({m.group(1) for k in encoder_state
                           for m in [re.match(rf'layer{stage}\.(\d+)\.', k)] if m}))
    block = 'bottleneck' if 'layer1.0.conv3.weight' in encoder_state else 'basic'
    for name, params in resnet_params.items():
        if params[0] == block and list(params[1]) == counts:
            return name
    return None

