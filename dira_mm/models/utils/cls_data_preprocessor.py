"""Device-side preprocessing of classification batches (one image or N crops per sample)."""
from typing import Optional, Sequence

import torch
from torch import Tensor

from dira_mm.registry import MODELS
from .data_preprocessor import DiRADataPreprocessor

__all__ = ['ClsDataPreprocessor', 'IMAGENET_MEAN', 'IMAGENET_STD']

#: torchvision's ImageNet statistics, on the [0, 1] scale (the benchmark's default
#: ``--normalization imagenet`` for classification fine-tuning).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@MODELS.register_module()
class ClsDataPreprocessor(DiRADataPreprocessor):
    """Gray uint8 images to normalised float tensors on the model's device.

    ``PackClsInputs`` gives each sample a ``uint8 (1, H, W)`` image, or ``(N, 1, H, W)``
    for test-time crops (``TenCrop``); collated, a batch is ``(B, 1, H, W)`` or
    ``(B, N, 1, H, W)`` (a list of N ``(B, 1, H, W)`` tensors is stacked to the latter).
    Each image becomes float in ``[0, 1]``, the gray channel is repeated to
    ``num_channels`` and ``(x - mean) / std`` is applied, which gives the tensors of the
    benchmark's gray-as-RGB pipeline with ``Normalize(ImageNet)``. The crop axis is kept:
    the classifier averages its scores over it.

    ``spatial_dims`` says how many spatial axes an image has, so a batch is
    ``(B, C, *spatial)`` and a crop stack ``(B, N, C, *spatial)``; this is never guessed
    from the rank (a 3-D volume batch has the rank of a 2-D crop stack).

    Args:
        num_channels: channels the backbone takes (3 for the official ResNet-50).
        mean: per-channel mean on the [0, 1] scale; ImageNet's by default. ``None`` (with
            ``std=None``) keeps inputs in [0, 1], as DiRA's pre-training saw them.
        std: per-channel standard deviation on the [0, 1] scale; ImageNet's by default.
        scale: divisor of integer inputs (255 for uint8).
        non_blocking: non-blocking host-to-device copies.
        spatial_dims: 2 (images) or 3 (volumes, e.g. ``num_channels=1, mean=None,
            std=None``).
    """

    def __init__(self,
                 num_channels: int = 3,
                 mean: Optional[Sequence[float]] = IMAGENET_MEAN,
                 std: Optional[Sequence[float]] = IMAGENET_STD,
                 scale: float = 255.0,
                 non_blocking: bool = True,
                 spatial_dims: int = 2) -> None:
        for name, value in (('mean', mean), ('std', std)):
            if value is not None and len(value) != num_channels:
                raise ValueError(
                    f'ClsDataPreprocessor: `{name}` has {len(value)} values but num_channels '
                    f'is {num_channels}; give one value per channel (model.data_preprocessor).')
        super().__init__(num_channels=num_channels, mean=mean, std=std, scale=scale,
                         non_blocking=non_blocking, spatial_dims=spatial_dims)

    def forward(self, data: dict, training: bool = False) -> dict:
        """``{'inputs', 'data_samples'}`` -> ``inputs`` float ``(B, C, *spatial)`` or
        ``(B, N, C, *spatial)`` on the device; ``data_samples`` moved along."""
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs), dim=1)
        image_dims = self.spatial_dims + 2
        if not isinstance(inputs, Tensor) or inputs.dim() not in (image_dims, image_dims + 1):
            shape = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs)
            axes = 'D, H, W' if self.spatial_dims == 3 else 'H, W'
            raise ValueError(
                f'ClsDataPreprocessor (spatial_dims={self.spatial_dims}) expects images '
                f'(B, C, {axes}) or crops (B, N, C, {axes}), got {shape}; pack the pipeline '
                'with PackClsInputs, and set model.data_preprocessor.spatial_dims to the '
                'dimensionality of the data (2: images, 3: volumes).')
        if inputs.dim() == image_dims + 1:
            batch, crops = inputs.shape[:2]
            out = self._view(inputs.flatten(0, 1)).unflatten(0, (batch, crops))
        else:
            out = self._view(inputs)
        return dict(inputs=out, data_samples=data.get('data_samples'))
