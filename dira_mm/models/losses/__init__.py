"""Losses."""
from .lsgan_loss import LSGANLoss

__all__ = ['LSGANLoss']
