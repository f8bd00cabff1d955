"""dira_mm: self-supervised pre-training of medical-image models on mmengine."""
from .version import __version__

__all__ = ['__version__']
