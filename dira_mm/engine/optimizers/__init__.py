"""Optimizers, optimizer wrappers and optimizer constructors."""
from .amp_optim_wrapper import AutoAmpOptimWrapper, enable_amp
from .lars import LARS
from .multi_optim_wrapper_constructor import MultiOptimWrapperConstructor

__all__ = ['AutoAmpOptimWrapper', 'LARS', 'MultiOptimWrapperConstructor', 'enable_amp']
