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

Every export is verified. ``flexible_unet`` / ``monai_resnet``: the result is loaded into
the MONAI model through :func:`~dira_mm.models.utils.load_checked` (no missing or
unexpected key beyond ``fc``) and the target's output (features for ``monai_resnet``) is
compared with the dira_mm backbone's on a seeded random volume. ``genesis``: no model of
the official ``UNet3D`` independent of ``GenesisUNet3D`` ships with the package (comparing
``GenesisUNet3D`` with itself would prove nothing), so the keys and shapes are checked
strictly against the official layout, written out here from the published structure, and
no output is compared; the activation (ReLU or ELU) has no weights, so it cannot be read
off the checkpoint and is only stated (``act``). NaN/Inf weights are refused
(:func:`~dira_mm.utils.convert.check_finite`).
"""
import os
import re
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from .convert import (UNET_PREFIXES, WeightConversionError, check_finite,
                      compare_state_dicts, format_report)

__all__ = ['FORMATS_3D', 'find_backbone_3d', 'to_format_3d', 'verify_converted_3d',
           'convert_checkpoint_3d', 'genesis_layout']

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


_GENESIS_ACTS = ('relu', 'prelu', 'elu')


def genesis_layout(in_channels: int, base_channels: int, out_channels: int, prelu: bool,
                   with_decoder: bool) -> 'OrderedDict[str, Tuple[int, ...]]':
    """Key -> shape of the official Models Genesis ``UNet3D`` state dict.

    Written out from the published structure (``unet3d.py``: ``LUConv`` = ``conv1``
    (3x3x3, bias), ``bn1`` (BatchNorm3d), ``activation`` (weights only for PReLU);
    ``DownTransition(in, depth)`` = ``ops`` of ``LUConv(in, b 2^depth)``, ``LUConv(b
    2^depth, b 2^(depth+1))``; ``UpTransition(c, c, depth)`` = ``up_conv`` (2x transposed,
    c -> c) and ``ops`` of two ``LUConv`` to ``b 2^(depth+1)`` from ``c + c/2``;
    ``out_tr.final_conv`` 1x1x1), without :class:`GenesisUNet3D`, so that an export is
    checked against the official layout, not against the code that wrote it.
    ``base_channels`` is the official 32.
    """
    b = base_channels
    layout: 'OrderedDict[str, Tuple[int, ...]]' = OrderedDict()

    def lu(name: str, cin: int, cout: int) -> None:
        layout[f'{name}.conv1.weight'] = (cout, cin, 3, 3, 3)
        layout[f'{name}.conv1.bias'] = (cout, )
        for buf in ('weight', 'bias', 'running_mean', 'running_var'):
            layout[f'{name}.bn1.{buf}'] = (cout, )
        layout[f'{name}.bn1.num_batches_tracked'] = ()
        if prelu:
            layout[f'{name}.activation.weight'] = (cout, )

    for depth, (name, cin) in enumerate((('down_tr64', in_channels), ('down_tr128', 2 * b),
                                         ('down_tr256', 4 * b), ('down_tr512', 8 * b))):
        lu(f'{name}.ops.0', cin, b * 2**depth)
        lu(f'{name}.ops.1', b * 2**depth, b * 2**(depth + 1))
    if with_decoder:
        for depth, name in ((2, 'up_tr256'), (1, 'up_tr128'), (0, 'up_tr64')):
            c, width = b * 2**(depth + 2), b * 2**(depth + 1)
            layout[f'{name}.up_conv.weight'] = (c, c, 2, 2, 2)
            layout[f'{name}.up_conv.bias'] = (c, )
            lu(f'{name}.ops.0', c + c // 2, width)
            lu(f'{name}.ops.1', width, width)
        layout['out_tr.final_conv.weight'] = (out_channels, 2 * b, 1, 1, 1)
        layout['out_tr.final_conv.bias'] = (out_channels, )
    return layout


def _genesis_args(weights: StateDict) -> dict:
    """What the weights determine: widths, PReLU or not, decoder or not (not ReLU vs ELU)."""
    return dict(in_channels=int(weights['down_tr64.ops.0.conv1.weight'].shape[1]),
                base_channels=int(weights['down_tr64.ops.0.conv1.weight'].shape[0]),
                prelu=any(k.endswith('activation.weight') for k in weights),
                with_decoder=any(k.startswith('up_tr256.') for k in weights),
                out_channels=int(weights['out_tr.final_conv.weight'].shape[0])
                if 'out_tr.final_conv.weight' in weights else 1)


def _verify_genesis(converted: dict, act: Optional[str]) -> Tuple[dict, str]:
    """Strict key and shape check of a ``genesis`` export against :func:`genesis_layout`;
    no output comparison (see the module docstring)."""
    from dira_mm.models.utils.load_checked import strip_ddp_prefix
    state = strip_ddp_prefix(converted.get('state_dict', converted))
    args = _genesis_args(state)
    if act is not None and act not in _GENESIS_ACTS:
        raise WeightConversionError(f'--act must be one of {_GENESIS_ACTS}, got {act!r}.')
    if act is not None and (act == 'prelu') != args['prelu']:
        raise WeightConversionError(
            f'--act {act} does not fit the weights: they have '
            f'{"" if args["prelu"] else "no "}PReLU weights (activation.weight).')
    expected = OrderedDict((k, torch.empty(shape, device='meta'))
                           for k, shape in genesis_layout(**args).items())
    report = compare_state_dicts(state, expected)
    built = ('the official Models Genesis UNet3D layout (in_channels={in_channels}, '
             'base_channels={base_channels} (official 32), n_class={out_channels}, '
             '{dec})').format(dec='with decoder' if args['with_decoder'] else 'encoder only',
                              **args)
    text = format_report(report, built)
    if not report['ok']:
        raise WeightConversionError(text)
    if args['prelu']:
        stated = 'prelu (its weights are in the checkpoint)'
    elif act is None:
        stated = ('not stored in the weights: ReLU (official default) and ELU have none; '
                  'build the target with the act the model was trained with (--act states '
                  'it)')
    else:
        stated = f'{act} as stated by --act (ReLU and ELU have no weights to check it by)'
    report['act'] = 'prelu' if args['prelu'] else act
    return report, text + (
        '\nOutputs: not compared (no model of the official UNet3D independent of '
        'GenesisUNet3D ships with dira_mm); the keys and shapes above were checked against '
        f'the official layout.\nActivation: {stated}.'
        '\nRESULT: OK (key layout checked; outputs not compared)')


def _max_diff(a, b) -> float:
    if isinstance(a, (list, tuple)):
        return max(_max_diff(x, y) for x, y in zip(a, b))
    return float((a - b).abs().max())


@torch.no_grad()
def verify_converted_3d(converted: dict, kind: str, fmt: str,
                        backbone_weights: StateDict, size: int = 32,
                        seed: int = 0, act: Optional[str] = None) -> Tuple[dict, str]:
    """Load ``converted`` into the target model and compare it with the dira_mm backbone.

    The backbone is rebuilt from ``backbone_weights`` (the exported checkpoint's
    backbone); both run in ``eval()`` on the same seeded ``(2, C, size, size, size)``
    volume. The report gets ``max_abs_diff`` and its text ends in a ``RESULT`` line.
    ``genesis``: keys and shapes against :func:`genesis_layout` only, outputs not
    compared; ``act`` (``'relu'``, ``'prelu'``, ``'elu'``) is stated in the report and
    checked where the weights can tell (PReLU has weights).

    Raises:
        WeightConversionError: a key mismatch (the load report) or outputs that differ by
            more than :data:`TOLERANCE`.
    """
    from monai.networks import nets
    from monai.networks.nets.resnet import ResNetFeatures, resnet_params

    from dira_mm.models.backbones import ResNetUNet3D
    from dira_mm.models.utils.load_checked import load_checked

    check_finite(converted.get('state_dict', converted), 'The converted backbone')
    if fmt == 'genesis':
        return _verify_genesis(converted, act)
    if act is not None:
        raise WeightConversionError('--act applies to --format genesis only.')
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
                          module_prefix: bool = False, verify: bool = True,
                          act: Optional[str] = None) -> dict:
    """Read ``src`` safely (``weights_only=True``), export its 3-D backbone to ``dst``.

    ``act``: ``genesis`` only, the activation the model was trained with (not stored in
    the weights), stated in the report.

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
        report, text = verify_converted_3d(converted, kind, fmt, weights, act=act)
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    state = converted.get('state_dict', converted)
    state = OrderedDict((k, v.detach().cpu().contiguous()) for k, v in state.items())
    torch.save({'state_dict': state} if fmt == 'genesis' else state, dst)
    return dict(prefix=used, kind=kind, num_keys=len(state), report=report,
                report_text=text)

