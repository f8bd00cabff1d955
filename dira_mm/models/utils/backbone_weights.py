"""Reading a pre-training checkpoint for a downstream model's backbone, 2-D or 3-D.

- :func:`unet_weights_for`: the backbone's weights in its own keys, whatever the file:
  Models Genesis / TransVW files (``module.``, TransVW's ``classficationNet.``) for
  :class:`~dira_mm.models.backbones.GenesisUNet3D` through its own reader, dira_mm
  checkpoints (``ssl.backbone.*``, ``backbone.*``), smp / torchvision files.
- :func:`check_dimensionality`: a 2-D checkpoint given to a 3-D backbone (or the reverse)
  is refused with one clear message, before the key-by-key report (whose shape mismatches
  would say the same less plainly): ResNetUNet3D has torchvision's key names, so a 2-D
  encoder matches every key and differs only in the kernels' rank.
"""
from typing import Dict, Tuple

from torch import Tensor

from dira_mm.utils.convert import WeightConversionError
from .pretrained import unet_weights_from_checkpoint

__all__ = ['unet_weights_for', 'check_dimensionality', 'uses_genesis_layout']


def uses_genesis_layout(backbone) -> bool:
    """Whether ``backbone`` has Models Genesis' ``UNet3D`` keys (its reader applies)."""
    from ..backbones.genesis_unet3d import GENESIS_ENCODER_PREFIXES
    return tuple(getattr(backbone, 'encoder_prefixes', ())) == GENESIS_ENCODER_PREFIXES


def unet_weights_for(backbone, checkpoint: dict, prefix: str = 'auto'
                     ) -> Tuple[Dict[str, Tensor], str]:
    """``(weights, source)``: the U-Net of ``checkpoint`` keyed as ``backbone``'s state dict
    (foreign keys kept for the caller's report) and a description of the source.

    Raises:
        WeightConversionError: no U-Net of this backbone's layout in the checkpoint.
    """
    if uses_genesis_layout(backbone):
        from ..backbones.genesis_unet3d import genesis_weights_from_checkpoint
        weights, notes = genesis_weights_from_checkpoint(checkpoint, prefix, 'checkpoint')
        return dict(weights), 'Models Genesis UNet3D layout' + (
            f' ({"; ".join(notes)})' if notes else '')
    unet, source, _ = unet_weights_from_checkpoint(checkpoint, prefix,
                                                   backbone.encoder_prefixes)
    return dict(unet), source


def check_dimensionality(backbone, weights: Dict[str, Tensor], what: str) -> None:
    """Refuse weights whose convolution kernels have another number of spatial axes than
    ``backbone``'s (a 2-D checkpoint for a 3-D model, or the reverse).

    Raises:
        WeightConversionError: naming the first such key, both shapes and what to do.
    """
    own = backbone.state_dict()
    for key, value in weights.items():
        mine = own.get(key)
        if mine is None or not key.endswith('weight') or mine.dim() < 4 or \
                value.dim() == mine.dim():
            continue
        if value.dim() not in (4, 5):
            continue
        ckpt_dims, model_dims = value.dim() - 2, mine.dim() - 2
        hint = ('Use a 3-D pre-training checkpoint (a 3-D config: configs/dira3d, '
                'configs/genesis, configs/transvw)')
        if ckpt_dims == 2 and hasattr(backbone, 'inflate'):
            hint += (', or inflate the 2-D encoder into this one: model.backbone.inflate_from='
                     '<the 2-D checkpoint> and model.pretrained=None')
        if ckpt_dims == 3:
            hint = 'Use a 2-D pre-training checkpoint for a 2-D model (or a 3-D backbone)'
        raise WeightConversionError(
            f'{what} is a {ckpt_dims}-D checkpoint ("{key}" is {tuple(value.shape)}) but '
            f'the backbone ({backbone.arch_name}) is {model_dims}-D ({tuple(mine.shape)} here). '
            f'{hint}.')
