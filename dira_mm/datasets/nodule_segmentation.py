"""Nodule segmentation on CT volumes: volume + mask pairs (the 3-D demo layout, or any list)."""
import glob
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np

from dira_mm.registry import DATASETS
from .base_dataset import MedicalImageDataset
from .image_folder import read_list_file
from .readers import ImageReadError
from .volume_readers import DEFAULT_MAX_VOXELS, check_volume_options, hu_window, read_volume

__all__ = ['NoduleSegmentationDataset', 'split_volume_ext']

_VOLUME_EXTS = ('.nii.gz', '.nii', '.mhd', '.mha')


def split_volume_ext(name: str):
    """``('ct/a', '.nii.gz')`` for ``'ct/a.nii.gz'`` (double extensions kept together)."""
    low = name.lower()
    for ext in _VOLUME_EXTS:
        if low.endswith(ext):
            return name[:-len(ext)], name[-len(ext):]
    return osp.splitext(name)


@DATASETS.register_module()
class NoduleSegmentationDataset(MedicalImageDataset):
    """CT volumes with binary nodule masks, e.g. ``tools/misc/make_ct_demo_data.py``'s output.

    Each line of ``ann_file`` names a volume relative to ``data_prefix['img_path']``; its mask
    is the same name with ``mask_suffix`` before the extension (``a.nii.gz`` ->
    ``a_mask.nii.gz``) in ``data_prefix['seg_map_path']`` (default: the image folder). Without
    ``ann_file`` every volume of the image folder that is not a mask is used (sorted).

    The sample is the **whole** volume (for sliding-window validation): ``img`` float32
    ``(1, X, Y, Z)`` in RAS, windowed by ``window`` (``[-1000, 1000]`` HU -> ``[0, 1]``; None
    keeps HU) and ``gt_mask`` uint8 ``(1, X, Y, Z)`` (mask > 0.5). For training, crop patches
    in the pipeline with ``RandPosNegCrop``. Unreadable volumes or masks, and a mask whose
    shape or affine differs from its volume's, raise ``ImageReadError``, so they are skipped and
    counted (``on_error='skip'``). Keys added: ``spatial_dims`` (3), ``spacing``, ``affine``,
    ``img_shape``, ``ori_shape``.

    Args:
        window (tuple[float, float], optional): HU window to ``[0, 1]``. Defaults to
            (-1000, 1000).
        mask_suffix (str): Added to the volume name before its extension. Defaults to '_mask'.
        nonfinite (str): As in ``read_volume``. Defaults to 'skip'.
        max_voxels (int, optional): As in ``read_volume``.
        **kwargs: Arguments of :class:`MedicalImageDataset` (``ann_file``, ``data_root``,
            ``data_prefix`` with ``img_path`` and optional ``seg_map_path``, ``pipeline``,
            ``seed``, ``on_error``, ...).
    """

    METAINFO = dict(classes=('nodule', ))

    def __init__(self,
                 window: Optional[Sequence[float]] = (-1000, 1000),
                 mask_suffix: str = '_mask',
                 nonfinite: str = 'skip',
                 max_voxels: Optional[int] = DEFAULT_MAX_VOXELS,
                 **kwargs) -> None:
        check_volume_options(nonfinite, max_voxels)
        if window is not None and (len(window) != 2 or not float(window[1]) > float(window[0])):
            raise ValueError(f'{type(self).__name__}: `window` must be (low, high) with '
                             f'high > low, or None; got {window!r}.')
        if not mask_suffix:
            raise ValueError(f'{type(self).__name__}: `mask_suffix` must not be empty.')
        self.window = None if window is None else (float(window[0]), float(window[1]))
        self.mask_suffix = mask_suffix
        self.nonfinite = nonfinite
        self.max_voxels = max_voxels
        super().__init__(**kwargs)

    def _mask_dir(self) -> str:
        folder = self.data_prefix.get('seg_map_path')
        return folder if folder else self.data_prefix.get('img_path', '') or ''

    def mask_name(self, name: str) -> str:
        """The mask file name of volume ``name``."""
        stem, ext = split_volume_ext(name)
        return stem + self.mask_suffix + ext

    def load_data_list(self) -> List[dict]:
        img_dir = self.data_prefix.get('img_path', '') or ''
        if self.ann_file:
            names = read_list_file(
                self.ann_file, type(self).__name__,
                'Set `ann_file` to a list of volume names (or to \'\' to scan the folder).')
        else:
            names = sorted(
                osp.relpath(p, img_dir) for ext in _VOLUME_EXTS
                for p in glob.glob(osp.join(img_dir, '**', '*' + ext), recursive=True)
                if not split_volume_ext(p)[0].endswith(self.mask_suffix))
        return [
            dict(img_path=self._join_img_path(n),
                 seg_map_path=osp.abspath(osp.join(self._mask_dir(), self.mask_name(n))))
            for n in names
        ]

    def load_sample(self, results: dict) -> dict:
        """Read the volume and its mask into ``img`` and ``gt_mask``."""
        vol, meta = read_volume(results['img_path'], nonfinite=self.nonfinite,
                                max_voxels=self.max_voxels)
        mask, mask_meta = read_volume(results['seg_map_path'], nonfinite=self.nonfinite,
                                      max_voxels=self.max_voxels)
        if mask.shape != vol.shape or not np.allclose(mask_meta['affine'], meta['affine'],
                                                      atol=1e-3):
            raise ImageReadError(
                results['seg_map_path'], f'the mask ({mask.shape}) does not lie on the grid of '
                f'its volume "{results["img_path"]}" ({vol.shape}; affines equal: '
                f'{np.allclose(mask_meta["affine"], meta["affine"], atol=1e-3)})',
                'Write the mask on the volume grid, or remove the pair from the list.')
        img = vol if self.window is None else hu_window(vol, *self.window)
        results['img'] = img[None]
        results['gt_mask'] = (mask > 0.5).astype(np.uint8)[None]
        results['spatial_dims'] = 3
        results['spacing'] = meta['spacing']
        results['affine'] = meta['affine']
        results['img_shape'] = tuple(vol.shape)
        results['ori_shape'] = tuple(vol.shape)
        return results
