"""Weighted k-nearest-neighbour classification of frozen features (multi-label)."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['knn_predict']


@torch.no_grad()
def knn_predict(train_feats: Tensor,
                train_labels: Tensor,
                test_feats: Tensor,
                k: int = 20,
                temperature: float = 0.07,
                train_mask: Optional[Tensor] = None,
                chunk_size: int = 1024) -> Tensor:
    """Per-class scores of ``test_feats`` from their ``k`` nearest training features.

    Neighbours are found by cosine similarity and vote with weight ``exp(sim / T)``, as in
    InstDisc (Wu et al., 2018) and DINO's k-NN evaluation. DINO's votes are one-hot over
    exclusive classes; here the labels are multi-label, so each class gets its own vote:
    the score of class ``c`` is the weighted fraction of positive neighbours,
    ``sum_j w_j y_jc / sum_j w_j`` over the neighbours whose label for ``c`` counts
    (``train_mask``). A score is in ``[0, 1]``; where no neighbour counts, it is the class's
    positive rate in the training set.

    Args:
        train_feats: ``(N, C)`` training features (normalised here).
        train_labels: ``(N, K)`` training labels in {0, 1} where they count.
        test_feats: ``(M, C)`` features to score.
        k: neighbours per query (at most ``N``).
        temperature: ``T`` of the vote weights; smaller favours the closest neighbours.
        train_mask: ``(N, K)`` booleans, the training labels that count. Defaults to the
            labels that are 0 or 1.
        chunk_size: queries per similarity block (bounds memory to ``chunk_size x N``).

    Returns:
        ``(M, K)`` float32 scores on ``test_feats``' device.
    """
    if train_feats.ndim != 2 or test_feats.ndim != 2 or \
            train_feats.shape[1] != test_feats.shape[1]:
        raise ValueError(f'knn_predict: features must be (N, C) and (M, C); got '
                         f'{tuple(train_feats.shape)} and {tuple(test_feats.shape)}.')
    if train_labels.shape[0] != train_feats.shape[0]:
        raise ValueError(f'knn_predict: {train_feats.shape[0]} training features but '
                         f'{train_labels.shape[0]} label rows.')
    if k < 1 or temperature <= 0:
        raise ValueError(f'knn_predict: need k >= 1 and temperature > 0, got k={k}, '
                         f'temperature={temperature}.')
    device = test_feats.device
    train = F.normalize(train_feats.float().to(device), dim=1)
    test = F.normalize(test_feats.float(), dim=1)
    labels = train_labels.float().to(device)
    mask = ((labels == 0) | (labels == 1)) if train_mask is None else \
        train_mask.to(device).bool() & ((labels == 0) | (labels == 1))
    labels = torch.where(mask, labels, torch.zeros_like(labels))
    counted = mask.float()
    prior = (labels.sum(0) / counted.sum(0).clamp_min(1.0))
    k = min(int(k), train.shape[0])
    out = []
    for start in range(0, test.shape[0], chunk_size):
        sims, idx = (test[start:start + chunk_size] @ train.T).topk(k, dim=1)
        # exp((s - max) / T): the same normalised vote, without overflow
        weights = torch.exp((sims - sims[:, :1]) / temperature)  # (m, k)
        num = torch.einsum('mk,mkc->mc', weights, labels[idx] * counted[idx])
        den = torch.einsum('mk,mkc->mc', weights, counted[idx])
        out.append(torch.where(den > 0, num / den.clamp_min(1e-12), prior.expand_as(num)))
    return torch.cat(out) if out else test.new_zeros((0, labels.shape[1]))
