"""Optimizers and optimizer constructors."""
from .lars import LARS
from .multi_optim_wrapper_constructor import MultiOptimWrapperConstructor

__all__ = ['LARS', 'MultiOptimWrapperConstructor']
