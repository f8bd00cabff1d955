"""Functional evaluation: rank-based AUC, the k-NN / linear probes of frozen features and the
pointing game of localisation maps."""
from .auc import average_ranks, multilabel_auc, roc_auc
from .knn import knn_predict
from .linear_probe import linear_probe_predict
from .pointing_game import pointing_game_hit

__all__ = ['average_ranks', 'roc_auc', 'multilabel_auc', 'knn_predict',
           'linear_probe_predict', 'pointing_game_hit']
