"""Read the encoder weights of a pre-training checkpoint for a downstream model.

Three sources are understood, whatever their file layout (a bare state dict or
``{'state_dict': ...}``, DDP ``module.`` prefixes stripped):

- a dira_mm pre-training checkpoint: the U-Net under ``ssl.backbone.`` (DiRA) or
  ``backbone.`` (a plain algorithm), found with :func:`~dira_mm.utils.convert.extract_unet`;
- an ``smp.Unet`` / smp encoder state dict (``encoder.*``, maybe ``decoder.*`` and
  ``segmentation_head.*``), e.g. the output of ``tools/model_converters/extract_unet.py``;
- a torchvision ResNet state dict (``conv1.*``, ``layer1.*``, ..., ``fc.*``).

All become smp key names (``encoder.*``, ...): :func:`unet_weights_from_checkpoint` gives
the whole U-Net (the segmentor's initialisation), :func:`encoder_weights_from_checkpoint`
splits off the parts a classifier has no use for, the U-Net decoder and reconstruction head
and torchvision's ``fc`` (the old task head), so that the key-match report can name them;
nothing is dropped silently. The weights are then loaded with
:func:`~dira_mm.models.utils.load_checked`.
"""
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Tuple

from torch import Tensor

from dira_mm.utils.convert import (SMP_DECODER_PREFIXES, SMP_ENCODER_PREFIXES, UNET_PREFIXES,
                                   WeightConversionError, extract_unet)
from .load_checked import strip_ddp_prefix

__all__ = ['read_pretrained', 'unet_weights_from_checkpoint', 'encoder_weights_from_checkpoint']

StateDict = Dict[str, Tensor]
#: parts of an smp/torchvision source that a classifier leaves unused (reported, not loaded):
#: the decoder prefixes of the backbone protocol and torchvision's ``fc`` (its old head)
UNUSED_PARTS = SMP_DECODER_PREFIXES + tuple(p + 'fc.' for p in SMP_ENCODER_PREFIXES)
_TORCHVISION_STEM = ('conv1.', 'bn1.', 'layer1.')


def read_pretrained(filename: str) -> dict:
    """Load ``filename`` (a local path, ``http(s)://`` or ``torchvision://NAME``) with
    ``weights_only=True`` through dira_mm's safe mmengine loader."""
    from mmengine.runner.checkpoint import CheckpointLoader

    from dira_mm.utils.checkpoint import register_safe_loader

    register_safe_loader()
    return CheckpointLoader.load_checkpoint(filename, map_location='cpu')


def unet_weights_from_checkpoint(checkpoint: dict, prefix: str = 'auto',
                                 encoder_prefixes: Sequence[str] = SMP_ENCODER_PREFIXES
                                 ) -> Tuple[StateDict, str, str]:
    """All U-Net weights of ``checkpoint`` keyed as smp's U-Net, and where they came from.

    Args:
        checkpoint: a loaded checkpoint or state dict (DDP ``module.`` prefixes allowed).
        prefix: where the U-Net lives in a dira_mm checkpoint; ``'auto'`` tries
            ``'ssl.backbone.'`` then ``'backbone.'``, and else takes the file as an smp or
            torchvision state dict.
        encoder_prefixes: the backbone's encoder prefixes (``backbone.encoder_prefixes``
            of the protocol); smp's ``('encoder.',)`` by default. With other prefixes
            only the dira_mm layout (and a bare state dict in the backbone's own keys) is
            recognised: the smp and torchvision layouts are ResNet U-Net layouts.

    Returns:
        ``(unet, source, used_prefix)``: the weights (``encoder.*``, maybe ``decoder.*``
        and ``segmentation_head.*``), a description of the source format, and the prefix
        the U-Net had (``''`` for smp and torchvision files).

    Raises:
        WeightConversionError: the file is no state dict, or no known layout fits; the
            message lists the key groups it has.
    """
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not state or \
            not all(isinstance(v, Tensor) for v in state.values()):
        raise WeightConversionError(
            'The checkpoint holds no state dict of tensors (expected a dict of tensors or '
            "{'state_dict': {...}}).")
    state = strip_ddp_prefix(state)
    encoder_prefixes = tuple(encoder_prefixes)
    dira_layout = prefix != 'auto' or any(
        k.startswith(tuple(p + e for e in encoder_prefixes)) for p in UNET_PREFIXES
        for k in state)
    if dira_layout:
        unet, used = extract_unet({'state_dict': state}, prefix, encoder_prefixes)
        source = f'dira_mm pre-training checkpoint (U-Net under "{used}")'
        return unet, source, used
    if encoder_prefixes != SMP_ENCODER_PREFIXES:
        if any(k.startswith(encoder_prefixes) for k in state):
            return state, f'state dict in the backbone\'s own keys ({encoder_prefixes[0]}*)', ''
    elif any(k.startswith(encoder_prefixes) for k in state):
        return state, 'smp state dict (encoder.*)', ''
    if encoder_prefixes == SMP_ENCODER_PREFIXES and any(
            k.startswith(_TORCHVISION_STEM) for k in state):
        unet = OrderedDict(('encoder.' + k, v) for k, v in state.items())
        return unet, 'torchvision ResNet state dict', ''
    groups = sorted({'.'.join(k.split('.')[:2]) for k in state})
    raise WeightConversionError(
        'No U-Net found. Unknown checkpoint layout: no "ssl.backbone.encoder.*", '
        '"backbone.encoder.*", "encoder.*" (smp) or "conv1.*"/"layer1.*" (torchvision) '
        f'keys. Key groups: {groups[:30]}. Set the prefix of the U-Net in the checkpoint '
        '(model.pretrained_prefix / model.prefix) if it lives elsewhere.')


def encoder_weights_from_checkpoint(checkpoint: dict, prefix: str = 'auto',
                                    encoder_prefixes: Sequence[str] = SMP_ENCODER_PREFIXES,
                                    decoder_prefixes: Optional[Sequence[str]] = None
                                    ) -> Tuple[StateDict, StateDict, str]:
    """The encoder weights of ``checkpoint`` (smp keys), the rest, and the source format.

    Args:
        checkpoint: a loaded checkpoint or state dict.
        prefix: see :func:`unet_weights_from_checkpoint`.
        encoder_prefixes, decoder_prefixes: the backbone's (protocol); smp's by default.
            Keys under the decoder prefixes and torchvision's ``fc`` are "unused".

    Returns:
        ``(weights, unused, source)``: the encoder weights (``encoder.*``), the weights a
        classifier has no use for (U-Net decoder and head, torchvision ``fc``; smp
        names), and a description of the source format.

    Raises:
        WeightConversionError: see :func:`unet_weights_from_checkpoint`.
    """
    unet, source, _ = unet_weights_from_checkpoint(checkpoint, prefix, encoder_prefixes)
    if decoder_prefixes is None and tuple(encoder_prefixes) == SMP_ENCODER_PREFIXES:
        parts = UNUSED_PARTS
    else:
        parts = tuple(decoder_prefixes or ()) + tuple(p + 'fc.' for p in encoder_prefixes)
    weights = OrderedDict((k, v) for k, v in unet.items() if not k.startswith(parts))
    unused = OrderedDict((k, v) for k, v in unet.items() if k.startswith(parts))
    return weights, unused, source
