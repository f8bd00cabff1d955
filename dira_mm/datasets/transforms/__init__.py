"""Data transforms of dira_mm (registered in ``dira_mm.registry.TRANSFORMS``)."""
from .classification import (CenterCrop, PackClsInputs, RandomRotation, Resize, TenCrop,
                             center_box, five_crop_boxes)
from .distortion import DiRADistortion
from .elastic import ElasticDeformation, elastic_deform, elastic_displacement
from .formatting import PackDiRAInputs
from .genesis import GenesisDistortion, TransVWDistortion
from .loading import LoadMedicalImage
from .processing import ColorJitter, GaussianBlur, RandomFlip, RandomResizedCrop
from .transvw_perturbation import TransVWPerturbation
from .segmentation import (LoadSegMask, PackSegInputs, SegRandomFlip, SegRandomResizedCrop,
                           SegResize)
from .utils import get_rng
from .volume_loading import LoadVolume, RandomCubes
from .wrappers import DiRAViews

__all__ = [
    'RandomResizedCrop', 'ColorJitter', 'GaussianBlur', 'RandomFlip', 'DiRADistortion',
    'Resize', 'CenterCrop', 'TenCrop', 'RandomRotation', 'PackClsInputs', 'center_box',
    'five_crop_boxes',
    'DiRAViews', 'PackDiRAInputs', 'get_rng', 'LoadMedicalImage', 'LoadSegMask', 'SegResize',
    'SegRandomResizedCrop', 'SegRandomFlip', 'PackSegInputs', 'GenesisDistortion',
    'TransVWDistortion', 'LoadVolume', 'RandomCubes',
    'ElasticDeformation', 'elastic_deform', 'elastic_displacement', 'TransVWPerturbation'
]

# MONAI dictionary transforms seeded per sample (issue 9 §2, 3-D views)
from .monai_adapter import MONAITransforms  # noqa: E402

__all__ += ['MONAITransforms']

# 3-D downstream (nodule patch crops, volume packers)
from .volume_downstream import (PackVolumeClsInputs, PackVolumeSegInputs,  # noqa: E402
                                RandPosNegCrop)

__all__ += ['RandPosNegCrop', 'PackVolumeSegInputs', 'PackVolumeClsInputs']
