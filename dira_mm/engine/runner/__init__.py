"""Runner components of dira_mm (registered in ``dira_mm.registry``)."""
from .log_processor import EvalCurrentLogProcessor

__all__ = ['EvalCurrentLogProcessor']
