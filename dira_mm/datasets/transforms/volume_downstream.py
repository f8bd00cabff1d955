"""Transforms of the 3-D downstream tasks: nodule patch crops and volume packers.

- :class:`RandPosNegCrop`: MONAI's ``RandCropByPosNegLabeld`` (foreground/background-centred
  patches of image and mask), seeded per sample: its ``RandomState`` is re-seeded from
  ``get_rng(results)`` on every call, so the crops are a pure function of
  ``(seed, epoch, index)`` under any number of workers.
- :class:`PackVolumeSegInputs` / :class:`PackVolumeClsInputs`: the 2-D packers
  (``PackSegInputs``/``PackClsInputs``) read a 3-D array as ``(H, W, C)`` and transpose it, so
  channel-first ``(C, *spatial)`` volumes are packed here instead: as they are, no transpose.
"""
from typing import Optional, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from dira_mm.registry import TRANSFORMS
from dira_mm.structures import DiRADataSample, SegDataSample
from .formatting import collect_metainfo
from .utils import get_rng

__all__ = ['RandPosNegCrop', 'PackVolumeSegInputs', 'PackVolumeClsInputs']


def _channel_first(arr, what: str, spatial_dims: Optional[int]) -> torch.Tensor:
    if isinstance(arr, torch.Tensor):
        arr = arr.as_tensor() if hasattr(arr, 'as_tensor') else arr
        tensor = arr.detach().contiguous()
    else:
        tensor = torch.from_numpy(np.ascontiguousarray(arr))
    if spatial_dims is not None and tensor.ndim != spatial_dims + 1:
        raise ValueError(f'{what}: expected a channel-first (C, *spatial) array with '
                         f'{spatial_dims} spatial dims, got shape {tuple(tensor.shape)}.')
    return tensor


@TRANSFORMS.register_module()
class RandPosNegCrop(BaseTransform):
    """Crop patches of ``img`` and ``gt_mask`` centred on foreground or background voxels.

    A wrapper of ``monai.transforms.RandCropByPosNegLabeld``: each patch is centred on a
    foreground voxel of ``gt_mask`` with probability ``pos / (pos + neg)``, else on a
    background voxel (centres moved inwards so the patch fits the volume). The MONAI transform
    is re-seeded from the per-sample generator before every call. A volume smaller than
    ``size`` on some axis yields a smaller patch (``allow_smaller``) unless padded before.

    Output: ``img`` (float32 ``(C, *size)``) and ``gt_mask`` (uint8 ``(1, *size)``) as numpy
    arrays when ``num_samples == 1``, lists of ``num_samples`` arrays otherwise;
    ``crop_centers`` lists the (moved) centres, ``img_shape`` becomes the patch shape.

    Args:
        size (Sequence[int]): Patch size. Defaults to (64, 64, 32).
        pos (float): Weight of foreground-centred patches. Defaults to 1.
        neg (float): Weight of background-centred patches. Defaults to 1.
        num_samples (int): Patches per call. Defaults to 1.
        allow_smaller (bool): Allow volumes smaller than ``size``. Defaults to True.
        image_threshold (float, optional): When set, background centres are drawn only where
            ``img > image_threshold`` (MONAI's ``image_key``/``image_threshold``), e.g. 0.05 on
            a [-1000, 1000] HU window (-900 HU: lung, ~-860 HU, passes) keeps them out of the
            air around the body; 0.0 does not, as noisy air above -1000 HU reads above 0.
            Defaults to None (any background voxel).
    """

    def __init__(self, size: Sequence[int] = (64, 64, 32), pos: float = 1.0, neg: float = 1.0,
                 num_samples: int = 1, allow_smaller: bool = True,
                 image_threshold: Optional[float] = None) -> None:
        from monai.transforms import RandCropByPosNegLabeld
        if pos < 0 or neg < 0 or pos + neg <= 0:
            raise ValueError(f'RandPosNegCrop: pos and neg must be >= 0 with a positive sum, '
                             f'got {pos} and {neg}.')
        if int(num_samples) < 1:
            raise ValueError(f'RandPosNegCrop: num_samples must be >= 1, got {num_samples}.')
        self.size = tuple(int(s) for s in size)
        self.pos, self.neg = float(pos), float(neg)
        self.num_samples = int(num_samples)
        self.allow_smaller = bool(allow_smaller)
        self.image_threshold = None if image_threshold is None else float(image_threshold)
        extra = {} if self.image_threshold is None else dict(
            image_key='img', image_threshold=self.image_threshold)
        self._crop = RandCropByPosNegLabeld(
            keys=['img', 'gt_mask'], label_key='gt_mask', spatial_size=self.size, pos=self.pos,
            neg=self.neg, num_samples=self.num_samples, allow_smaller=self.allow_smaller,
            **extra)

    def transform(self, results: dict) -> dict:
        img, mask = results.get('img'), results.get('gt_mask')
        if img is None or mask is None:
            raise KeyError('RandPosNegCrop needs "img" and "gt_mask" (a nodule segmentation '
                           'dataset loads both).')
        if img.ndim != len(self.size) + 1 or mask.shape[1:] != img.shape[1:]:
            raise ValueError(f'RandPosNegCrop: img {img.shape} and gt_mask {mask.shape} must be '
                             f'channel-first with {len(self.size)} equal spatial dims '
                             f'({results.get("img_path", "?")}).')
        rng = get_rng(results)
        self._crop.set_random_state(seed=int(rng.integers(0, 2**32)))
        patches = self._crop({'img': img, 'gt_mask': mask})
        imgs = [np.asarray(p['img'].as_tensor().numpy() if hasattr(p['img'], 'as_tensor')
                           else p['img'], dtype=np.float32) for p in patches]
        masks = [np.asarray(p['gt_mask'].as_tensor().numpy() if hasattr(p['gt_mask'], 'as_tensor')
                            else p['gt_mask']).astype(np.uint8) for p in patches]
        results['crop_centers'] = [tuple(int(c) for c in center)
                                   for center in self._crop.cropper.centers]
        single = self.num_samples == 1
        results['img'] = imgs[0] if single else imgs
        results['gt_mask'] = masks[0] if single else masks
        results['img_shape'] = tuple(imgs[0].shape[1:])
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, pos={self.pos}, neg={self.neg}, '
                f'num_samples={self.num_samples}, allow_smaller={self.allow_smaller}, '
                f'image_threshold={self.image_threshold})')


def _stack_or_one(value, what: str, spatial_dims: Optional[int]) -> torch.Tensor:
    if isinstance(value, (list, tuple)):
        return torch.stack([_channel_first(v, what, spatial_dims) for v in value])
    return _channel_first(value, what, spatial_dims)


@TRANSFORMS.register_module()
class PackVolumeSegInputs(BaseTransform):
    """Pack a volume and its mask: ``{'inputs': (C, *spatial), 'data_samples': SegDataSample}``.

    No transpose (the arrays are already channel-first); ``gt_mask`` becomes uint8
    ``(1, *spatial)``. Lists (``RandPosNegCrop(num_samples > 1)``) are stacked to
    ``(N, C, *spatial)``. ``spatial_dims`` (default: ``results['spatial_dims']``, else 3) is
    checked against the arrays.

    Args:
        meta_keys (Sequence[str]): Keys of ``results`` kept as metainfo.
    """

    def __init__(self, meta_keys: Sequence[str] = (
            'img_path', 'seg_map_path', 'sample_idx', 'ori_shape', 'img_shape', 'spacing',
            'affine', 'spatial_dims', 'crop_centers', 'skipped')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        dims = int(results.get('spatial_dims', 3))
        data_sample = SegDataSample()
        if results.get('gt_mask') is not None:
            mask = results['gt_mask']
            mask = [np.asarray(m, dtype=np.uint8) for m in mask] if isinstance(
                mask, (list, tuple)) else np.asarray(mask, dtype=np.uint8)
            data_sample.gt_mask = _stack_or_one(mask, 'PackVolumeSegInputs gt_mask', dims)
        data_sample.set_metainfo(collect_metainfo(results, self.meta_keys))
        inputs = _stack_or_one(results['img'], 'PackVolumeSegInputs img', dims)
        return {'inputs': inputs, 'data_samples': data_sample}

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'


@TRANSFORMS.register_module()
class PackVolumeClsInputs(BaseTransform):
    """Pack a cube and its label: ``{'inputs': (C, *spatial), 'data_samples': DiRADataSample}``.

    ``gt_label`` becomes a float32 tensor data field (as ``PackClsInputs``); no transpose.

    Args:
        meta_keys (Sequence[str]): Keys of ``results`` kept as metainfo.
    """

    def __init__(self, meta_keys: Sequence[str] = (
            'img_path', 'sample_idx', 'seriesuid', 'candidate_mm', 'candidate_voxel',
            'img_shape', 'spatial_dims', 'skipped')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        dims = int(results.get('spatial_dims', 3))
        inputs = _stack_or_one(results['img'], 'PackVolumeClsInputs img', dims)
        data_sample = DiRADataSample()
        if results.get('gt_label') is not None:
            data_sample.gt_label = torch.as_tensor(
                np.asarray(results['gt_label'], dtype=np.float32))
        data_sample.set_metainfo(collect_metainfo(results, self.meta_keys))
        return {'inputs': inputs, 'data_samples': data_sample}

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'

