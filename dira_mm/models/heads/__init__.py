"""Heads."""
from .contrastive_head import ContrastiveHead
from .cross_correlation_head import CrossCorrelationHead
from .latent_predict_head import LatentPredictHead
from .restorative_head import RestorativeHead
from .transvw_cls_head import TransVWClsHead

__all__ = ['ContrastiveHead', 'CrossCorrelationHead', 'LatentPredictHead', 'RestorativeHead',
           'TransVWClsHead']
