"""Device-side preprocessing of multi-view uint8 batches."""
from typing import List, Optional, Sequence, Union

import torch
from mmengine.model import BaseDataPreprocessor
from torch import Tensor

from dira_mm.registry import MODELS


@MODELS.register_module()
class DiRADataPreprocessor(BaseDataPreprocessor):
    """Casts views and restoration targets to float on the model's device.

    The CPU pipeline keeps chest X-rays single-channel uint8 (a third of the bytes to
    decode, augment and transfer); here each view becomes float in ``[0, 1]`` (optionally
    normalised by ``mean``/``std``) and the gray channel is repeated to ``num_channels``
    (3 by default, what the official ResNet-50 U-Net takes). The official pipeline feeds
    gray-as-RGB, so the tensors are identical.

    Restoration targets (``data_sample.target``, uint8) become float ``[0, 1]`` and are
    stacked into ``data_samples`` order; algorithms read them with :meth:`stack_targets`.

    Works for 2-D (N, C, H, W) and 3-D (N, C, D, H, W) views: mean/std are per channel.

    Args:
        num_channels: channels the model expects; gray inputs are repeated to it.
        mean: per-channel mean subtracted after scaling to [0, 1] (None: no normalisation,
            as the official DiRA pre-training).
        std: per-channel std (None: 1).
        scale: divisor applied to integer inputs (255 for uint8).
    """

    def __init__(self,
                 num_channels: int = 3,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 scale: float = 255.0,
                 non_blocking: bool = True) -> None:
        super().__init__(non_blocking=non_blocking)
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

    def _view(self, x: Tensor) -> Tensor:
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
                    ds.target = self._to_float(ds.target)
        return dict(inputs=views, data_samples=data_samples)

    @staticmethod
    def stack_targets(data_samples: Optional[list]) -> Optional[Tensor]:
        """Batch the restoration targets ``(N, 1, H, W)``; None when there are none."""
        if not data_samples or 'target' not in data_samples[0]:
            return None
        return torch.stack([ds.target for ds in data_samples])
