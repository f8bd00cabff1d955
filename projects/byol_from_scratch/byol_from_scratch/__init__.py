"""An SSL method added to dira_mm from outside the package (see the project README).

Importing the package registers ``MyBYOL`` in ``dira_mm.registry.MODELS``; configs do it
through ``custom_imports = dict(imports=['byol_from_scratch'])``.
"""
from .my_byol import MyBYOL

__all__ = ['MyBYOL']
