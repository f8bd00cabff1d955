"""Area under the ROC curve from ranks (Mann-Whitney U), for one or many labels.

Standalone and dependency-free (no scikit-learn): the probes of
:class:`~dira_mm.engine.hooks.ProbeHook` score features with it during pre-training.
"""
from typing import Optional, Tuple, Union

import numpy as np
import torch

__all__ = ['average_ranks', 'roc_auc', 'multilabel_auc']

ArrayLike = Union[np.ndarray, torch.Tensor, list, tuple]


def _as_numpy(x: ArrayLike, dtype=np.float64) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=dtype)


def average_ranks(values: ArrayLike) -> np.ndarray:
    """1-based ranks of ``values``; tied values share the mean of their ranks."""
    values = _as_numpy(values).ravel()
    n = values.size
    order = np.argsort(values, kind='mergesort')
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], n]  # exclusive
    group = np.repeat(np.arange(starts.size), ends - starts)
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = ((starts + ends + 1) / 2.0)[group]
    return ranks


def roc_auc(scores: ArrayLike, labels: ArrayLike) -> float:
    """ROC AUC in ``[0, 1]`` of binary ``labels`` (1 positive, 0 negative) from ``scores``.

    ``AUC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)`` with ``R_pos`` the sum of the
    positives' average ranks: the probability that a random positive scores above a random
    negative, ties counting one half. ``nan`` when one of the two classes is absent (the AUC
    is undefined there).

    Raises:
        ValueError: shapes differ, or a label is neither 0 nor 1.
    """
    scores, labels = _as_numpy(scores).ravel(), _as_numpy(labels).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f'roc_auc: {scores.size} scores but {labels.size} labels.')
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError('roc_auc: labels must be 0 or 1 (mask uncertain ones out first).')
    positive = labels == 1
    n_pos = int(positive.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float('nan')
    rank_sum = average_ranks(scores)[positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def multilabel_auc(scores: ArrayLike, labels: ArrayLike,
                   mask: Optional[ArrayLike] = None) -> Tuple[float, np.ndarray]:
    """Per-class ROC AUC of ``(N, K)`` scores and labels, and their mean.

    Args:
        scores: ``(N, K)`` scores, higher meaning "more likely positive".
        labels: ``(N, K)`` labels in {0, 1}; other values (e.g. -1, uncertain) must be
            masked out.
        mask: ``(N, K)`` booleans, the entries that count. Defaults to the entries whose
            label is 0 or 1.

    Returns:
        ``(mean, per_class)``: ``per_class`` holds ``nan`` for a class with only positives or
        only negatives; ``mean`` averages the other classes (``nan`` if there is none).
    """
    scores, labels = _as_numpy(scores), _as_numpy(labels)
    if scores.ndim != 2 or scores.shape != labels.shape:
        raise ValueError(f'multilabel_auc: scores {scores.shape} and labels {labels.shape} '
                         'must both be (N, K).')
    valid = np.isin(labels, (0.0, 1.0)) if mask is None else \
        _as_numpy(mask, dtype=bool) & np.isin(labels, (0.0, 1.0))
    per_class = np.array([roc_auc(scores[valid[:, c], c], labels[valid[:, c], c])
                          for c in range(scores.shape[1])], dtype=np.float64)
    defined = per_class[~np.isnan(per_class)]
    mean = float(defined.mean()) if defined.size else float('nan')
    return mean, per_class
