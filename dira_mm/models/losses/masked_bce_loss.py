"""Binary cross-entropy of multi-label logits that skips labels marked "ignore"."""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from dira_mm.registry import LOSSES
from ..utils.float32 import run_in_float32

__all__ = ['MaskedBCEWithLogitsLoss']


@LOSSES.register_module()
class MaskedBCEWithLogitsLoss(BaseModule):
    """``BCEWithLogits`` over the (sample, class) entries whose label is not negative.

    Multi-label chest X-ray datasets mark uncertain findings with -1 (the data contract of
    ``docs/architecture.md``); a dataset's uncertainty policy decides whether they stay -1
    (CheXpert ``uncertain='ignore'``) or become 0/1. Entries below ``ignore_below`` add
    nothing to the loss, and the mean is taken over the remaining entries, so a batch
    without ignored labels gives exactly ``nn.BCEWithLogitsLoss()`` (the official
    benchmark's ``BCELoss`` on sigmoid outputs, in a numerically stable form). A batch in
    which every entry is ignored gives 0 (with a graph, so ``backward`` still works).

    Args:
        loss_weight: factor of the loss.
        pos_weight: optional per-class weight of the positive term (as in
            ``nn.BCEWithLogitsLoss``), e.g. to counter rare findings.
        ignore_below: labels smaller than this are ignored (-1 with the default 0).
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 pos_weight: Optional[Sequence[float]] = None,
                 ignore_below: float = 0.0) -> None:
        super().__init__()
        self.loss_weight = float(loss_weight)
        self.ignore_below = float(ignore_below)
        if pos_weight is not None:
            self.register_buffer('pos_weight', torch.as_tensor(pos_weight, dtype=torch.float32),
                                 persistent=False)
        else:
            self.pos_weight = None

    @run_in_float32
    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Mean loss over the valid entries of ``logits`` and ``labels`` (both ``(N, C)``)."""
        if logits.shape != labels.shape:
            raise ValueError(f'{type(self).__name__}: logits {tuple(logits.shape)} and labels '
                             f'{tuple(labels.shape)} differ in shape; the model\'s num_classes '
                             'must equal the number of label columns of the dataset.')
        labels = labels.to(logits.dtype)
        valid = labels >= self.ignore_below
        loss = F.binary_cross_entropy_with_logits(
            logits, labels.clamp(0.0, 1.0), reduction='none', pos_weight=self.pos_weight)
        loss = torch.where(valid, loss, torch.zeros_like(loss))
        return self.loss_weight * loss.sum() / valid.sum().clamp(min=1)
