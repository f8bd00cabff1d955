"""MultiLabelAUC against hand-computed AUCs: ties, ignored labels, undefined classes."""
import itertools
import math

import numpy as np
import pytest
import torch

from dira_mm.evaluation.metrics import MultiLabelAUC

# class A: scores 0.1 0.4 0.4 0.8, labels 0 0 1 1. Positive/negative pairs: 0.4 > 0.1 (1),
#   0.4 = 0.4 (tie: 1/2), 0.8 > both (2) -> 3.5 / 4 = 0.875.
# class B: labels 1 -1 0 0, sample 1 ignored: 0.5 vs negatives 0.1 and 0.6 -> 1 / 2 = 0.5
#   (-1 read as 0 would give 1/3, as 1 would give 3/4).
# class C: labels 1 1 -1 1: no valid negative -> no AUC, left out of the mean.
SCORES = np.array([[0.1, 0.5, 0.3],
                   [0.4, 0.7, 0.2],
                   [0.4, 0.1, 0.9],
                   [0.8, 0.6, 0.4]])
LABELS = np.array([[0, 1, 1],
                   [0, -1, 1],
                   [1, 0, -1],
                   [1, 0, 1]], dtype=np.float32)


def _evaluate(metric: MultiLabelAUC, scores, labels, meta=None) -> dict:
    metric.dataset_meta = meta
    metric.process({}, [dict(pred_score=torch.as_tensor(s, dtype=torch.float32),
                             gt_label=torch.as_tensor(l)) for s, l in zip(scores, labels)])
    return metric.evaluate(len(scores))


def test_hand_computed_auc_with_ties_and_ignored_labels():
    metrics = _evaluate(MultiLabelAUC(with_loss=False), SCORES, LABELS,
                        dict(classes=('A', 'B', 'C')))
    assert metrics['auc/A'] == pytest.approx(87.5)
    assert metrics['auc/B'] == pytest.approx(50.0)
    assert 'auc/C' not in metrics
    assert metrics['auc'] == pytest.approx((87.5 + 50.0) / 2)
    assert set(metrics) == {'auc', 'auc/A', 'auc/B'}


def test_class_names_argument_and_eval_classes():
    metrics = _evaluate(MultiLabelAUC(class_names=('x', 'y', 'z'), eval_classes=('y', 0),
                                      with_loss=False), SCORES, LABELS,
                        dict(classes=('A', 'B', 'C')))
    assert metrics == pytest.approx({'auc': 68.75, 'auc/y': 50.0, 'auc/x': 87.5})
    metrics = _evaluate(MultiLabelAUC(eval_classes=['B'], with_loss=False), SCORES, LABELS,
                        dict(classes=('A', 'B', 'C')))
    assert metrics == pytest.approx({'auc': 50.0, 'auc/B': 50.0})
    # no names anywhere: class_<i>
    metrics = _evaluate(MultiLabelAUC(with_loss=False), SCORES, LABELS)
    assert set(metrics) == {'auc', 'auc/class_0', 'auc/class_1'}


def test_loss_is_masked_bce_of_the_scores():
    metrics = _evaluate(MultiLabelAUC(), [[0.8, 0.3], [0.4, 0.9]], [[1, 0], [-1, 0]])
    expected = -(math.log(0.8) + math.log(0.7) + math.log(0.1)) / 3
    assert metrics['loss'] == pytest.approx(expected, rel=1e-5)


def _pairwise_auc(scores, labels):
    """Direct definition: P(positive scores above negative), ties 1/2."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0
               for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_matches_the_pairwise_definition_on_random_tied_scores():
    rng = np.random.default_rng(0)
    scores = np.round(rng.random((60, 4)), 1)  # many ties
    labels = rng.integers(-1, 2, (60, 4)).astype(np.float32)
    metrics = _evaluate(MultiLabelAUC(with_loss=False), scores, labels)
    per_class = []
    for c in range(4):
        keep = labels[:, c] >= 0
        per_class.append(_pairwise_auc(scores[keep, c], labels[keep, c]))
        assert metrics[f'auc/class_{c}'] == pytest.approx(100 * per_class[-1])
    assert metrics['auc'] == pytest.approx(100 * np.mean(per_class))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match='class_names has 2 names'):
        _evaluate(MultiLabelAUC(class_names=('a', 'b')), SCORES, LABELS)
    with pytest.raises(ValueError, match='"D" is not one of the classes'):
        _evaluate(MultiLabelAUC(eval_classes=('D', )), SCORES, LABELS,
                  dict(classes=('A', 'B', 'C')))
    with pytest.raises(KeyError, match='pred_score'):
        MultiLabelAUC().process({}, [dict(gt_label=torch.zeros(3))])
    with pytest.raises(ValueError, match='NaN'):
        _evaluate(MultiLabelAUC(), [[float('nan'), 0.1, 0.2]] + SCORES[1:].tolist(), LABELS)
