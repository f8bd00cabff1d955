"""Runner components of dira_mm (registered in ``dira_mm.registry``)."""
from .log_processor import EvalCurrentLogProcessor
from .runner import DiraRunner

__all__ = ['EvalCurrentLogProcessor', 'DiraRunner']
