"""Self-supervised algorithms."""
from .base import BaseSelfSupervisor
from .dira import DiRA
from .moco import MoCo

__all__ = ['BaseSelfSupervisor', 'DiRA', 'MoCo']
