"""Metrics."""
from .dice_metric import DiceMetric
from .loss_metric import SSLLossMetric
from .multilabel_auc import MultiLabelAUC

__all__ = ['DiceMetric', 'MultiLabelAUC', 'SSLLossMetric']
