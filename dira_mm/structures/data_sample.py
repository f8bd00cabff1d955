"""The data sample that travels with each DiRA batch."""
from mmengine.structures import BaseDataElement


class DiRADataSample(BaseDataElement):
    """Per-sample metadata and targets of a self-supervised batch.

    Fields set by the pipeline (all optional): ``target`` (uint8 ``(1, H, W)`` restoration
    target, a float ``[0, 1]`` tensor after the data preprocessor), ``gt_label``
    (``np.ndarray``), ``img_path``, ``sample_idx`` and ``skipped`` (how many unreadable
    files the dataset skipped to produce this sample).
    """
