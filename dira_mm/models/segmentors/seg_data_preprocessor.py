"""Device-side preprocessing of segmentation batches (image or volume + binary mask)."""
from typing import List, Optional

import torch
from torch import Tensor

from dira_mm.registry import MODELS
from ..utils.data_preprocessor import DiRADataPreprocessor

__all__ = ['SegDataPreprocessor']


@MODELS.register_module()
class SegDataPreprocessor(DiRADataPreprocessor):
    """Image batch to float on the device, gray repeated to ``num_channels``; masks to float.

    The inputs (``uint8 (N, 1, H, W)`` from ``PackSegInputs`` + ``default_collate``, or a
    list of ``(1, H, W)``) become float in ``[0, 1]``, normalised by ``mean``/``std`` when
    given, with the gray channel repeated to ``num_channels`` (3: the ResNet U-Net of the
    pre-training). The official segmentation fine-tuning uses no normalisation (the
    default); ``mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)`` gives the ImageNet
    one. Each ``data_sample.gt_mask`` becomes a float 0/1 tensor; :meth:`stack_masks`
    batches them.

    Volumes: ``spatial_dims=3`` takes ``(N, C, D, H, W)`` inputs (float, already windowed,
    are not rescaled) and ``(C, D, H, W)`` masks; inputs or masks of another rank are
    refused with an error naming ``model.data_preprocessor.spatial_dims``.

    Args:
        num_channels, mean, std, scale, non_blocking, spatial_dims: as
            ``DiRADataPreprocessor``.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        """``{'inputs': uint8 batch, 'data_samples': [...]}`` -> float inputs on device."""
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs))
        data_samples = data.get('data_samples', None)
        for sample in data_samples or ():
            if 'gt_mask' in sample:
                self._check(sample.gt_mask, 'data_sample.gt_mask', extra_dims=1)
                sample.gt_mask = sample.gt_mask.float()
        return dict(inputs=self._view(inputs), data_samples=data_samples)

    @staticmethod
    def stack_masks(data_samples: Optional[List]) -> Tensor:
        """``(N, C, *spatial)`` float masks of ``data_samples``.

        Raises:
            KeyError: a sample has no ``gt_mask`` (no ``LoadSegMask`` in the pipeline).
        """
        if not data_samples or any('gt_mask' not in s for s in data_samples):
            raise KeyError('The batch has no "gt_mask" for every sample: the pipeline needs '
                           'LoadSegMask and PackSegInputs.')
        return torch.stack([s.gt_mask for s in data_samples])
