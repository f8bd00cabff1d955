"""dira_mm: self-supervised pre-training of medical-image models on mmengine."""
from .utils import register_safe_loader
from .version import __version__

# Every checkpoint mmengine loads goes through torch.load(weights_only=True).
register_safe_loader()

__all__ = ['__version__']
