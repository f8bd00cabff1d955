"""Training-loop components of dira_mm: hooks, optimizer constructors, log processor."""
from .hooks import *  # noqa: F401,F403
from .hooks import __all__ as _hooks_all
from .optimizers import *  # noqa: F401,F403
from .optimizers import __all__ as _optim_all
from .runner import *  # noqa: F401,F403
from .runner import __all__ as _runner_all

__all__ = list(_hooks_all) + list(_optim_all) + list(_runner_all)
