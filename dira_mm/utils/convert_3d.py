"""Export the 3-D backbone of a dira_mm checkpoint to MONAI and Models Genesis layouts.

The 3-D counterpart of :mod:`dira_mm.utils.convert`. The backbone lives under
``ssl.backbone.`` (DiRA) or ``backbone.`` (plain methods), as in 2-D; it is a
:class:`~dira_mm.models.backbones.ResNetUNet3D` (keys ``encoder.*``, ``decoder.*``,
``segmentation_head.*``, MONAI ``FlexibleUNet``'s) or a
:class:`~dira_mm.models.backbones.GenesisUNet3D` (keys ``down_tr*``, ``up_tr*``,
``out_tr.*``). Formats:

- ``flexible_unet``: the whole U-Net for ``monai.networks.nets.FlexibleUNet(in_channels,
  out_channels, backbone, spatial_dims=3, decoder_channels=...)`` (a plain state dict);
- ``monai_resnet``: the encoder for ``monai.networks.nets.<resnetN>(spatial_dims=3,
  n_input_channels=..., conv1_t_stride=2, shortcut_type=..., bias_downsample=...)`` with
  the arguments FlexibleUNet's encoder uses (for ResNet-50: shortcut ``'B'``, no
  downsample bias; MONAI's own default ``bias_downsample=True`` would add four
  ``layer*.0.downsample.0.bias`` keys), missing only ``fc``;
- ``genesis``: ``{'state_dict': ...}`` in the Models Genesis ``UNet3D`` layout, optionally
  with DataParallel's ``module.`` prefix, as the official loaders expect.

Every export is verified: the result is loaded into the target model through
:func:`~dira_mm.models.utils.load_checked` (no missing or unexpected key beyond ``fc``)
and the target's output (features for ``monai_resnet``) is compared with the dira_mm
backbone's on a seeded random volume. NaN/Inf weights are refused
(:func:`~dira_mm.utils.convert.check_finite`).
"""
import os
import re
from collections import OrderedDict
from typing import Dict, Tuple

import torch
from torch import Tensor

from .convert import UNET_PREFIXES, WeightConversionError, check_finite, format_report

__all__ = ['FORMATS_3D', 'find_backbone_3d', 'to_format_3d', 'verify_converted_3d',
           'convert_checkpoint_3d']

FORMATS_3D = ('flexible_unet', 'monai_resnet', 'genesis')
_KINDS = {'resnet_unet3d': 'encoder.conv1.weight',
          'genesis_unet3d': 'down_tr64.ops.0.conv1.weight'}
#: formats each backbone kind can be exported to
_KIND_FORMATS = {'resnet_unet3d': ('flexible_unet', 'monai_resnet'),
                 'genesis_unet3d': ('genesis', )}
#: largest |difference| accepted between the target's and the backbone's outputs
TOLERANCE = 1e-4

StateDict = Dict[str, Tensor]


def find_backbone_3d(checkpoint: dict, prefix: str = 'auto') -> Tuple[StateDict, str, str]:
    """The 3-D backbone weights of ``checkpoint`` (prefix stripped), the prefix, the kind.

    Args:
        checkpoint: a loaded dira_mm checkpoint (``{'state_dict': ...}``) or state dict;
            DDP's ``module.`` prefix is stripped.
        prefix: ``'auto'`` tries ``'ssl.backbone.'``, ``'backbone.'``, then none (a
            backbone state dict); or an explicit prefix.

    Returns:
        ``(weights, used_prefix, kind)`` with ``kind`` ``'resnet_unet3d'`` or
        ``'genesis_unet3d'``.

    Raises:
        WeightConversionError: no 3-D backbone found, naming the key groups there are.
    """
    from dira_mm.models.utils.load_checked import strip_ddp_prefix  # models import utils
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not state:
        raise WeightConversionError('The checkpoint holds no state dict (expected a dict of '
                                    "tensors or {'state_dict': {...}}).")
    state = strip_ddp_prefix(state)
    candidates = UNET_PREFIXES + ('', ) if prefix == 'auto' else (prefix, )
    for cand in candidates:
        for kind, probe in _KINDS.items():
            value = state.get(cand + probe)
            if isinstance(value, Tensor) and value.dim() == 5:
                weights = OrderedDict((k[len(cand):], v) for k, v in state.items()
                                      if k.startswith(cand))
                return weights, cand, kind
    groups = sorted({'.'.join(k.split('.')[:2]) for k in state})
    two_d = any(isinstance(state.get(c + 'encoder.conv1.weight'), Tensor) for c in candidates)
    raise WeightConversionError(
        f'No 3-D backbone found under prefix {list(candidates)} (no 5-D '
        '"<prefix>encoder.conv1.weight" (ResNetUNet3D) or "<prefix>down_tr64.ops.0.conv1.'
        f'weight" (GenesisUNet3D)). Key groups: {groups[:30]}.'
        + (' This is a 2-D checkpoint: use tools/model_converters/extract_unet.py.'
           if two_d else ' Pass --prefix with the right one.'))


def to_format_3d(weights: StateDict, kind: str, fmt: str,
                 module_prefix: bool = False) -> dict:
    """Key the backbone weights for ``fmt`` (see the module docstring)."""
    if fmt not in FORMATS_3D:
        raise WeightConversionError(f'Unknown format "{fmt}"; choose one of {FORMATS_3D}.')
    if fmt not in _KIND_FORMATS[kind]:
        raise WeightConversionError(
            f'A {kind} backbone exports to {list(_KIND_FORMATS[kind])}, not "{fmt}".')
    if module_prefix and fmt != 'genesis':
        raise WeightConversionError('--module-prefix applies to --format genesis only.')
    if fmt == 'flexible_unet':
        if not any(k.startswith('decoder.') for k in weights):
            raise WeightConversionError(
                'The backbone has no decoder (with_decoder=False); FlexibleUNet needs one. '
                'Export the encoder with --format monai_resnet.')
        return OrderedDict(weights)
    if fmt == 'monai_resnet':
        return OrderedDict((k[len('encoder.'):], v) for k, v in weights.items()
                           if k.startswith('encoder.'))
    lead = 'module.' if module_prefix else ''
    return {'state_dict': OrderedDict((lead + k, v) for k, v in weights.items())}


def _resnet_args(encoder: StateDict) -> Tuple[str, int]:
    from dira_mm.models.backbones.resnet_unet3d import guess_resnet3d
    arch = guess_resnet3d(encoder)
    if arch is None:
        raise WeightConversionError('The encoder weights match none of MONAI\'s 3-D ResNets '
                                    '(resnet10 ... resnet200).')
    return arch, int(encoder['conv1.weight'].shape[1])


def _decoder_channels(weights: StateDict) -> Tuple[int, ...]:
    widths = {}
    for key, value in weights.items():
        match = re.fullmatch(r'decoder\.blocks\.(\d+)\.convs\.conv_0\.conv\.weight', key)
        if match:
            widths[int(match.group(1))] = int(value.shape[0])
    return tuple(widths[i] for i in sorted(widths))


def _upsample_mode(weights: StateDict) -> str:
    """FlexibleUNet's ``upsample`` read off the decoder keys (default ``'nontrainable'``)."""
    for mode in ('deconv', 'pixelshuffle'):
        if any(f'.upsample.{mode}.' in k for k in weights):
            return mode
    return 'nontrainable'


def _genesis_args(weights: StateDict) -> dict:
    return dict(in_channels=int(weights['down_tr64.ops.0.conv1.weight'].shape[1]),
                base_channels=int(weights['down_tr64.ops.0.conv1.weight'].shape[0]),
                act='prelu' if any(k.endswith('activation.weight') for k in weights)
                else 'relu',
                with_decoder=any(k.startswith('up_tr256.') for k in weights),
                out_channels=int(weights['out_tr.final_conv.weight'].shape[0])
                if 'out_tr.final_conv.weight' in weights else 1)


def _max_diff(a, b) -> float:
    if isinstance(a, (list, tuple)):
        return max(_max_diff(x, y) for x, y in zip(a, b))
    return float((a - b).abs().max())


@torch.no_grad()
def verify_converted_3d(converted: dict, kind: str, fmt: str,
                        backbone_weights: StateDict, size: int = 32,
                        seed: int = 0) -> Tuple[dict, str]:
    """Load ``converted`` into the target model and compare it with the dira_mm backbone.

    The backbone is rebuilt from ``backbone_weights`` (the exported checkpoint's
    backbone); both run in ``eval()`` on the same seeded ``(2, C, size, size, size)``
    volume. The report gets ``max_abs_diff`` and its text ends in a ``RESULT`` line.

    Raises:
        WeightConversionError: a key mismatch (the load report) or outputs that differ by
            more than :data:`TOLERANCE`.
    """
    from monai.networks import nets
    from monai.networks.nets.resnet import ResNetFeatures, resnet_params

    from dira_mm.models.backbones import GenesisUNet3D, ResNetUNet3D
    from dira_mm.models.utils.load_checked import load_checked

    check_finite(converted.get('state_dict', converted), 'The converted backbone')
    allowed_missing = []
    if fmt in ('flexible_unet', 'monai_resnet'):
        encoder = OrderedDict((k[len('encoder.'):], v) for k, v in backbone_weights.items()
                              if k.startswith('encoder.'))
        arch, in_ch = _resnet_args(encoder)
        if fmt == 'flexible_unet':
            out_ch = int(converted['segmentation_head.0.weight'].shape[0])
            dec, up = _decoder_channels(converted), _upsample_mode(converted)
            target = nets.FlexibleUNet(in_ch, out_ch, arch, spatial_dims=3,
                                       decoder_channels=dec, upsample=up)
            built = (f"monai.networks.nets.FlexibleUNet({in_ch}, {out_ch}, '{arch}', "
                     f"spatial_dims=3, decoder_channels={dec}, upsample='{up}')")
            ours = ResNetUNet3D(arch, in_ch, out_ch, dec, activation=None, upsample=up)
        else:
            _, _, shortcut, bias_down, _ = resnet_params[arch]
            target = getattr(nets, arch)(spatial_dims=3, n_input_channels=in_ch,
                                         conv1_t_stride=2, shortcut_type=shortcut,
                                         bias_downsample=bias_down)
            built = (f'monai.networks.nets.{arch}(spatial_dims=3, n_input_channels={in_ch}, '
                     f"conv1_t_stride=2, shortcut_type='{shortcut}', "
                     f'bias_downsample={bias_down})')
            allowed_missing = [r'fc\..*']
            ours = ResNetUNet3D(arch, in_ch, with_decoder=False)
            backbone_weights = OrderedDict(
                (k, v) for k, v in backbone_weights.items() if k.startswith('encoder.'))
    else:
        args = _genesis_args(backbone_weights)
        target = GenesisUNet3D(**args)
        built = 'UNet3D layout (GenesisUNet3D(' + ', '.join(
            f'{k}={v!r}' for k, v in args.items()) + '))'
        ours = GenesisUNet3D(**args)
        in_ch = args['in_channels']
    report = load_checked(target, converted, allowed_missing=allowed_missing,
                          what='converted weights', target=built, logger=None)
    load_checked(ours, backbone_weights, what='the dira_mm backbone', logger=None)
    target.eval()
    ours.eval()
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand((2, in_ch, size, size, size), generator=gen)
    if fmt == 'monai_resnet':
        got, want = ResNetFeatures.forward(target, x), ours.forward_encoder(x)
        compared = 'the 5 encoder feature maps'
    else:
        got, want = target(x), ours(x)
        compared = 'the U-Net output'
    diff = _max_diff(got, want)
    report['max_abs_diff'] = diff
    text = format_report(report, built) + (
        f'\nOutputs: {compared} of the target and of the dira_mm backbone on a seeded '
        f'(2, {in_ch}, {size}, {size}, {size}) volume differ by at most {diff:.3g} '
        f'(tolerance {TOLERANCE:g}).')
    if not diff <= TOLERANCE:
        raise WeightConversionError(text + '\nRESULT: ERROR (outputs differ)')
    return report, text + '\nRESULT: OK (outputs equal)'


def convert_checkpoint_3d(src: str, dst: str, fmt: str, prefix: str = 'auto',
                          module_prefix: bool = False, verify: bool = True) -> dict:
    """Read ``src`` safely (``weights_only=True``), export its 3-D backbone to ``dst``.

    Returns:
        dict with ``prefix``, ``kind``, ``num_keys``, ``report`` and ``report_text``
        (``None`` with ``verify=False``). Nothing is written when anything fails.
    """
    from mmengine.runner.checkpoint import CheckpointLoader

    from .checkpoint import register_safe_loader

    if fmt not in FORMATS_3D:
        raise WeightConversionError(f'Unknown format "{fmt}"; choose one of {FORMATS_3D}.')
    register_safe_loader()
    checkpoint = CheckpointLoader.load_checkpoint(src, map_location='cpu')
    weights, used, kind = find_backbone_3d(checkpoint, prefix)
    check_finite(weights, f'The {kind} backbone under "{used}"')
    converted = to_format_3d(weights, kind, fmt, module_prefix)
    report, text = None, None
    if verify:
        report, text = verify_converted_3d(converted, kind, fmt, weights)
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    state = converted.get('state_dict', converted)
    state = OrderedDict((k, v.detach().cpu().contiguous()) for k, v in state.items())
    torch.save({'state_dict': state} if fmt == 'genesis' else state, dst)
    return dict(prefix=used, kind=kind, num_keys=len(state), report=report,
                report_text=text)

