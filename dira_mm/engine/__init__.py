"""Training-loop components of dira_mm: hooks and optimizer constructors."""
from .hooks import *  # noqa: F401,F403
from .hooks import __all__ as _hooks_all
from .optimizers import *  # noqa: F401,F403
from .optimizers import __all__ as _optim_all

__all__ = list(_hooks_all) + list(_optim_all)
