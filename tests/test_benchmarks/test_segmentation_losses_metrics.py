"""DiceLoss and DiceMetric against hand-computed values."""
import math

import pytest
import torch

from dira_mm.evaluation import DiceMetric
from dira_mm.models import DiceLoss


def _t(rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_dice_loss_over_the_batch_is_the_official_formula():
    # two 1x2x2 samples; sums over the whole batch:
    # sum(y*p) = 0.5*1 + 0.25*1 + 1*1 = 1.75; sum(y) = 3; sum(p) = 0.5+0.25+0+1 + 0.5 = 2.25
    pred = torch.stack([_t([[[0.5, 0.25], [0.0, 0.0]]]), _t([[[1.0, 0.5], [0.0, 0.0]]])])
    target = torch.stack([_t([[[1, 1], [0, 0]]]), _t([[[1, 0], [0, 0]]])])
    expected = 1 - (2 * 1.75 + 1) / (3 + 2.25 + 1)
    assert DiceLoss()(pred, target).item() == pytest.approx(expected)
    # per sample: (2*0.75+1)/(2+0.75+1) and (2*1+1)/(1+1.5+1), averaged
    per_sample = 1 - ((2.5 / 3.75) + (3 / 3.5)) / 2
    assert DiceLoss(per_sample=True)(pred, target).item() == pytest.approx(per_sample)
    assert DiceLoss(loss_weight=2.0)(pred, target).item() == pytest.approx(2 * expected)
    # smoothing: an empty mask predicted empty costs nothing
    zeros = torch.zeros(2, 1, 2, 2)
    assert DiceLoss()(zeros, zeros).item() == 0.0


def test_dice_loss_gradient_and_shape_check():
    pred = torch.full((1, 1, 2, 2), 0.5, requires_grad=True)
    target = _t([[[[1, 0], [0, 0]]]])
    DiceLoss()(pred, target).backward()
    # d/dp of -(2I + 1)/(S + 1) with I = 0.5, S = 3: -(2y(S+1) - (2I+1)) / (S+1)^2
    inter, total = 0.5, 3.0
    grad_fg = -(2 * 4.0 - (2 * inter + 1)) / (total + 1)**2
    grad_bg = (2 * inter + 1) / (total + 1)**2
    expected = _t([[[[grad_fg, grad_bg], [grad_bg, grad_bg]]]])
    assert torch.allclose(pred.grad, expected)
    with pytest.raises(ValueError, match='differ in shape'):
        DiceLoss()(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2, 2))


def _samples(*pairs):
    return [dict(pred_prob=_t(p)[None], gt_mask=_t(g)[None]) for p, g in pairs]


def test_dice_metric_per_image_global_and_threshold():
    samples = _samples(
        # pred > 0.5: [1, 1, 0, 0]; gt [1, 0, 0, 0] -> 2*1/(2+1) = 2/3
        ([[0.9, 0.6], [0.5, 0.1]], [[1, 0], [0, 0]]),
        # pred [1, 1, 1, 1]; gt [1, 1, 1, 1] -> 1
        ([[0.7, 0.7], [0.7, 0.7]], [[1, 1], [1, 1]]),
        # both empty -> empty_score
        ([[0.2, 0.5], [0.0, 0.1]], [[0, 0], [0, 0]]),
        # empty prediction on a non-empty mask -> 0
        ([[0.0, 0.0], [0.0, 0.0]], [[0, 1], [0, 0]]))
    metric = DiceMetric()
    metric.process({}, samples)
    out = metric.compute_metrics(metric.results)
    assert out['dice'] == pytest.approx(100 * (2 / 3 + 1 + 1 + 0) / 4)
    # pooled: intersection 1 + 4 = 5; |P| + |G| = (2+1) + (4+4) + 0 + (0+1) = 12
    assert out['dice_global'] == pytest.approx(100 * 2 * 5 / 12)
    assert out['num_empty'] == 1
    # the convention for images empty in both
    for empty_score, expected in ((0.0, (2 / 3 + 1 + 0 + 0) / 4), (None, (2 / 3 + 1 + 0) / 3)):
        metric = DiceMetric(empty_score=empty_score)
        metric.process({}, samples)
        assert metric.compute_metrics(metric.results)['dice'] == pytest.approx(100 * expected)
    # threshold 0.65 drops the 0.6 pixel of image 1: 2*1/(1+1) = 1
    metric = DiceMetric(threshold=0.65)
    metric.process({}, samples[:1])
    assert metric.compute_metrics(metric.results)['dice'] == pytest.approx(100.0)


def test_dice_metric_all_empty_and_pred_mask():
    metric = DiceMetric(empty_score=None)
    metric.process({}, _samples(([[0.0]], [[0]])))
    out = metric.compute_metrics(metric.results)
    assert math.isnan(out['dice']) and math.isnan(out['dice_global'])
    # threshold=None uses the model's pred_mask
    metric = DiceMetric(threshold=None)
    metric.process({}, [dict(pred_mask=torch.tensor([[[1, 0]]], dtype=torch.uint8),
                             gt_mask=_t([[[1, 1]]]))])
    assert metric.compute_metrics(metric.results)['dice'] == pytest.approx(100 * 2 / 3)
    with pytest.raises(KeyError, match='gt_mask'):
        DiceMetric().process({}, [dict(pred_prob=torch.zeros(1, 1, 1))])
