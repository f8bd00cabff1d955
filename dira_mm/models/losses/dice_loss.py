"""Soft Dice loss of the official DiRA segmentation fine-tuning."""
import torch
from mmengine.model import BaseModule
from torch import Tensor

from dira_mm.registry import LOSSES
from ..utils.float32 import run_in_float32

__all__ = ['DiceLoss']


@LOSSES.register_module()
class DiceLoss(BaseModule):
    """``1 - (2 * sum(y * p) + s) / (sum(y) + sum(p) + s)`` on probabilities ``p``.

    The official protocol (BenchmarkTransferLearning, which DiRA's README points to) sums
    over the **whole batch** (every sample, channel and pixel at once), with smoothing
    ``s = 1``: one Dice of the batch, so images with large masks weigh more. With
    ``per_sample=True`` the Dice is taken per sample (over its channels and pixels) and the
    losses are averaged: every image counts the same, and an empty mask predicted empty
    costs ~0 thanks to the smoothing.

    Args:
        smooth: ``s``, added to numerator and denominator (official 1).
        per_sample: one Dice per sample, averaged, instead of one over the batch.
        loss_weight: factor on the loss.
    """

    def __init__(self, smooth: float = 1.0, per_sample: bool = False,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if smooth < 0:
            raise ValueError(f'DiceLoss: smooth must be >= 0, got {smooth}.')
        self.smooth = float(smooth)
        self.per_sample = bool(per_sample)
        self.loss_weight = float(loss_weight)

    @run_in_float32
    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Loss of probabilities ``pred`` against the binary ``target``, both ``(N, ...)``.

        Raises:
            ValueError: the shapes differ.
        """
        if pred.shape != target.shape:
            raise ValueError(f'DiceLoss: prediction {tuple(pred.shape)} and target '
                             f'{tuple(target.shape)} differ in shape.')
        target = target.to(pred.dtype)
        dims = tuple(range(1, pred.dim())) if self.per_sample else tuple(range(pred.dim()))
        inter = torch.sum(pred * target, dim=dims)
        total = torch.sum(pred, dim=dims) + torch.sum(target, dim=dims)
        dice = (2 * inter + self.smooth) / (total + self.smooth)
        return self.loss_weight * (1 - dice).mean()

    def extra_repr(self) -> str:
        return (f'smooth={self.smooth}, per_sample={self.per_sample}, '
                f'loss_weight={self.loss_weight}')
