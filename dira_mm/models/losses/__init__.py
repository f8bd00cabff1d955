"""Losses."""
from .cosine_similarity_loss import CosineSimilarityLoss
from .cross_correlation_loss import CrossCorrelationLoss
from .dice_loss import DiceLoss
from .lsgan_loss import LSGANLoss
from .masked_bce_loss import MaskedBCEWithLogitsLoss

__all__ = ['CosineSimilarityLoss', 'CrossCorrelationLoss', 'DiceLoss', 'LSGANLoss',
           'MaskedBCEWithLogitsLoss']
