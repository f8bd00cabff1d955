"""Moved to :mod:`dira_mm.models.utils.pretrained`; this import path keeps working."""
from ..utils.pretrained import (encoder_weights_from_checkpoint, read_pretrained,  # noqa: F401
                                unet_weights_from_checkpoint)

__all__ = ['read_pretrained', 'encoder_weights_from_checkpoint', 'unet_weights_from_checkpoint']
