"""Self-supervised algorithms."""
from .barlowtwins import BarlowTwins
from .base import BaseSelfSupervisor
from .byol import BYOL
from .dira import DiRA
from .moco import MoCo
from .restoration_only import RestorationOnly
from .self_classification import SelfClassification
from .simsiam import SimSiam

__all__ = ['BarlowTwins', 'BaseSelfSupervisor', 'BYOL', 'DiRA', 'MoCo', 'SimSiam',
           'RestorationOnly', 'SelfClassification']
