"""Data transforms of dira_mm (registered in ``dira_mm.registry.TRANSFORMS``)."""
from .distortion import DiRADistortion
from .formatting import PackDiRAInputs
from .loading import LoadMedicalImage
from .processing import ColorJitter, GaussianBlur, RandomFlip, RandomResizedCrop
from .segmentation import (LoadSegMask, PackSegInputs, SegRandomFlip, SegRandomResizedCrop,
                           SegResize)
from .utils import get_rng
from .wrappers import DiRAViews

__all__ = [
    'RandomResizedCrop', 'ColorJitter', 'GaussianBlur', 'RandomFlip', 'DiRADistortion',
    'DiRAViews', 'PackDiRAInputs', 'get_rng', 'LoadMedicalImage', 'LoadSegMask', 'SegResize',
    'SegRandomResizedCrop', 'SegRandomFlip', 'PackSegInputs'
]
