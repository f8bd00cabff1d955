"""Data structures."""
from .data_sample import DiRADataSample
from .seg_data_sample import SegDataSample

__all__ = ['DiRADataSample', 'SegDataSample']
