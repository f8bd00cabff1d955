"""Heads."""
from .contrastive_head import ContrastiveHead
from .restorative_head import RestorativeHead

__all__ = ['ContrastiveHead', 'RestorativeHead']
