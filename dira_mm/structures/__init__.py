"""Data structures."""
from .data_sample import DiRADataSample

__all__ = ['DiRADataSample']
