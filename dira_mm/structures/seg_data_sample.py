"""The data sample that travels with each segmentation batch."""
from mmengine.structures import BaseDataElement

__all__ = ['SegDataSample']


class SegDataSample(BaseDataElement):
    """Per-image mask, predictions and metadata of a segmentation batch.

    Fields (data): ``gt_mask`` (uint8 ``(C, H, W)``, 0/1, from ``PackSegInputs``; float
    after the data preprocessor), ``pred_prob`` (float ``(C, H, W)`` probabilities) and
    ``pred_mask`` (uint8 ``(C, H, W)``, ``pred_prob > threshold``) from the model's predict
    mode. Metainfo: ``img_path``, ``seg_map_path``, ``sample_idx``, ``ori_shape``,
    ``img_shape``, ``flip`` and ``skipped`` (unreadable files skipped to produce it).
    """
