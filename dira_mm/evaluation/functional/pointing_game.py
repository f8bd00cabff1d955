"""The pointing game (Zhang et al., ECCV 2016): does a saliency map's peak hit the object?"""
from typing import Union

import numpy as np
import torch

__all__ = ['pointing_game_hit']


def pointing_game_hit(saliency: Union[np.ndarray, torch.Tensor],
                      mask: Union[np.ndarray, torch.Tensor],
                      tolerance: float = 0.0) -> bool:
    """Whether the maximum of ``saliency`` lies within ``tolerance`` pixels of ``mask``.

    Args:
        saliency: ``(H, W)`` map (e.g. a class activation map at the image size).
        mask: ``(H, W)`` booleans, the object (e.g. a nodule's disk).
        tolerance: allowed distance in pixels from the object (the original uses 15 px at
            224 px); 0 means the peak must be on the object.

    Returns:
        True for a hit. Ties at the maximum count as a hit if any of them hits.
    """
    sal = saliency.detach().cpu().numpy() if isinstance(saliency, torch.Tensor) else \
        np.asarray(saliency)
    obj = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    obj = obj.astype(bool)
    if sal.shape != obj.shape or sal.ndim != 2:
        raise ValueError(f'pointing_game_hit: saliency {sal.shape} and mask {obj.shape} must '
                         'be the same (H, W).')
    if not obj.any():
        raise ValueError('pointing_game_hit: the mask is empty; the game needs an object.')
    peaks = np.argwhere(sal >= sal.max())
    targets = np.argwhere(obj)
    dist = np.sqrt(((peaks[:, None, :] - targets[None, :, :])**2).sum(-1)).min()
    return bool(dist <= tolerance)
