"""Functional evaluation: rank-based AUC and the k-NN / linear probes of frozen features."""
from .auc import average_ranks, multilabel_auc, roc_auc
from .knn import knn_predict
from .linear_probe import linear_probe_predict

__all__ = ['average_ranks', 'roc_auc', 'multilabel_auc', 'knn_predict',
           'linear_probe_predict']
