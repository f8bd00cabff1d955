"""Dice score of binary segmentations at a threshold, per image (or volume), per class and
over the data set."""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from dira_mm.registry import METRICS

__all__ = ['DiceMetric']


@METRICS.register_module()
class DiceMetric(BaseMetric):
    """Mean Dice over images (``dice``) and the global pixel Dice (``dice_global``), in %.

    Each prediction is binarised as ``prob > threshold`` (the official 0.5; the model's
    ``pred_mask`` is used when present and ``threshold`` is None) and compared with the
    binary ground truth. Per image, ``Dice = 2 |P ∩ G| / (|P| + |G|)`` over all its channels
    and pixels, without smoothing; ``dice`` is the mean over images, the official benchmark's
    "mean Dice". ``dice_global`` pools the pixels of all images into one Dice, which is the
    number the official benchmark reports as its test Dice. Both are gathered over processes
    by mmengine.

    **Empty masks.** When both the ground truth and the prediction of an image are empty,
    Dice is 0/0. ``empty_score`` decides: ``1.0`` (default) counts a correct "nothing there"
    as perfect, the SIIM-ACR challenge convention and the official benchmark's ``dice()``;
    ``0.0`` counts it as a miss; ``None`` leaves such images out of the mean. An empty
    ground truth with a non-empty prediction scores 0, and the reverse too, whatever the
    setting. ``dice_global`` is 0/0 only when every image is empty; it then takes
    ``empty_score`` too (NaN when that is None). ``num_empty`` (images with an empty ground
    truth) is reported alongside.

    Args:
        threshold: probability above which a pixel is foreground; None uses the model's
            ``pred_mask``.
        empty_score: Dice of an image whose ground truth and prediction are both empty, or
            None to leave such images out of ``dice``.
        collect_device: where results are gathered across processes ('cpu' or 'gpu').
        prefix: prefix of the metric names ('' gives ``dice``, as ``save_best`` expects).
        classes: names of the channels for per-class scores, or None (none reported).
    """

    default_prefix = ''

    def __init__(self, threshold: Optional[float] = 0.5, empty_score: Optional[float] = 1.0,
                 collect_device: str = 'cpu', prefix: Optional[str] = None,
                 classes: Optional[Sequence[str]] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.classes = None if classes is None else tuple(str(c) for c in classes)
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            raise ValueError(f'DiceMetric: classes must be distinct names, got {classes}.')
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f'DiceMetric: threshold must be in [0, 1] or None, got {threshold}.')
        self.threshold = threshold
        self.empty_score = None if empty_score is None else float(empty_score)

    def _binary_pred(self, sample: dict) -> torch.Tensor:
        if self.threshold is None:
            if 'pred_mask' not in sample:
                raise KeyError('DiceMetric(threshold=None) needs "pred_mask" in the model '
                               'predictions.')
            return sample['pred_mask'] > 0
        if 'pred_prob' not in sample:
            raise KeyError('DiceMetric: the predictions have no "pred_prob"; use a '
                           "segmentor's predict mode (e.g. UNetSegmentor).")
        return sample['pred_prob'] > self.threshold

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep per image: intersection, predicted and true foreground pixel counts."""
        for sample in data_samples:
            if 'gt_mask' not in sample:
                raise KeyError('DiceMetric: a prediction has no "gt_mask"; the dataset must '
                               'give masks (LoadSegMask + PackSegInputs).')
            pred = self._binary_pred(sample)
            gt = sample['gt_mask'] > 0
            if pred.shape != gt.shape:
                raise ValueError(f'DiceMetric: prediction {tuple(pred.shape)} and ground truth '
                                 f'{tuple(gt.shape)} differ in shape.')
            result = dict(inter=int((pred & gt).sum()), pred=int(pred.sum()),
                          gt=int(gt.sum()))
            if self.classes is not None:
                if pred.dim() < 2 or pred.shape[0] != len(self.classes):
                    raise ValueError(
                        f'DiceMetric: {len(self.classes)} classes {self.classes} but the '
                        f'prediction has shape {tuple(pred.shape)} (channels first); set '
                        'val_evaluator.classes to one name per output channel.')
                flat_p, flat_g = pred.flatten(1), gt.flatten(1)
                result['per_class'] = [
                    (int((p & g).sum()), int(p.sum()), int(g.sum()))
                    for p, g in zip(flat_p, flat_g)]
            self.results.append(result)

    def _dice(self, inter: int, total: int) -> Optional[float]:
        return self.empty_score if total == 0 else 2.0 * inter / total

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        scores = [self._dice(r['inter'], r['pred'] + r['gt']) for r in results]
        scores = [s for s in scores if s is not None]
        inter = sum(r['inter'] for r in results)
        total = sum(r['pred'] + r['gt'] for r in results)
        pooled = self._dice(inter, total)
        metrics = dict(
            dice=100.0 * float(np.mean(scores)) if scores else float('nan'),
            dice_global=100.0 * pooled if pooled is not None else float('nan'),
            num_empty=float(sum(r['gt'] == 0 for r in results)))
        for c, name in enumerate(self.classes or ()):
            counts = [r['per_class'][c] for r in results]
            per_image = [self._dice(i, p + g) for i, p, g in counts]
            per_image = [d for d in per_image if d is not None]
            pooled_c = self._dice(sum(i for i, _, _ in counts),
                                  sum(p + g for _, p, g in counts))
            metrics[f'dice/{name}'] = (100.0 * float(np.mean(per_image)) if per_image
                                       else float('nan'))
            metrics[f'dice_global/{name}'] = (100.0 * pooled_c if pooled_c is not None
                                              else float('nan'))
        return metrics
