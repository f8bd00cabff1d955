"""Metrics."""
from .dice_metric import DiceMetric
from .loss_metric import SSLLossMetric

__all__ = ['DiceMetric', 'SSLLossMetric']
