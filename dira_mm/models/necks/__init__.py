"""Necks / projectors."""
from .mocov2_neck import MoCoV2Neck
from .nonlinear_neck import NonLinearNeck

__all__ = ['MoCoV2Neck', 'NonLinearNeck']
