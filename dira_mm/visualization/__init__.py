"""Pictures: class activation maps and their overlays; volumes as orthogonal slices."""
from .cam import class_activation_maps, grad_cams, normalize_cams, resize_cams
from .overlay import captioned_row, colour_bar, overlay_heatmap, title_band
from .slices import orthogonal_slices, slice_panel

__all__ = [
    'class_activation_maps', 'grad_cams', 'normalize_cams', 'resize_cams', 'overlay_heatmap',
    'captioned_row', 'colour_bar', 'title_band', 'orthogonal_slices', 'slice_panel'
]
