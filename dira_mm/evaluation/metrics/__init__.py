"""Metrics."""
from .loss_metric import SSLLossMetric

__all__ = ['SSLLossMetric']
