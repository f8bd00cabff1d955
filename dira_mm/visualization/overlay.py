"""Heat-map overlays of class activation maps on gray radiographs, as PNG-ready BGR arrays."""
from typing import Optional, Sequence

import cv2
import numpy as np

__all__ = ['overlay_heatmap', 'captioned_row', 'title_band', 'colour_bar']


def _gray_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3:
        if image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
            image = image.transpose(1, 2, 0)  # CHW -> HWC
        image = image[..., 0] if image.shape[-1] == 1 else cv2.cvtColor(
            image.astype(np.uint8), cv2.COLOR_RGB2GRAY)
    if image.dtype != np.uint8:
        lo, hi = float(image.min()), float(image.max())
        image = ((image - lo) / max(hi - lo, 1e-8) * 255.0 + 0.5).astype(np.uint8)
    return image


def overlay_heatmap(image: np.ndarray,
                    heatmap: np.ndarray,
                    alpha: float = 0.45,
                    colormap: int = cv2.COLORMAP_JET) -> np.ndarray:
    """Blend a ``[0, 1]`` heat map (``(H, W)``, same size as ``image``) over a gray image.

    Returns a BGR uint8 ``(H, W, 3)`` array: ``(1 - alpha * h) * image + alpha * h * colour``,
    so pixels where the map is 0 keep the radiograph unchanged.
    """
    gray = _gray_uint8(image)
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.shape != gray.shape:
        raise ValueError(f'overlay_heatmap: heat map {heatmap.shape} and image {gray.shape} '
                         'differ in size; resize the map first.')
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f'overlay_heatmap: alpha must be in [0, 1], got {alpha}.')
    heat = np.clip(heatmap, 0.0, 1.0)
    colour = cv2.applyColorMap((heat * 255.0 + 0.5).astype(np.uint8), colormap)
    base = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR).astype(np.float32)
    weight = (alpha * heat)[..., None]
    out = (1.0 - weight) * base + weight * colour.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _caption_strip(text: str, width: int, height: int) -> np.ndarray:
    """A black ``(height, width)`` uint8 strip with ``text`` in white, shrunk to fit the width
    (down to font scale 0.25; longer text is clipped)."""
    strip = np.zeros((height, width), np.uint8)
    if text and height > 0:
        scale = 0.4
        while scale > 0.25 and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale,
                                               1)[0][0] > width - 4:
            scale -= 0.05
        cv2.putText(strip, text, (2, height - 5), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 1,
                    cv2.LINE_AA)
    return strip


def title_band(widths: Sequence[int], titles: Sequence[str], height: int = 16) -> np.ndarray:
    """Column titles above a grid: a ``(height, sum(widths))`` uint8 band (white on black),
    each title left-aligned over its column."""
    if len(widths) != len(titles):
        raise ValueError(f'title_band: {len(titles)} titles for {len(widths)} columns.')
    return np.concatenate([_caption_strip(t, w, height) for w, t in zip(widths, titles)], axis=1)


def colour_bar(height: int,
               low: float = 0.0,
               high: float = 1.0,
               colormap: int = cv2.COLORMAP_JET,
               bar_width: int = 10,
               label_width: int = 30) -> np.ndarray:
    """A vertical colour scale, ``high`` at the top and ``low`` at the bottom (BGR uint8).

    Row ``y`` of the bar (the left ``bar_width`` columns) is the colormap's colour of the heat
    ``1 - y / (height - 1)``, i.e. of the value ``low + (high - low) * (1 - y / (height - 1))``;
    the right ``label_width`` columns print ``high`` and ``low``. :func:`overlay_heatmap` blends
    these colours with weight ``alpha * heat``, so the bar shows the full-strength colour.
    """
    if height < 2:
        raise ValueError(f'colour_bar: height must be >= 2, got {height}.')
    ramp = np.round(np.linspace(255.0, 0.0, height)).astype(np.uint8)
    bar = cv2.applyColorMap(np.repeat(ramp[:, None], bar_width, axis=1), colormap)
    labels = np.zeros((height, label_width, 3), np.uint8)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.3
    for text, y in ((f'{high:g}', 9), (f'{low:g}', height - 2)):
        cv2.putText(labels, text, (2, y), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([bar, labels], axis=1)


def captioned_row(panels: Sequence[np.ndarray],
                  captions: Optional[Sequence[str]] = None,
                  caption_height: int = 18,
                  gap: int = 2) -> np.ndarray:
    """Panels of one height side by side, each with a caption strip above it (BGR uint8)."""
    if not panels:
        raise ValueError('captioned_row: no panels.')
    panels = [cv2.cvtColor(p, cv2.COLOR_GRAY2BGR) if p.ndim == 2 else p for p in panels]
    height = panels[0].shape[0]
    if any(p.shape[0] != height for p in panels):
        raise ValueError('captioned_row: the panels differ in height.')
    captions = list(captions or [''] * len(panels))
    columns = []
    for panel, text in zip(panels, captions):
        strip = _caption_strip(text, panel.shape[1], caption_height if text else 0)
        columns.append(np.concatenate([cv2.cvtColor(strip, cv2.COLOR_GRAY2BGR), panel], axis=0))
        columns.append(np.zeros((columns[-1].shape[0], gap, 3), np.uint8))
    return np.concatenate(columns[:-1], axis=1)
