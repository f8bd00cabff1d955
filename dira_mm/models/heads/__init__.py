"""Heads."""
from .contrastive_head import ContrastiveHead
from .cross_correlation_head import CrossCorrelationHead
from .latent_predict_head import LatentPredictHead
from .restorative_head import RestorativeHead

__all__ = ['ContrastiveHead', 'CrossCorrelationHead', 'LatentPredictHead', 'RestorativeHead']
