"""Transforms of image + mask pairs for segmentation fine-tuning (gray uint8, numpy/cv2).

The pipeline carries the image in ``results['img']`` (uint8 ``(H, W)``, as everywhere in
dira_mm) and the binary mask in ``results['gt_mask']`` (uint8 ``(H, W)``, 0/1). Geometric
transforms here move both with the same parameters; intensity transforms that touch
``img`` only (e.g. ``ColorJitter``) can be used as they are. A mask is resized with the
image's interpolation, as a float map thresholded at 0.5, so the two stay aligned to the
sub-pixel (nearest neighbour included) and shrinking a mask takes the majority of the pixels
it covers ('area'). Random draws come from ``results['rng']`` (see
:func:`~dira_mm.datasets.transforms.utils.get_rng`).
"""
from typing import Sequence, Tuple, Union

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from dira_mm.registry import TRANSFORMS
from dira_mm.structures import SegDataSample
from ..readers import read_image
from ..rle import rle_decode_union
from .formatting import _to_chw_tensor, collect_metainfo
from .processing import RandomFlip, RandomResizedCrop, flip_image
from .utils import get_rng

__all__ = ['LoadSegMask', 'SegResize', 'SegRandomResizedCrop', 'SegRandomFlip',
           'PackSegInputs']


def _check_pair(results: dict, what: str) -> None:
    img, mask = results.get('img'), results.get('gt_mask')
    if img is None or mask is None:
        raise KeyError(f'{what} needs "img" and "gt_mask" (LoadMedicalImage and LoadSegMask '
                       'before it).')
    if img.shape[:2] != mask.shape[:2]:
        raise ValueError(f'{what}: image {img.shape[:2]} and mask {mask.shape[:2]} differ in '
                         f'size ({results.get("img_path", "?")}).')


def _resize_pair(resizer: RandomResizedCrop, img: np.ndarray,
                 mask: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Resize ``img`` and ``mask`` with one cv2 interpolation (the mask as 0/1 floats)."""
    out_mask = resizer.resize(np.ascontiguousarray(mask, dtype=np.float32))
    return resizer.resize(img), (out_mask >= 0.5).astype(np.uint8)


@TRANSFORMS.register_module()
class LoadSegMask(BaseTransform):
    """Read the binary mask of ``results`` into ``results['gt_mask']`` (uint8 0/1).

    From mask files (``results['seg_map_path']``: one path, or several merged by union,
    e.g. Montgomery's left and right lung; a pixel is foreground when its value is above
    ``threshold``), or from run-length encodings (``results['mask_rle']``: SIIM-ACR strings,
    merged by union, decoded at the size of the image already loaded, so this transform
    comes after ``LoadMedicalImage``). A mask of another size than the image raises, naming
    both files. An unreadable mask file raises ``ImageReadError``, which the dataset skips
    like an unreadable image.

    Args:
        threshold: mask file values above it are foreground (0: any non-zero value).
    """

    def __init__(self, threshold: float = 0) -> None:
        self.threshold = threshold

    def transform(self, results: dict) -> dict:
        img = results.get('img')
        if results.get('mask_rle') is not None:
            if img is None:
                raise KeyError('LoadSegMask: run-length masks are decoded at the image size; '
                               'put LoadMedicalImage before LoadSegMask.')
            mask = rle_decode_union(results['mask_rle'], img.shape[:2])
        elif results.get('seg_map_path'):
            paths = results['seg_map_path']
            paths = [paths] if isinstance(paths, str) else list(paths)
            mask = None
            for path in paths:
                part = read_image(path) > self.threshold
                if mask is not None and part.shape != mask.shape:
                    raise ValueError(f'LoadSegMask: masks {paths} of one image differ in size '
                                     f'({mask.shape} and {part.shape}).')
                mask = part if mask is None else mask | part
            mask = mask.astype(np.uint8)
            if img is not None and img.shape[:2] != mask.shape:
                raise ValueError(f'LoadSegMask: mask {paths} is {mask.shape} but image '
                                 f'"{results.get("img_path")}" is {img.shape[:2]}.')
        else:
            raise KeyError('LoadSegMask: the sample has neither "seg_map_path" nor "mask_rle"; '
                           'use a segmentation dataset (ImageMaskDataset, '
                           'SIIMPneumothoraxDataset).')
        results['gt_mask'] = mask
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(threshold={self.threshold})'


@TRANSFORMS.register_module()
class SegResize(BaseTransform):
    """Resize image and mask to ``size`` (the official protocol: 224, nearest neighbour).

    Args:
        size: ``(h, w)`` or one int for a square.
        interpolation: as ``RandomResizedCrop``: ``'area'`` (shrinking; bilinear when
            enlarging), ``'bilinear'``, ``'nearest'`` (the official ``cv2.INTER_NEAREST``),
            ``'bicubic'``, ``'lanczos'``. The mask follows it (thresholded at 0.5).
    """

    def __init__(self, size: Union[int, Tuple[int, int]] = 224,
                 interpolation: str = 'area') -> None:
        self._resizer = RandomResizedCrop(size=size, interpolation=interpolation)
        self.size = self._resizer.size
        self.interpolation = interpolation

    def transform(self, results: dict) -> dict:
        _check_pair(results, 'SegResize')
        results['img'], results['gt_mask'] = _resize_pair(
            self._resizer, results['img'], results['gt_mask'])
        results['img_shape'] = results['img'].shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, '
                f'interpolation={self.interpolation!r})')


@TRANSFORMS.register_module()
class SegRandomResizedCrop(BaseTransform):
    """With probability ``prob``, crop one random box of image and mask and resize it.

    The box is drawn as in ``RandomResizedCrop`` (area fraction ``U(scale)``, log-uniform
    aspect ratio); when the crop is not applied, the pair is only resized to ``size`` (a
    no-op at that size already). The official fine-tuning's albumentations
    ``RandomSizedCrop((156, 224), 224, 224, p=0.25)`` is ``scale=((156 / 224) ** 2, 1),
    ratio=(1, 1), prob=0.25`` here, except that the area, not the side, is uniform.

    Added keys: ``crop_bbox`` (``[x1, y1, x2, y2]``, exclusive ends; the whole image when
    not cropped).

    Args:
        size: output ``(h, w)`` or one int.
        scale: range of the box area as a fraction of the image.
        ratio: range of the box aspect ratio ``w / h``.
        prob: probability to crop.
        interpolation: as in :class:`SegResize`.
    """

    def __init__(self, size: Union[int, Tuple[int, int]] = 224,
                 scale: Tuple[float, float] = (0.08, 1.0),
                 ratio: Tuple[float, float] = (3. / 4., 4. / 3.), prob: float = 1.0,
                 interpolation: str = 'area') -> None:
        if not 0. <= prob <= 1.:
            raise ValueError(f'SegRandomResizedCrop: prob must be in [0, 1], got {prob}')
        self._crop = RandomResizedCrop(size=size, scale=scale, ratio=ratio,
                                       interpolation=interpolation)
        self.prob = float(prob)

    def transform(self, results: dict) -> dict:
        _check_pair(results, 'SegRandomResizedCrop')
        rng = get_rng(results)
        img, mask = results['img'], results['gt_mask']
        height, width = img.shape[:2]
        top, left, box_h, box_w = 0, 0, height, width
        if self.prob > 0 and (self.prob >= 1 or rng.random() < self.prob):
            top, left, box_h, box_w = self._crop.get_params(height, width, rng)
        box = (slice(top, top + box_h), slice(left, left + box_w))
        results['img'], results['gt_mask'] = _resize_pair(self._crop, img[box], mask[box])
        results['img_shape'] = results['img'].shape[:2]
        results['crop_bbox'] = np.array([left, top, left + box_w, top + box_h], dtype=np.int64)
        return results

    def __repr__(self) -> str:
        crop = self._crop
        return (f'{self.__class__.__name__}(size={crop.size}, scale={crop.scale}, '
                f'ratio={crop.ratio}, prob={self.prob}, '
                f'interpolation={crop.interpolation!r})')


@TRANSFORMS.register_module()
class SegRandomFlip(BaseTransform):
    """Flip image and mask together with probability ``prob`` (``RandomFlip`` + the mask).

    Added keys: ``flip`` and ``flip_direction`` (None when not flipped).

    Args:
        prob: probability to flip.
        direction: ``'horizontal'``, ``'vertical'`` or ``'diagonal'``.
    """

    def __init__(self, prob: float = 0.5, direction: str = 'horizontal') -> None:
        self._flip = RandomFlip(prob=prob, direction=direction)
        self.prob, self.direction = self._flip.prob, self._flip.direction

    def transform(self, results: dict) -> dict:
        _check_pair(results, 'SegRandomFlip')
        results = self._flip.transform(results)
        if results['flip']:
            results['gt_mask'] = flip_image(results['gt_mask'], self.direction)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob}, direction={self.direction!r})'


@TRANSFORMS.register_module()
class PackSegInputs(BaseTransform):
    """Pack into ``{'inputs': uint8 (1, H, W), 'data_samples': SegDataSample}``.

    ``data_samples.gt_mask`` is the uint8 ``(1, H, W)`` mask (0/1); the ``meta_keys`` found
    in ``results`` become metainfo, ``skipped`` defaulting to 0 so it can always be summed.
    Collation (``default_collate``) stacks the inputs to ``(N, 1, H, W)``; the data
    preprocessor converts them on the device.

    Args:
        meta_keys: keys of ``results`` kept as metainfo.
    """

    def __init__(self, meta_keys: Sequence[str] = (
            'img_path', 'seg_map_path', 'sample_idx', 'ori_shape', 'img_shape', 'flip',
            'skipped')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        data_sample = SegDataSample()
        if results.get('gt_mask') is not None:
            data_sample.gt_mask = _to_chw_tensor(results['gt_mask'].astype(np.uint8, copy=False))
        data_sample.set_metainfo(collect_metainfo(results, self.meta_keys))
        inputs: torch.Tensor = _to_chw_tensor(results['img'])
        return {'inputs': inputs, 'data_samples': data_sample}

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
