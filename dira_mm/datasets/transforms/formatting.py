"""Pack the views, the target and the metadata of a sample for the model."""
from typing import Any, Dict, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from dira_mm.registry import TRANSFORMS
from dira_mm.structures import DiRADataSample

__all__ = ['PackDiRAInputs', 'collect_metainfo']

# Images packed as uint8 (1, H, W) data fields when present.
_IMAGE_KEYS = ('target', 'clean')
# Keys stored as data fields of the data sample (the rest of meta_keys are metainfo).
_DATA_KEYS = ('gt_label', )


def _to_chw_tensor(img: np.ndarray) -> torch.Tensor:
    """``(H, W)`` -> ``(1, H, W)``, ``(H, W, C)`` -> ``(C, H, W)``; contiguous, no dtype
    change (uint8 stays uint8: the data preprocessor converts on the device)."""
    if img.ndim == 2:
        return torch.from_numpy(np.ascontiguousarray(img))[None]
    if img.ndim == 3:
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    raise ValueError(f'expected an (H, W) or (H, W, C) image, got shape {img.shape}')


def _to_tensor_nd(img: np.ndarray, spatial_dims: int, key: str) -> torch.Tensor:
    """A channel-first ``(C, *spatial)`` array (``spatial_dims`` spatial axes) as a contiguous
    tensor, dtype kept (float volumes stay float); nothing is guessed from the shape."""
    img = np.asarray(img)
    if img.ndim != spatial_dims + 1:
        raise ValueError(
            f'PackDiRAInputs(spatial_dims={spatial_dims}): results[{key!r}] must be a '
            f'channel-first (C, *spatial) array with {spatial_dims} spatial axes, got shape '
            f'{img.shape}. Add the channel axis (e.g. LoadVolume does) or fix spatial_dims.')
    if not img.flags.writeable:  # e.g. a read-only memory map: torch needs writable memory
        img = img.copy()
    return torch.from_numpy(np.ascontiguousarray(img))


def collect_metainfo(results: dict, meta_keys: Sequence[str]) -> Dict[str, Any]:
    """``{key: results[key]}`` for the ``meta_keys`` found in ``results``, in ``meta_keys``
    order; ``skipped`` (unreadable files skipped to produce the sample), when asked for,
    defaults to 0 so that it can always be summed."""
    metainfo = {}
    for key in meta_keys:
        if key in results:
            metainfo[key] = results[key]
        elif key == 'skipped':
            metainfo[key] = 0
    return metainfo


@TRANSFORMS.register_module()
class PackDiRAInputs(BaseTransform):
    """Pack ``results`` into ``{'inputs': [Tensor], 'data_samples': DiRADataSample}``.

    ``inputs`` is a list with one ``uint8 (1, H, W)`` tensor per view (a single ``img``
    gives a list of one). ``data_samples.target`` is the ``uint8 (1, H, W)`` target when
    ``results['target']`` exists (``clean``, the undistorted view of ``DiRAViews(
    keep_clean=True)``, likewise); ``gt_label`` is a data field; the other ``meta_keys``
    that exist become metainfo. ``skipped`` (unreadable files skipped to produce this
    sample) defaults to 0 when requested, so it is always there to be summed.

    **Spatial rank.** ``spatial_dims=2`` (default) is the 2-D X-ray path, unchanged: ``(H, W)``
    gray images become ``(1, H, W)`` and ``(H, W, C)`` ones ``(C, H, W)``, uint8 kept.
    ``spatial_dims=3`` packs channel-first ``(C, X, Y, Z)`` arrays (volumes, cubes) as they
    are, dtype kept (float32 in ``[0, 1]`` after a window), and refuses any other rank
    instead of guessing; when ``results['spatial_dims']`` exists (``LoadVolume`` sets it) it
    must agree.

    Args:
        meta_keys (Sequence[str]): Keys of ``results`` to keep in the data sample.
        spatial_dims (int): 2 or 3. Defaults to 2.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('img_path', 'sample_idx', 'gt_label',
                                             'skipped', 'flip', 'distortion'),
                 spatial_dims: int = 2) -> None:
        if spatial_dims not in (2, 3):
            raise ValueError(f'PackDiRAInputs: spatial_dims must be 2 or 3, got '
                             f'{spatial_dims!r}')
        self.meta_keys = tuple(meta_keys)
        self.spatial_dims = int(spatial_dims)

    def _tensor(self, img: np.ndarray, key: str) -> torch.Tensor:
        if self.spatial_dims == 2:
            return _to_chw_tensor(img)
        return _to_tensor_nd(img, self.spatial_dims, key)

    def transform(self, results: dict) -> dict:
        declared = results.get('spatial_dims')
        if declared is not None and int(declared) != self.spatial_dims:
            raise ValueError(f'PackDiRAInputs(spatial_dims={self.spatial_dims}) got a sample '
                             f'with spatial_dims={declared} ({results.get("img_path")}); set '
                             'spatial_dims in the PackDiRAInputs config to match the data.')
        img = results['img']
        views = img if isinstance(img, (list, tuple)) else [img]
        inputs = [self._tensor(view, 'img') for view in views]
        data_sample = DiRADataSample()
        for key in _IMAGE_KEYS:
            if results.get(key) is not None:
                data_sample.set_field(self._tensor(results[key], key), key)
        metainfo = collect_metainfo(results, self.meta_keys)
        for key in _DATA_KEYS:
            if key in metainfo:
                setattr(data_sample, key, metainfo.pop(key))
        data_sample.set_metainfo(metainfo)
        return {'inputs': inputs, 'data_samples': data_sample}

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(meta_keys={self.meta_keys}, '
                f'spatial_dims={self.spatial_dims})')
