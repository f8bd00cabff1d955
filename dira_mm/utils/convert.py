"""Export the pre-trained U-Net of a dira_mm checkpoint for downstream use.

A DiRA checkpoint holds the whole composition (``ssl.backbone.*`` is the U-Net, plus
the neck, the momentum encoder, the queue and the discriminator); a plain algorithm
checkpoint holds ``backbone.*``. Downstream code wants only the U-Net, keyed as
``segmentation_models_pytorch.Unet`` (``encoder.*``, ``decoder.*``,
``segmentation_head.*``) or, for classification, the encoder keyed as torchvision's
ResNet; timm's ``resnet*`` models use the same names (``conv1``, ``bn1``, ``layer*``,
``fc``), so the ``timm`` format is that encoder, checked against
``timm.create_model(arch, num_classes=0)``. :func:`verify_converted` loads the result
into the target model and refuses any mismatch beyond the task head, so a partial load is
never silent.
"""
import os
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

__all__ = [
    'WeightConversionError', 'UNET_PREFIXES', 'SMP_ENCODER_PREFIXES', 'SMP_DECODER_PREFIXES',
    'find_unet_prefix', 'extract_unet',
    'to_format', 'build_target_model', 'compare_state_dicts', 'format_report',
    'check_finite', 'guess_resnet_arch', 'verify_converted', 'convert_checkpoint'
]

#: Prefixes tried by ``prefix='auto'``, in order: DiRA models, then plain algorithms.
UNET_PREFIXES = ('ssl.backbone.', 'backbone.')
FORMATS = ('smp', 'torchvision', 'timm')
#: The backbone-protocol prefixes (``BaseEncoderDecoder.encoder_prefixes`` /
#: ``decoder_prefixes``) of the smp U-Net layout, i.e. of ``ResNetUNet``, which takes its
#: own from here; the smp / torchvision / timm formats are this layout. Functions that
#: split a checkpoint into encoder and decoder take the prefixes of another backbone.
SMP_ENCODER_PREFIXES = ('encoder.', )
SMP_DECODER_PREFIXES = ('decoder.', 'segmentation_head.')
_UNET_PARTS = SMP_ENCODER_PREFIXES + SMP_DECODER_PREFIXES

StateDict = Dict[str, Tensor]


class WeightConversionError(RuntimeError):
    """The checkpoint cannot be converted, or the result does not fit the target model."""


def _state_dict_of(checkpoint: dict) -> StateDict:
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get('state_dict'), dict):
        return checkpoint['state_dict']
    return checkpoint


def find_unet_prefix(state_dict: StateDict, prefix: str = 'auto',
                     encoder_prefixes: Sequence[str] = SMP_ENCODER_PREFIXES) -> str:
    """The key prefix under which the U-Net lives.

    Args:
        state_dict: the model state dict of a dira_mm checkpoint.
        prefix: ``'auto'`` (``'ssl.backbone.'`` for DiRA models, else ``'backbone.'``)
            or an explicit prefix such as ``'backbone.'``.
        encoder_prefixes: the backbone's encoder prefixes (protocol); smp's by default.

    Raises:
        WeightConversionError: no ``<prefix><encoder prefix>*`` key exists; the message
            lists the top-level key groups that do exist.
    """
    candidates = UNET_PREFIXES if prefix == 'auto' else (prefix, )
    encoder_prefixes = tuple(encoder_prefixes)
    for cand in candidates:
        heads = tuple(cand + p for p in encoder_prefixes)
        if any(k.startswith(heads) for k in state_dict):
            return cand
    groups = sorted({'.'.join(k.split('.')[:2]) for k in state_dict})
    shown = '|'.join(p.rstrip('.') for p in encoder_prefixes)
    raise WeightConversionError(
        f'No U-Net found under prefix {list(candidates)} (no "<prefix>{shown}.*" key). '
        f'Key groups in the checkpoint: {groups[:30]}. Pass --prefix with the right one.')


def extract_unet(checkpoint: dict, prefix: str = 'auto',
                 encoder_prefixes: Sequence[str] = SMP_ENCODER_PREFIXES
                 ) -> Tuple[StateDict, str]:
    """The U-Net's weights with the prefix stripped (the backbone's own key names, smp's
    for ``ResNetUNet``) and the prefix used."""
    state_dict = _state_dict_of(checkpoint)
    used = find_unet_prefix(state_dict, prefix, encoder_prefixes)
    unet = OrderedDict((k[len(used):], v) for k, v in state_dict.items()
                       if k.startswith(used))
    return unet, used


def to_format(unet: StateDict, fmt: str = 'smp', drop_head: bool = False) -> StateDict:
    """Key the U-Net weights for ``fmt``.

    Args:
        unet: U-Net weights with smp keys (see :func:`extract_unet`).
        fmt: ``'smp'`` (the whole U-Net, ``smp.Unet`` keys), ``'torchvision'`` or
            ``'timm'`` (the encoder only, ``encoder.`` stripped: torchvision's ResNet keys,
            which timm's ResNet shares).
        drop_head: ``smp`` only: leave out ``segmentation_head.*`` (the reconstruction
            head is rarely wanted for a new task).
    """
    head = SMP_DECODER_PREFIXES[-1]  # segmentation_head.
    (encoder, ) = SMP_ENCODER_PREFIXES
    if fmt == 'smp':
        return OrderedDict((k, v) for k, v in unet.items()
                           if not (drop_head and k.startswith(head)))
    if fmt in ('torchvision', 'timm'):
        return OrderedDict((k[len(encoder):], v) for k, v in unet.items()
                           if k.startswith(encoder))
    raise WeightConversionError(f'Unknown format "{fmt}"; choose one of {FORMATS}.')


def _smp_kwargs(state_dict: StateDict) -> dict:
    """smp.Unet arguments read off the weights (head classes, input and decoder sizes)."""
    kwargs: dict = {}
    head = state_dict.get('segmentation_head.0.weight')
    if head is not None:
        kwargs['classes'] = int(head.shape[0])
    conv1 = state_dict.get('encoder.conv1.weight')
    if conv1 is not None:
        kwargs['in_channels'] = int(conv1.shape[1])
    blocks = {}
    for key, value in state_dict.items():
        match = re.fullmatch(r'decoder\.blocks\.(\d+)\.conv1\.0\.weight', key)
        if match:
            blocks[int(match.group(1))] = int(value.shape[0])
    if blocks and sorted(blocks) == list(range(len(blocks))):
        kwargs['encoder_depth'] = len(blocks)
        kwargs['decoder_channels'] = tuple(blocks[i] for i in range(len(blocks)))
    return kwargs


def build_target_model(fmt: str, arch: str,
                       state_dict: Optional[StateDict] = None) -> Tuple[nn.Module, str]:
    """The model the converted weights are meant for, and how it was built (text).

    ``smp``: ``smp.Unet(arch, encoder_weights=None, classes=...)`` with the classes, input
    channels and decoder widths read off ``state_dict`` (default ``classes=1``);
    ``torchvision``: ``torchvision.models.<arch>()``; ``timm``:
    ``timm.create_model(arch, pretrained=False, num_classes=0, in_chans=...)`` (no head; the
    input channels read off ``conv1.weight``).
    """
    if fmt == 'smp':
        import segmentation_models_pytorch as smp
        kwargs = dict(classes=1)
        kwargs.update(_smp_kwargs(state_dict or {}))
        text = ', '.join(f'{k}={v!r}' for k, v in kwargs.items())
        return (smp.Unet(arch, encoder_weights=None, **kwargs),
                f"smp.Unet('{arch}', encoder_weights=None, {text})")
    if fmt == 'torchvision':
        import torchvision
        if not hasattr(torchvision.models, arch):
            raise WeightConversionError(f'torchvision.models has no "{arch}".')
        return getattr(torchvision.models, arch)(), f'torchvision.models.{arch}()'
    if fmt == 'timm':
        import timm
        if not timm.is_model(arch):
            raise WeightConversionError(f'timm has no model "{arch}".')
        conv1 = (state_dict or {}).get('conv1.weight')
        in_chans = int(conv1.shape[1]) if conv1 is not None and conv1.dim() == 4 else 3
        return (timm.create_model(arch, pretrained=False, num_classes=0, in_chans=in_chans),
                f"timm.create_model('{arch}', pretrained=False, num_classes=0, "
                f'in_chans={in_chans})')
    raise WeightConversionError(f'Unknown format "{fmt}"; choose one of {FORMATS}.')


def compare_state_dicts(converted: StateDict, target: StateDict,
                        allowed_missing: Sequence[str] = (),
                        allowed_unexpected: Sequence[str] = ()) -> dict:
    """Key-by-key comparison of ``converted`` with a target model's state dict.

    Args:
        converted: the converted weights.
        target: ``model.state_dict()`` of the target model.
        allowed_missing: regular expressions (full match) of target keys that may be
            missing (the task head).
        allowed_unexpected: regular expressions of ``converted`` keys the target may lack
            (reported as ``allowed_unexpected`` and not loaded).

    Returns:
        dict with ``matched``, ``missing``, ``allowed_missing``, ``unexpected``,
        ``allowed_unexpected`` and ``shape_mismatch`` (lists of keys; the last as
        ``(key, got, expected)``) and ``ok`` (no mismatch beyond the allowed keys).
    """
    matched, missing, allowed, mismatch = [], [], [], []
    for key, value in target.items():
        if key not in converted:
            if any(re.fullmatch(p, key) for p in allowed_missing):
                allowed.append(key)
            else:
                missing.append(key)
        elif tuple(converted[key].shape) != tuple(value.shape):
            mismatch.append((key, tuple(converted[key].shape), tuple(value.shape)))
        else:
            matched.append(key)
    extra = [k for k in converted if k not in target]
    extra_ok = [k for k in extra if any(re.fullmatch(p, k) for p in allowed_unexpected)]
    unexpected = [k for k in extra if k not in set(extra_ok)]
    return dict(matched=matched, missing=missing, allowed_missing=allowed,
                unexpected=unexpected, allowed_unexpected=extra_ok,
                shape_mismatch=mismatch, ok=not (missing or unexpected or mismatch))


def format_report(report: dict, target: str = 'target model', limit: int = 20) -> str:
    """Human-readable key-match report of :func:`compare_state_dicts`."""

    def show(keys: List) -> str:
        more = f' ... (+{len(keys) - limit} more)' if len(keys) > limit else ''
        return ''.join(f'\n      {k}' for k in keys[:limit]) + more

    lines = [f'Key match against {target}:',
             f'  matched:        {len(report["matched"])}',
             f'  missing:        {len(report["missing"])}{show(report["missing"])}',
             f'  unexpected:     {len(report["unexpected"])}{show(report["unexpected"])}',
             f'  shape mismatch: {len(report["shape_mismatch"])}'
             + show([f'{k}: got {g}, expected {e}' for k, g, e in report['shape_mismatch']])]
    if report['allowed_missing']:
        lines.append('  allowed missing (left as initialised, e.g. a new task head): '
                     + _short(report['allowed_missing'], limit))
    if report.get('allowed_unexpected'):
        lines.append('  not loaded (allowed, not in the target): '
                     + _short(report['allowed_unexpected'], limit))
    lines.append('RESULT: '
                 + ('OK' if report['ok'] else 'ERROR (mismatch beyond the allowed keys)'))
    return '\n'.join(lines)


def _short(keys: List[str], limit: int) -> str:
    """The keys, or their groups with counts when there are more than a few."""
    if len(keys) <= 6:
        return ', '.join(keys)
    depth = 2 if len({k.split('.')[0] for k in keys}) == 1 else 1
    groups: Dict[str, int] = {}
    for key in keys:
        group = '.'.join(key.split('.')[:depth]) + '.*'
        groups[group] = groups.get(group, 0) + 1
    shown = [f'{g} ({n})' for g, n in list(groups.items())[:limit]]
    return ', '.join(shown) + (f' ... (+{len(groups) - limit} more groups)'
                               if len(groups) > limit else '')


def check_finite(state_dict: StateDict, what: str = 'checkpoint') -> None:
    """Refuse weights with NaN or Inf values.

    Raises:
        WeightConversionError: naming the first non-finite tensor, how many of its values
            are NaN / Inf, and how many tensors are affected.
    """
    bad = [(k, v) for k, v in state_dict.items()
           if torch.is_floating_point(v) and not bool(torch.isfinite(v).all())]
    if bad:
        key, value = bad[0]
        nan, inf = int(torch.isnan(value).sum()), int(torch.isinf(value).sum())
        raise WeightConversionError(
            f'{what} holds non-finite weights: "{key}" has {nan} NaN and {inf} Inf of '
            f'{value.numel()} values ({len(bad)} of {len(state_dict)} tensors are non-finite). '
            'The run diverged; export an earlier checkpoint from before the loss became NaN.')


#: torchvision's ResNet family (whose names smp and timm share): block type, blocks per
#: stage, width of layer1's first conv and input channels per group of its 3x3 conv
RESNET_ARCHS = {
    'resnet18': ('basic', (2, 2, 2, 2), 64, 64),
    'resnet34': ('basic', (3, 4, 6, 3), 64, 64),
    'resnet50': ('bottleneck', (3, 4, 6, 3), 64, 64),
    'resnet101': ('bottleneck', (3, 4, 23, 3), 64, 64),
    'resnet152': ('bottleneck', (3, 8, 36, 3), 64, 64),
    'resnext50_32x4d': ('bottleneck', (3, 4, 6, 3), 128, 4),
    'resnext101_32x8d': ('bottleneck', (3, 4, 23, 3), 256, 8),
    'resnext101_64x4d': ('bottleneck', (3, 4, 23, 3), 256, 4),
    'wide_resnet50_2': ('bottleneck', (3, 4, 6, 3), 128, 128),
    'wide_resnet101_2': ('bottleneck', (3, 4, 23, 3), 128, 128),
}


def _resnet_signature(state_dict: StateDict) -> Optional[tuple]:
    """``RESNET_ARCHS``-style signature of a ResNet encoder's weights (smp or torchvision
    keys), or None when they are no plain-stem ResNet."""
    state = {k[len('encoder.'):] if k.startswith('encoder.') else k: v
             for k, v in state_dict.items()}
    conv1, conv2 = state.get('layer1.0.conv1.weight'), state.get('layer1.0.conv2.weight')
    if 'conv1.weight' not in state or conv1 is None or conv2 is None or conv2.dim() != 4:
        return None
    counts = []
    for stage in range(1, 5):
        blocks = {int(m.group(1)) for k in state
                  for m in [re.match(rf'layer{stage}\.(\d+)\.', k)] if m}
        counts.append(len(blocks))
    block = 'bottleneck' if 'layer1.0.conv3.weight' in state else 'basic'
    return block, tuple(counts), int(conv1.shape[0]), int(conv2.shape[1])


def _describe(signature: tuple) -> str:
    block, counts, width, group_in = signature
    groups = f', {width // group_in} groups' if group_in != width and block == 'bottleneck' \
        else ''
    return f'{block} blocks {list(counts)}, width {width}{groups}'


def guess_resnet_arch(state_dict: StateDict) -> Optional[str]:
    """The ResNet of :data:`RESNET_ARCHS` whose structure the weights have, or None."""
    signature = _resnet_signature(state_dict)
    return next((a for a, s in RESNET_ARCHS.items() if s == signature), None)


def _wrong_arch_error(report: dict, converted: StateDict, arch: str, built: str,
                      examples: int = 2) -> Optional[WeightConversionError]:
    """A short error when ``converted`` is a known ResNet other than ``arch``, else None."""
    guess = guess_resnet_arch(converted)
    if guess is None or guess == arch.split('.')[0]:
        return None
    expected = RESNET_ARCHS.get(arch.split('.')[0])
    lines = [f'The checkpoint looks like {guess}, not {arch}: its encoder has '
             f'{_describe(RESNET_ARCHS[guess])}'
             + (f' ({arch}: {_describe(expected)})' if expected else '')
             + f'. Use --verify-arch {guess}, and a {guess} backbone downstream.',
             f'Key match against {built}: {len(report["matched"])} matched, '
             f'{len(report["missing"])} missing, {len(report["unexpected"])} unexpected, '
             f'{len(report["shape_mismatch"])} shape mismatch; for example:']
    kinds = (('missing', report['missing']), ('unexpected', report['unexpected']),
             ('shape mismatch', [f'{k}: got {g}, expected {e}'
                                 for k, g, e in report['shape_mismatch']]))
    lines += [f'  {kind}: {key}' for kind, keys in kinds for key in keys[:examples]]
    lines.append('RESULT: ERROR (another architecture)')
    return WeightConversionError('\n'.join(lines))


def verify_converted(converted: StateDict, fmt: str, arch: str,
                     drop_head: bool = False) -> Tuple[dict, str]:
    """Load ``converted`` into the target model; return the report and its text.

    Only the task head may be missing: ``fc.*`` for torchvision (timm's model is built
    without one), ``segmentation_head.*`` for smp when ``drop_head`` is set; anything else
    raises.

    Non-finite weights are refused first (:func:`check_finite`). When the weights are a
    ResNet of another depth or width than ``arch``, the error says which one they look like
    (:func:`guess_resnet_arch`) and quotes a few keys instead of the whole report.

    Raises:
        WeightConversionError: with the key-match report as the message.
    """
    check_finite(converted, 'The converted U-Net')
    model, built = build_target_model(fmt, arch, converted)
    if fmt in ('torchvision', 'timm'):
        allowed = [r'fc\..*']
    else:
        allowed = [r'segmentation_head\..*'] if drop_head else []
    from dira_mm.models.utils.load_checked import load_checked  # models import this module

    try:
        report = load_checked(model, converted, allowed_missing=allowed,
                              what='converted weights', target=built, logger=None)
    except WeightConversionError as err:
        short = _wrong_arch_error(err.report, converted, arch, built)
        if short is None:
            raise
        raise short from None
    return report, format_report(report, built)


def convert_checkpoint(src: str, dst: str, fmt: str = 'smp', prefix: str = 'auto',
                       verify_arch: Optional[str] = None,
                       drop_head: bool = False) -> dict:
    """Read ``src`` safely, write the converted plain state dict to ``dst``.

    The checkpoint is read through mmengine's ``CheckpointLoader`` with dira_mm's safe
    loader (``weights_only=True``); the output is a plain ``dict`` of tensors. Weights with
    NaN or Inf values are refused (nothing is written).

    Returns:
        dict with ``prefix`` (used), ``num_keys``, ``report`` and ``report_text``
        (``None`` without ``verify_arch``).
    """
    from mmengine.runner.checkpoint import CheckpointLoader

    from .checkpoint import register_safe_loader

    if fmt not in FORMATS:
        raise WeightConversionError(f'Unknown format "{fmt}"; choose one of {FORMATS}.')
    if drop_head and fmt != 'smp':
        raise WeightConversionError('--drop-head applies to --format smp only (torchvision '
                                    'and timm output holds the encoder only).')
    register_safe_loader()
    checkpoint = CheckpointLoader.load_checkpoint(src, map_location='cpu')
    unet, used = extract_unet(checkpoint, prefix)
    converted = to_format(unet, fmt, drop_head=drop_head)
    check_finite(converted, f'The U-Net under "{used}"')
    report, text = None, None
    if verify_arch:
        report, text = verify_converted(converted, fmt, verify_arch, drop_head)
    out_dir = os.path.dirname(os.path.abspath(dst))
    os.makedirs(out_dir, exist_ok=True)
    torch.save({k: v.detach().cpu().contiguous() for k, v in converted.items()}, dst)
    return dict(prefix=used, num_keys=len(converted), report=report, report_text=text)
