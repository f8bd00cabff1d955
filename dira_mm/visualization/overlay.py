"""Heat-map overlays of class activation maps on gray radiographs, as PNG-ready BGR arrays."""
from typing import Optional, Sequence

import cv2
import numpy as np

__all__ = ['overlay_heatmap', 'captioned_row']


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
        strip = np.zeros((caption_height if text else 0, panel.shape[1], 3), np.uint8)
        if text:
            scale = 0.4  # shrink the font until the caption fits the panel (or 0.25)
            while scale > 0.25 and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale,
                                                   1)[0][0] > panel.shape[1] - 4:
                scale -= 0.05
            cv2.putText(strip, text, (2, caption_height - 5), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (255, 255, 255), 1, cv2.LINE_AA)
        columns.append(np.concatenate([strip, panel], axis=0))
        columns.append(np.zeros((columns[-1].shape[0], gap, 3), np.uint8))
    return np.concatenate(columns[:-1], axis=1)
