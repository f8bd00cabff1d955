"""Pictures of what a model looks at: class activation maps and their overlays."""
from .cam import class_activation_maps, grad_cams, normalize_cams, resize_cams
from .overlay import captioned_row, colour_bar, overlay_heatmap, title_band

__all__ = [
    'class_activation_maps', 'grad_cams', 'normalize_cams', 'resize_cams', 'overlay_heatmap',
    'captioned_row', 'colour_bar', 'title_band'
]
