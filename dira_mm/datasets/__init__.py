"""Datasets, image readers and data transforms of dira_mm."""
from .base_dataset import MedicalImageDataset
from .decoded_cache import DecodedImageCache
from .chestxray14 import CHESTXRAY14_CLASSES, ChestXray14Dataset
from .chexpert import CHEXPERT_CLASSES, CHEXPERT_UNCERTAIN_PROTOCOL, CheXpertDataset
from .class_subset import ClassSubsetDataset
from .image_folder import MedicalImageFolder
from .label_fraction import LabelFractionDataset, select_fraction
from .image_mask import ImageMaskDataset
from .phantom_segmentation import make_phantom_lung_dataset, phantom_lung_masks
from .phantom import (PHANTOM_CLASSES, ChestPhantomDataset, chest_phantom_masks,
                      generate_chest_phantom, make_demo_dataset, render_chest_phantom,
                      sample_chest_phantom_params)
from .readers import (DEFAULT_MAX_PIXELS, ImageReadError, NonFinitePixelsWarning,
                      apply_window, decode_image, read_dicom_array, read_image,
                      window_to_range)
from .rle import rle_decode, rle_decode_union, rle_encode
from .siim_pneumothorax import SIIMPneumothoraxDataset
from .transvw import TRANSVW_INDEX_FIELDS, TransVWDataset
from .volume_readers import (DEFAULT_MAX_VOXELS, hu_window, read_dicom_series, read_metaimage,
                             read_nifti, read_volume)
from .transforms import *  # noqa: F401,F403
from .transforms import __all__ as _transforms_all

__all__ = [
    'MedicalImageDataset', 'DecodedImageCache', 'ChestXray14Dataset', 'CHESTXRAY14_CLASSES', 'ChestPhantomDataset',
    'CheXpertDataset', 'CHEXPERT_CLASSES', 'CHEXPERT_UNCERTAIN_PROTOCOL', 'MedicalImageFolder',
    'ClassSubsetDataset', 'LabelFractionDataset', 'select_fraction',
    'PHANTOM_CLASSES', 'generate_chest_phantom', 'sample_chest_phantom_params',
    'render_chest_phantom', 'chest_phantom_masks', 'make_demo_dataset', 'ImageReadError',
    'read_image', 'decode_image', 'read_dicom_array', 'apply_window', 'window_to_range',
    'NonFinitePixelsWarning', 'DEFAULT_MAX_PIXELS',
    'ImageMaskDataset', 'SIIMPneumothoraxDataset', 'make_phantom_lung_dataset',
    'phantom_lung_masks', 'rle_decode', 'rle_decode_union', 'rle_encode',
    'read_volume', 'read_nifti', 'read_dicom_series', 'read_metaimage', 'hu_window',
    'DEFAULT_MAX_VOXELS', 'TransVWDataset', 'TRANSVW_INDEX_FIELDS'
] + list(_transforms_all)

# 3-D volume datasets, the decoded-volume cache and resampling (issue 9 §2)
from .luna16 import LUNA16_GENESIS_FOLDS, LUNA16Dataset  # noqa: E402
from .volume_cache import DecodedVolumeCache  # noqa: E402
from .volume_dataset import VolumeDataset  # noqa: E402
from .volume_folder import VolumeFolderDataset  # noqa: E402
from .volume_readers import resample_volume  # noqa: E402

__all__ += ['LUNA16Dataset', 'LUNA16_GENESIS_FOLDS', 'DecodedVolumeCache', 'VolumeDataset',
            'VolumeFolderDataset', 'resample_volume']

# 3-D demo data and downstream datasets (issue 9, section 5)
from .ct_phantom import (CT_TISSUES, MALIGNANT_DIAMETER_MM, NODULE_SHAPES, CTPhantom,  # noqa: E402
                         generate_ct_phantom, nodule_is_malignant, render_ct_phantom,
                         sample_ct_phantom_params)
from .ct_phantom_data import make_ct_demo_dataset, write_metaimage, write_nifti  # noqa: E402
from .nodule_classification import NoduleClassificationDataset, crop_with_padding  # noqa: E402
from .nodule_segmentation import NoduleSegmentationDataset  # noqa: E402

__all__ += [
    'CT_TISSUES', 'MALIGNANT_DIAMETER_MM', 'NODULE_SHAPES', 'CTPhantom', 'generate_ct_phantom',
    'nodule_is_malignant', 'render_ct_phantom', 'sample_ct_phantom_params',
    'make_ct_demo_dataset', 'write_metaimage', 'write_nifti', 'NoduleClassificationDataset',
    'crop_with_padding', 'NoduleSegmentationDataset'
]
