"""Segmentors: downstream segmentation models initialised from pre-training."""
from .seg_data_preprocessor import SegDataPreprocessor
from .unet_segmentor import UNetSegmentor

__all__ = ['SegDataPreprocessor', 'UNetSegmentor']
