"""TransVW's self-classification head (YNet3D's classifier), 2-D or 3-D."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from dira_mm.registry import HEADS
from ..utils.float32 import run_in_float32

__all__ = ['TransVWClsHead']


class _BatchStatsNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm that normalises with the batch statistics in eval mode too.

    TransVW's ``ContBatchNorm3d`` calls ``F.batch_norm(..., training=True)`` always: the
    running statistics are updated but never used. Hand-written because torch has no
    such switch (``track_running_stats=False`` would drop the buffers the checkpoints
    carry).
    """

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 3:
            raise ValueError(f'expected an (N, C, *spatial) input, got {tuple(x.shape)}')

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        if self.training and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            True, self.momentum, self.eps)


@HEADS.register_module()
class TransVWClsHead(BaseModule):
    """Classifies the deepest encoder feature map into the discovered visual-word classes.

    Layout of TransVW's ``YNet3D`` head: ``Conv{2,3}d(in -> mid, 3, padding 1)`` -> BatchNorm
    -> ReLU -> global average pool -> ``Linear(mid, num_classes)`` (official: 512 -> 1024 ->
    44). The official model ends with a softmax and its trainer applies
    ``CrossEntropyLoss`` to ``log(softmax)``; ``CrossEntropy(log softmax z) = NLL(log softmax
    z) = CrossEntropy(z)`` (log-softmax is idempotent), so :meth:`loss` is the cross-entropy
    of the logits, the same value without the ``log(0)`` risk of the explicit softmax.

    Args:
        in_channels: channels of the deepest encoder feature map (512 for the Genesis U-Net).
        num_classes: number of visual-word classes (TransVW's training config: 44).
        mid_channels: width of the convolution (official 1024).
        spatial_dims: 2 or 3 (a volume).
        official_batchnorm: normalise with batch statistics in eval mode too, as TransVW's
            ``ContBatchNorm3d`` (default False: standard BatchNorm, running statistics in
            eval).
    """

    def __init__(self,
                 in_channels: int = 512,
                 num_classes: int = 44,
                 mid_channels: int = 1024,
                 spatial_dims: int = 3,
                 official_batchnorm: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if spatial_dims not in (2, 3):
            raise ValueError(f'TransVWClsHead: spatial_dims must be 2 or 3, got {spatial_dims!r}')
        if int(num_classes) < 2:
            raise ValueError(f'TransVWClsHead: num_classes must be >= 2, got {num_classes!r}')
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)
        self.mid_channels = int(mid_channels)
        self.spatial_dims = int(spatial_dims)
        self.official_batchnorm = bool(official_batchnorm)
        conv = nn.Conv3d if spatial_dims == 3 else nn.Conv2d
        if official_batchnorm:
            norm = _BatchStatsNorm(self.mid_channels)
        else:
            norm = (nn.BatchNorm3d if spatial_dims == 3 else nn.BatchNorm2d)(self.mid_channels)
        self.conv = conv(self.in_channels, self.mid_channels, 3, padding=1)
        self.bn = norm
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(self.mid_channels, self.num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits ``(N, num_classes)`` of the deepest feature map ``(N, C, *spatial)``."""
        if x.dim() != self.spatial_dims + 2:
            raise ValueError(
                f'TransVWClsHead(spatial_dims={self.spatial_dims}) takes (N, C, *spatial) '
                f'feature maps with {self.spatial_dims} spatial axes, got shape {tuple(x.shape)}.')
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f'TransVWClsHead: the feature map has {x.shape[1]} channels but in_channels is '
                f'{self.in_channels}; set model...head.in_channels to the backbone\'s deepest '
                'out_channels.')
        x = self.relu(self.bn(self.conv(x)))
        x = torch.flatten(x, 2).mean(dim=2)
        return self.fc(x)

    @run_in_float32
    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Mean cross-entropy of the logits (= the official CE on log-softmax), in float32."""
        labels = labels.to(device=logits.device, dtype=torch.long).reshape(-1)
        if labels.numel() != logits.shape[0]:
            raise ValueError(f'TransVWClsHead: {labels.numel()} labels for {logits.shape[0]} '
                             'samples; every data sample needs one gt_label.')
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise ValueError(
                f'TransVWClsHead: labels must be in [0, {self.num_classes}), got '
                f'[{int(labels.min())}, {int(labels.max())}]; set head.num_classes to the number '
                'of discovered classes (transvw_discover.py --num-classes).')
        return F.cross_entropy(logits, labels)
