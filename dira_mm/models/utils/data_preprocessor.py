"""Device-side preprocessing of multi-view batches (uint8 images or float volumes)."""
from typing import List, Optional, Sequence, Union

import torch
from mmengine.model import BaseDataPreprocessor
from torch import Tensor

from dira_mm.registry import MODELS
from .spatial import check_input_dims, check_spatial_dims


@MODELS.register_module()
class DiRADataPreprocessor(BaseDataPreprocessor):
    """Casts views and restoration targets to float on the model's device.

    The CPU pipeline keeps chest X-rays single-channel uint8 (a third of the bytes to
    decode, augment and transfer); here each view becomes float in ``[0, 1]`` (optionally
    normalised by ``mean``/``std``) and the gray channel is repeated to ``num_channels``
    (3 by default, what the official ResNet-50 U-Net takes). The official pipeline feeds
    gray-as-RGB, so the tensors are identical.

    Views are channel-first batches ``(N, C, *spatial)`` with ``spatial_dims`` spatial
    axes: ``(N, C, H, W)`` images or ``(N, C, D, H, W)`` volumes. Integer inputs (uint8
    X-rays) are divided by ``scale``; float inputs (volumes already windowed to
    ``[0, 1]`` by ``LoadVolume``) are taken as they are. ``C`` must be 1 (repeated to
    ``num_channels``) or ``num_channels``; 3-D models usually take one channel
    (``num_channels=1``).

    Restoration targets (``data_sample.target``, ``(1, *spatial)``) are cast the same way
    (no channel repeat); algorithms batch them with :meth:`stack_targets` to
    ``(N, 1, *spatial)``.

    Args:
        num_channels: channels the model expects; gray inputs are repeated to it.
        mean: per-channel mean subtracted after scaling to [0, 1] (None: no normalisation,
            as the official DiRA pre-training).
        std: per-channel std (None: 1).
        scale: divisor applied to integer inputs (255 for uint8).
        non_blocking: non-blocking host-to-device copies.
        spatial_dims: 2 (images) or 3 (volumes); inputs of another rank are refused.
    """

    def __init__(self,
                 num_channels: int = 3,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 scale: float = 255.0,
                 non_blocking: bool = True,
                 spatial_dims: int = 2) -> None:
        super().__init__(non_blocking=non_blocking)
        self.spatial_dims = check_spatial_dims(
            spatial_dims, f'{type(self).__name__}: model.data_preprocessor.spatial_dims')
        self.num_channels = num_channels
        self.scale = scale
        self._normalize = mean is not None or std is not None
        mean_t = torch.tensor(mean if mean is not None else [0.0] * num_channels)
        std_t = torch.tensor(std if std is not None else [1.0] * num_channels)
        self.register_buffer('mean', mean_t, persistent=False)
        self.register_buffer('std', std_t, persistent=False)

    def _to_float(self, x: Tensor) -> Tensor:
        if x.is_floating_point():
            return x.float()
        return x.float().div_(self.scale)

    def _check(self, x: Tensor, what: str = 'inputs', extra_dims: int = 2) -> None:
        """Refuse a batch (or sample, ``extra_dims=1``) of the wrong dimensionality."""
        lead = '(N, C' if extra_dims == 2 else '(C'
        axes = 'D, H, W' if self.spatial_dims == 3 else 'H, W'
        check_input_dims(x, self.spatial_dims, f'{type(self).__name__} ({what})',
                         'model.data_preprocessor.spatial_dims', extra_dims=extra_dims,
                         layout=f'{lead}, {axes})')

    def _view(self, x: Tensor) -> Tensor:
        self._check(x)
        if x.shape[1] not in (1, self.num_channels):
            raise ValueError(
                f'{type(self).__name__}: inputs have {x.shape[1]} channels but '
                f'model.data_preprocessor.num_channels is {self.num_channels}; give 1-channel '
                'inputs (repeated to num_channels) or set num_channels to the input channels.')
        x = self._to_float(x)
        if x.shape[1] == 1 and self.num_channels > 1:
            x = x.expand(-1, self.num_channels, *x.shape[2:])
        if self._normalize:
            shape = (1, -1) + (1, ) * (x.dim() - 2)
            x = (x - self.mean.view(shape)) / self.std.view(shape)
        return x.contiguous()

    def forward(self, data: dict, training: bool = False) -> dict:
        """``{'inputs': [views], 'data_samples': [...]}`` -> float views on device."""
        data = self.cast_data(data)
        inputs: Union[Tensor, List[Tensor]] = data['inputs']
        if isinstance(inputs, Tensor):
            views = [self._view(inputs)]
        else:
            views = [self._view(v) for v in inputs]
        data_samples = data.get('data_samples', None)
        if data_samples is not None:
            for ds in data_samples:
                if 'target' in ds:
                    self._check(ds.target, 'data_sample.target', extra_dims=1)
                    ds.target = self._to_float(ds.target)
        return dict(inputs=views, data_samples=data_samples)

    @staticmethod
    def stack_targets(data_samples: Optional[list]) -> Optional[Tensor]:
        """Batch the restoration targets ``(N, 1, *spatial)``; None when there are none."""
        if not data_samples or 'target' not in data_samples[0]:
            return None
        return torch.stack([ds.target for ds in data_samples])
