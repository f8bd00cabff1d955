"""Volumes as pictures: three orthogonal middle slices side by side."""
from typing import List, Sequence

import numpy as np

__all__ = ['orthogonal_slices', 'slice_panel']


def orthogonal_slices(volume: np.ndarray) -> List[np.ndarray]:
    """The axial, coronal and sagittal middle slices of an ``(X, Y, Z)`` RAS volume.

    Each slice is oriented for display with the superior / anterior direction up and the
    patient's right on the right (neurological convention): axial ``(Y, X)`` with
    anterior up, coronal ``(Z, X)`` and sagittal ``(Z, Y)`` with superior up.
    """
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f'orthogonal_slices: expected an (X, Y, Z) volume, got shape '
                         f'{volume.shape}.')
    x, y, z = (s // 2 for s in volume.shape)
    axial = volume[:, :, z].T[::-1]
    coronal = volume[:, y, :].T[::-1]
    sagittal = volume[x, :, :].T[::-1]
    return [np.ascontiguousarray(s) for s in (axial, coronal, sagittal)]


def slice_panel(volume: np.ndarray, gap: int = 2) -> np.ndarray:
    """The three :func:`orthogonal_slices` in one 2-D array, bottom-aligned, ``gap`` columns
    of zeros between them (the padding is zero too)."""
    slices: Sequence[np.ndarray] = orthogonal_slices(volume)
    height = max(s.shape[0] for s in slices)
    parts = []
    for i, s in enumerate(slices):
        parts.append(np.pad(s, ((height - s.shape[0], 0), (0, 0))))
        if i < len(slices) - 1 and gap > 0:
            parts.append(np.zeros((height, gap), dtype=s.dtype))
    return np.concatenate(parts, axis=1)
