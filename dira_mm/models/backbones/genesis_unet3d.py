"""Models Genesis' 3-D U-Net (``UNet3D``, also TransVW's body) with its exact state-dict layout.

Structure as published (``MrGiovanni/ModelsGenesis`` ``pytorch/unet3d.py``; reference note
``dira_3d_transvw.md`` section 2.1), hand-written because no library has it: four down
levels (``down_tr64/128/256/512``, two 3x3x3 conv-BN-activation units each, ``ops.0`` and
``ops.1`` with ``conv1`` / ``bn1``; 2x max-pooling between levels), three up levels
(``up_tr256/128/64``: ``up_conv`` a 2x transposed convolution, concatenated with the skip,
then two units) and ``out_tr.final_conv`` (1x1x1). At the official widths it has 106
state-dict tensors and 19.07 M parameters, so ``Genesis_Chest_CT.pt`` and
``TransVW_chest_ct.pt`` style checkpoints load into it as initialisation
(:meth:`GenesisUNet3D.load_genesis`).

One fix by default: the official ``ContBatchNorm3d`` always normalises with the batch
statistics (also in ``eval()``); here BatchNorm is ``nn.BatchNorm3d`` (running statistics
in ``eval()``), and ``official_batchnorm=True`` restores the official behaviour.
"""
import re
from collections import OrderedDict
from typing import List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor, nn

from dira_mm.registry import BACKBONES
from dira_mm.utils.convert import UNET_PREFIXES, WeightConversionError
from .base_backbone import BaseEncoderDecoder

__all__ = ['GenesisUNet3D', 'ContBatchNorm3d', 'GENESIS_ENCODER_PREFIXES',
           'GENESIS_DECODER_PREFIXES', 'genesis_weights_from_checkpoint']

GENESIS_ENCODER_PREFIXES = ('down_tr64.', 'down_tr128.', 'down_tr256.', 'down_tr512.')
GENESIS_DECODER_PREFIXES = ('up_tr256.', 'up_tr128.', 'up_tr64.', 'out_tr.')
#: TransVW's wrapper prefix (spelled so in its checkpoints), stripped as its README does
TRANSVW_PREFIX = 'classficationNet.'
_ACTS = ('relu', 'prelu', 'elu')


class ContBatchNorm3d(nn.BatchNorm3d):
    """The official BatchNorm: batch statistics always, in ``eval()`` too (running
    statistics are updated but never used). Same parameters and buffers as BatchNorm3d."""

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            True, self.momentum, self.eps)


class _Unit(nn.Module):
    """conv1 (3x3x3, bias) -> bn1 -> activation: the official ``LUConv``'s names."""

    def __init__(self, in_ch: int, out_ch: int, act: str, official_bn: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(in_ch, out_ch, kernel_size=3, padding=1)
        self.bn1 = (ContBatchNorm3d if official_bn else nn.BatchNorm3d)(out_ch)
        if act == 'relu':
            self.activation = nn.ReLU(inplace=True)  # the official one is in place too
        elif act == 'prelu':
            self.activation = nn.PReLU(out_ch)
        else:
            self.activation = nn.ELU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.bn1(self.conv1(x)))


class _Level(nn.Module):
    """One level: ``ops`` (two units), and for the up path ``up_conv`` before them."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int, act: str, official_bn: bool,
                 up_ch: Optional[int] = None) -> None:
        super().__init__()
        if up_ch is not None:
            self.up_conv = nn.ConvTranspose3d(up_ch, up_ch, kernel_size=2, stride=2)
        self.ops = nn.Sequential(_Unit(in_ch, mid_ch, act, official_bn),
                                 _Unit(mid_ch, out_ch, act, official_bn))


class _Output(nn.Module):
    """``final_conv`` (1x1x1) and the output activation (no weights)."""

    def __init__(self, in_ch: int, out_ch: int, activation: Optional[str]) -> None:
        super().__init__()
        self.final_conv = nn.Conv3d(in_ch, out_ch, kernel_size=1)
        if activation not in (None, 'sigmoid'):
            raise ValueError(f"GenesisUNet3D: activation must be 'sigmoid' or None, got "
                             f'{activation!r}.')
        self.activation = nn.Sigmoid() if activation == 'sigmoid' else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.final_conv(x))


class _GenesisEncoder(nn.Module):
    """The down path as one module (shares the backbone's levels; keys ``down_tr*``):
    returns the 4 maps before pooling, shallowest first."""

    def __init__(self, down_tr64: nn.Module, down_tr128: nn.Module, down_tr256: nn.Module,
                 down_tr512: nn.Module) -> None:
        super().__init__()
        self.down_tr64, self.down_tr128 = down_tr64, down_tr128
        self.down_tr256, self.down_tr512 = down_tr256, down_tr512

    def forward(self, x: Tensor) -> List[Tensor]:
        features = []
        for i, level in enumerate((self.down_tr64, self.down_tr128, self.down_tr256,
                                   self.down_tr512)):
            x = level.ops(x if i == 0 else F.max_pool3d(x, 2))
            features.append(x)
        return features


@BACKBONES.register_module()
class GenesisUNet3D(BaseEncoderDecoder):
    """Models Genesis / TransVW ``UNet3D`` (official layout) as a dira_mm backbone.

    Encoder: the down path; its features are the 4 maps before pooling, channels
    ``2b, 4b, 8b, 16b`` (``b = base_channels``; 64, 128, 256, 512 officially) at strides
    1, 2, 4, 8. Decoder: the up path and ``out_tr``.

    Args:
        in_channels: input channels (official 1).
        out_channels: output channels (official ``n_class=1``).
        act: ``'relu'`` (official default), ``'prelu'`` or ``'elu'``.
        base_channels: width of the first convolution (official 32); smaller for tests.
        activation: ``'sigmoid'`` (official, restoration) or ``None`` (logits).
        official_batchnorm: ``True`` restores the official ``ContBatchNorm3d`` (batch
            statistics in ``eval()`` too); default ``False`` uses ``nn.BatchNorm3d``.
        with_decoder: build the up path and output; ``False``: encoder only.
        pretrained: a ``Genesis_Chest_CT.pt`` / ``TransVW_chest_ct.pt`` style checkpoint
            (or a dira_mm checkpoint of this backbone) loaded as initialisation with a
            key-match report, see :meth:`load_genesis`.
        pretrained_prefix: where the weights live in a dira_mm checkpoint (``'auto'``).
        init_cfg: mmengine init config (PyTorch's default init otherwise, as official).
    """

    spatial_dims = 3
    encoder_prefixes = GENESIS_ENCODER_PREFIXES
    decoder_prefixes = GENESIS_DECODER_PREFIXES

    def __init__(self,
                 in_channels: int = 1,
                 out_channels: int = 1,
                 act: str = 'relu',
                 base_channels: int = 32,
                 activation: Optional[str] = 'sigmoid',
                 official_batchnorm: bool = False,
                 with_decoder: bool = True,
                 pretrained: Optional[str] = None,
                 pretrained_prefix: str = 'auto',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if act not in _ACTS:
            raise ValueError(f'GenesisUNet3D: act must be one of {_ACTS}, got {act!r}.')
        b, bn = base_channels, official_batchnorm
        self.base_channels = base_channels
        self.in_channels = int(in_channels)
        self.with_decoder = with_decoder
        self.down_tr64 = _Level(in_channels, b, 2 * b, act, bn)
        self.down_tr128 = _Level(2 * b, 2 * b, 4 * b, act, bn)
        self.down_tr256 = _Level(4 * b, 4 * b, 8 * b, act, bn)
        self.down_tr512 = _Level(8 * b, 8 * b, 16 * b, act, bn)
        if with_decoder:
            self.up_tr256 = _Level(16 * b + 8 * b, 8 * b, 8 * b, act, bn, up_ch=16 * b)
            self.up_tr128 = _Level(8 * b + 4 * b, 4 * b, 4 * b, act, bn, up_ch=8 * b)
            self.up_tr64 = _Level(4 * b + 2 * b, 2 * b, 2 * b, act, bn, up_ch=4 * b)
            self.out_tr = _Output(2 * b, out_channels, activation)
        # a view of the down path, not a registered child (the keys stay ``down_tr*``)
        object.__setattr__(self, '_encoder_view', _GenesisEncoder(
            self.down_tr64, self.down_tr128, self.down_tr256, self.down_tr512))
        if pretrained is not None:
            self.pretrained_report = self.load_genesis(pretrained, pretrained_prefix)

    @property
    def out_channels(self) -> List[int]:
        """Channels of the 4 encoder maps, shallowest first."""
        b = self.base_channels
        return [2 * b, 4 * b, 8 * b, 16 * b]

    @property
    def arch_name(self) -> str:
        """``'Genesis UNet3D'`` (with the width when it is not the official 32)."""
        return 'Genesis UNet3D' + ('' if self.base_channels == 32
                                   else f' (base_channels={self.base_channels})')

    def encoder_stages(self) -> List[List[nn.Module]]:
        """The four down levels; ``down_tr64`` is the stem (stage 0)."""
        return [[self.down_tr64], [self.down_tr128], [self.down_tr256], [self.down_tr512]]

    def encoder_module(self) -> nn.Module:
        """The down path (shares this backbone's weights)."""
        return self._encoder_view

    def forward_decoder(self, features: List[Tensor]) -> Tensor:
        """The up path from the 4 encoder maps, then ``out_tr``."""
        self.require_decoder()
        x = features[3]
        for level, skip in ((self.up_tr256, features[2]), (self.up_tr128, features[1]),
                            (self.up_tr64, features[0])):
            x = level.ops(torch.cat((level.up_conv(x), skip), 1))  # official order
        return self.out_tr(x)

    def load_genesis(self, filename_or_state: Union[str, dict],
                     prefix: str = 'auto') -> dict:
        """Load a Models Genesis / TransVW checkpoint as initialisation, with a report.

        Accepted: ``{'state_dict': {...}}`` or a bare state dict, DataParallel's
        ``module.`` prefix, TransVW's ``classficationNet.`` prefix (stripped, as its
        README does) and dira_mm checkpoints of this backbone (``ssl.backbone.*`` /
        ``backbone.*``). Keys outside the ``UNet3D`` layout (TransVW's classification head,
        ``projection_head``, ``prototypes``, ...) are reported as unused; the decoder may
        be missing (an encoder-only checkpoint; it keeps its initialisation, reported);
        an ``out_tr`` of another number of classes is reported and not loaded. Everything
        else must fit: a missing or misshapen encoder tensor raises before anything is
        loaded.

        Returns:
            :func:`~dira_mm.models.utils.load_checked`'s report plus ``unused``.
        """
        from dira_mm.models.utils.load_checked import load_checked
        from dira_mm.models.utils.pretrained import read_pretrained
        name = filename_or_state if isinstance(filename_or_state, str) else 'state dict'
        what = f'GenesisUNet3D pretrained "{name}"'
        checkpoint = (read_pretrained(filename_or_state)
                      if isinstance(filename_or_state, str) else filename_or_state)
        weights, notes = genesis_weights_from_checkpoint(checkpoint, prefix, what)
        model_state = self.state_dict()
        head = 'out_tr.final_conv.weight'
        if head in weights and head in model_state and \
                weights[head].shape != model_state[head].shape:
            notes.append(f'out_tr not loaded: {tuple(weights[head].shape)} in the '
                         f'checkpoint, {tuple(model_state[head].shape)} here')
            weights = OrderedDict((k, v) for k, v in weights.items()
                                  if not k.startswith('out_tr.'))
        ours = GENESIS_ENCODER_PREFIXES + (GENESIS_DECODER_PREFIXES if self.with_decoder
                                           else ())
        unused = [k for k in weights if not k.startswith(ours)]
        report = load_checked(
            self, weights, what=what,
            allowed_missing=[re.escape(p) + '.*' for p in GENESIS_DECODER_PREFIXES],
            allowed_unexpected=[re.escape(k) for k in unused])
        if unused:
            notes.append(f'{len(unused)} tensors outside the UNet3D layout unused: '
                         f'{sorted({k.split(".")[0] for k in unused})}')
        if notes:
            print_log(f'{what}: ' + '; '.join(notes), logger='current')
        report.update(unused=unused, notes=notes)
        return report


def genesis_weights_from_checkpoint(checkpoint: dict, prefix: str = 'auto',
                                    what: str = 'checkpoint'
                                    ) -> Tuple['OrderedDict[str, Tensor]', List[str]]:
    """The ``UNet3D``-layout weights of a Genesis / TransVW / dira_mm checkpoint.

    Returns ``(weights, notes)``: keys as ``UNet3D.state_dict()`` (plus any foreign keys,
    left for the caller to report), and what was stripped.

    Raises:
        WeightConversionError: no state dict of tensors, or no ``down_tr64.*`` key.
    """
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not state or \
            not all(isinstance(v, Tensor) for v in state.values()):
        raise WeightConversionError(
            f'{what}: holds no state dict of tensors (expected a dict of tensors or '
            "{'state_dict': {...}}, as Genesis_Chest_CT.pt).")
    notes: List[str] = []
    if any(k.startswith('module.') for k in state):
        state = OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v)
                            for k, v in state.items())
        notes.append('DataParallel prefix "module." stripped')
    candidates = UNET_PREFIXES + ('', ) if prefix == 'auto' else (prefix, )
    used = next((p for p in candidates
                 if any(k.startswith(p + 'down_tr64.') for k in state)), None)
    if used is None and any(k.startswith(TRANSVW_PREFIX + 'down_tr64.') for k in state):
        state = OrderedDict((k[len(TRANSVW_PREFIX):] if k.startswith(TRANSVW_PREFIX)
                             else k, v) for k, v in state.items())
        notes.append(f'TransVW prefix "{TRANSVW_PREFIX}" stripped')
        used = ''
    if used is None:
        groups = sorted({'.'.join(k.split('.')[:2]) for k in state})
        raise WeightConversionError(
            f'{what}: no Models Genesis UNet3D weights (no "{"|".join(candidates)}'
            f'down_tr64.*" key). Key groups: {groups[:30]}. Pass the prefix of the U-Net '
            '(pretrained_prefix / --prefix) if it lives elsewhere.')
    if used:
        state = OrderedDict((k[len(used):], v) for k, v in state.items()
                            if k.startswith(used))
        notes.append(f'weights under "{used}"')
    return OrderedDict(state), notes

