"""Rank-based AUC (hand values, brute force) and the k-NN / linear probes on toy features."""
import math

import numpy as np
import pytest
import torch

from dira_mm.evaluation.functional import (average_ranks, knn_predict, linear_probe_predict,
                                           multilabel_auc, roc_auc)


def _pairwise_auc(scores, labels):
    """Definition: P(score_pos > score_neg) + 0.5 P(tie), over all pairs."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = (pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()
    return wins / (len(pos) * len(neg))


def test_auc_hand_values():
    # positives 0.35, 0.8 against negatives 0.1, 0.4: 3 of 4 pairs ordered
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    # a tie counts one half: (0.5 vs 0.5) + (0.5 > 0.2) = 1.5 of 2
    assert roc_auc([0.5, 0.5, 0.2], [1, 0, 0]) == 0.75
    assert roc_auc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0
    assert roc_auc([4, 3, 2, 1], [0, 0, 1, 1]) == 0.0
    assert roc_auc([7, 7, 7, 7], [0, 1, 0, 1]) == 0.5
    assert math.isnan(roc_auc([0.1, 0.2], [1, 1]))
    assert average_ranks([3, 1, 3, 2]).tolist() == [3.5, 1.0, 3.5, 2.0]
    with pytest.raises(ValueError, match='0 or 1'):
        roc_auc([0.1, 0.2], [1, -1])
    with pytest.raises(ValueError, match='3 scores but 2 labels'):
        roc_auc([0.1, 0.2, 0.3], [1, 0])


def test_auc_matches_the_pairwise_definition_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(5):
        scores = rng.integers(0, 6, 200).astype(float)  # many ties
        labels = rng.integers(0, 2, 200)
        assert roc_auc(scores, labels) == pytest.approx(_pairwise_auc(scores, labels))
    assert roc_auc(torch.tensor(scores), torch.tensor(labels)) == \
        pytest.approx(_pairwise_auc(scores, labels))


def test_multilabel_auc_masks_and_skips_undefined_classes():
    scores = np.array([[0.9, 0.1, 0.3], [0.2, 0.8, 0.2], [0.6, 0.7, 0.9], [0.1, 0.2, 0.4]])
    labels = np.array([[1, 0, -1], [0, 1, 0], [1, -1, 0], [0, 0, 0]])
    mean, per_class = multilabel_auc(scores, labels)
    assert per_class[0] == 1.0
    assert per_class[1] == 1.0  # the -1 row is left out
    assert math.isnan(per_class[2])  # no positive left
    assert mean == 1.0
    mask = np.ones_like(labels, dtype=bool)
    mask[1, 0] = False  # drop a negative of class 0
    assert multilabel_auc(scores, labels, mask)[1][0] == 1.0
    assert math.isnan(multilabel_auc(scores[:, 2:], labels[:, 2:])[0])


def _toy(separable: bool, n: int = 300, dim: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    labels = (torch.rand(2 * n, 3, generator=g) < 0.4).float()
    feats = torch.randn(2 * n, dim, generator=g)
    if separable:  # each label switches its own direction on, far above the noise
        feats = 0.05 * feats
        feats[:, :3] += 4.0 * labels
        feats[:, 3] += 1.0
    return feats[:n], labels[:n], feats[n:], labels[n:]


@pytest.mark.parametrize('probe', ['knn', 'linear'])
def test_probes_separable_give_100_and_random_give_50(probe):
    def score(train_x, train_y, test_x):
        if probe == 'knn':
            return knn_predict(train_x, train_y, test_x, k=20, temperature=0.07)
        return linear_probe_predict(train_x, train_y, test_x, steps=100)

    train_x, train_y, test_x, test_y = _toy(separable=True)
    assert 100 * multilabel_auc(score(train_x, train_y, test_x), test_y)[0] == 100.0
    train_x, train_y, test_x, test_y = _toy(separable=False)
    chance = 100 * multilabel_auc(score(train_x, train_y, test_x), test_y)[0]
    assert abs(chance - 50.0) < 6.0, chance


def test_knn_weighted_vote_hand_value_and_masks():
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([[1.0], [0.0], [0.0]])
    query = torch.tensor([[2.0, 0.0]])  # cosine 1, 0, 0.7071: neighbours 0 and 2 for k=2
    w = math.exp((math.sqrt(0.5) - 1.0) / 0.1)
    got = knn_predict(train, labels, query, k=2, temperature=0.1)
    assert got.item() == pytest.approx(1.0 / (1.0 + w), rel=1e-5)
    # neighbour 2's label does not count (-1): only neighbour 0 votes
    assert knn_predict(train, torch.tensor([[1.0], [0.0], [-1.0]]), query, k=2,
                       temperature=0.1).item() == pytest.approx(1.0)
    # no neighbour counts: the positive rate of the counted training labels
    mask = torch.tensor([[False], [True], [False]])
    assert knn_predict(train, labels, query, k=1, train_mask=mask).item() == 0.0
    # k clipped to N = 3: all three vote at the default T = 0.07 with weights exp(cos / T),
    # cos = 1, 0, sqrt(0.5); only neighbour 0 is positive
    everyone = knn_predict(train, labels, query, k=99)
    hand = 1.0 / (1.0 + math.exp(-1.0 / 0.07) + math.exp((math.sqrt(0.5) - 1.0) / 0.07))
    assert everyone.shape == (1, 1)
    assert everyone.item() == pytest.approx(hand, rel=1e-5)
    assert everyone.item() == pytest.approx(0.98499, abs=1e-5)
    assert knn_predict(train, labels, query, k=3).item() == pytest.approx(hand, rel=1e-5)
    with pytest.raises(ValueError, match='temperature'):
        knn_predict(train, labels, query, temperature=0.0)


def test_linear_probe_is_deterministic_and_checks_arguments():
    train_x, train_y, test_x, _ = _toy(separable=False, n=64)
    first = linear_probe_predict(train_x, train_y, test_x, steps=50)
    assert torch.equal(first, linear_probe_predict(train_x, train_y, test_x, steps=50))
    adam = linear_probe_predict(train_x, train_y, test_x, steps=50, optimizer='adam')
    assert adam.shape == first.shape and ((adam > 0) & (adam < 1)).all()
    # Adam is deterministic too, and a different optimiser gives different scores
    assert torch.equal(adam, linear_probe_predict(train_x, train_y, test_x, steps=50,
                                                  optimizer='adam'))
    assert not torch.equal(adam, first)
    # and it separates separable data perfectly, like the default optimiser
    sep_x, sep_y, sep_test_x, sep_test_y = _toy(separable=True)
    adam_sep = linear_probe_predict(sep_x, sep_y, sep_test_x, optimizer='adam')  # 300 steps
    assert 100 * multilabel_auc(adam_sep, sep_test_y)[0] == 100.0
    with pytest.raises(ValueError, match="optimizer must be one of"):
        linear_probe_predict(train_x, train_y, test_x, optimizer='sgd')
