"""Transforms of the classification benchmark on gray uint8 images (numpy/cv2).

The transfer benchmark that DiRA reports (BenchmarkTransferLearning) trains with
``RandomResizedCrop(224) + RandomHorizontalFlip + RandomRotation(7)``, validates on
``Resize(256) + CenterCrop(224)`` and tests on ``Resize(256) + TenCrop(224)`` with the
scores averaged over the crops. ``RandomResizedCrop`` and ``RandomFlip`` are the
pre-training ones (:mod:`.processing`); this module adds the rest with torchvision's
geometry (crop positions, rounding, crop order), on one 2-D ``uint8`` array. Random
transforms draw from ``results['rng']`` (see :func:`~.utils.get_rng`).
"""
from numbers import Number
from typing import List, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform

from dira_mm.registry import TRANSFORMS
from dira_mm.structures import DiRADataSample
from .formatting import _to_chw_tensor, collect_metainfo
from .processing import _CV2_INTERP, _pair, flip_image
from .utils import get_rng

__all__ = ['Resize', 'CenterCrop', 'TenCrop', 'RandomRotation', 'PackClsInputs',
           'center_box', 'five_crop_boxes']


def _check_interpolation(name: str, interpolation: str) -> None:
    if interpolation not in _CV2_INTERP:
        raise ValueError(f'{name}: interpolation must be one of {sorted(_CV2_INTERP)}, '
                         f'got {interpolation!r}')


def center_box(height: int, width: int, size: Tuple[int, int],
               name: str = 'CenterCrop') -> Tuple[int, int]:
    """``(top, left)`` of a centred ``size`` box, rounded as torchvision's ``center_crop``.

    Raises:
        ValueError: the box is larger than the image (resize first).
    """
    crop_h, crop_w = size
    if crop_h > height or crop_w > width:
        raise ValueError(f'{name}: crop {size} is larger than the image ({height}, {width}); '
                         'resize first, e.g. Resize(256) before a 224 crop.')
    return int(round((height - crop_h) / 2.0)), int(round((width - crop_w) / 2.0))


def five_crop_boxes(height: int, width: int, size: Tuple[int, int]
                    ) -> List[Tuple[int, int]]:
    """``(top, left)`` of torchvision's five crops: top-left, top-right, bottom-left,
    bottom-right, centre."""
    crop_h, crop_w = size
    center = center_box(height, width, size, name='TenCrop')
    return [(0, 0), (0, width - crop_w), (height - crop_h, 0),
            (height - crop_h, width - crop_w), center]


@TRANSFORMS.register_module()
class Resize(BaseTransform):
    """Resize the image: an int sets the shorter side (torchvision ``Resize(int)``: the
    longer side becomes ``int(size * long / short)``), ``(h, w)`` sets both.

    Required keys: ``img``. Modified keys: ``img``, ``img_shape``. Added keys:
    ``scale_factor`` (``(w_scale, h_scale)``).

    Args:
        size (int | tuple[int, int]): Shorter side, or ``(h, w)``.
        interpolation (str): ``'area'`` (``INTER_AREA`` when shrinking, which approximates
            the antialiased bilinear resize of PIL; ``INTER_LINEAR`` when enlarging),
            ``'bilinear'``, ``'nearest'``, ``'bicubic'`` or ``'lanczos'``.
    """

    def __init__(self, size: Union[int, Tuple[int, int]] = 256,
                 interpolation: str = 'area') -> None:
        self.shorter_side = int(size) if isinstance(size, Number) else None
        if self.shorter_side is not None and self.shorter_side <= 0:
            raise ValueError(f'Resize: size must be positive, got {size}')
        self.size = None if self.shorter_side is not None else _pair(size, 'Resize: size')
        _check_interpolation('Resize', interpolation)
        self.interpolation = interpolation

    def output_size(self, height: int, width: int) -> Tuple[int, int]:
        """``(h, w)`` of the resized ``height x width`` image."""
        if self.size is not None:
            return self.size
        short, long = min(height, width), max(height, width)
        new_long = int(self.shorter_side * long / short)
        return (self.shorter_side, new_long) if height <= width else \
            (new_long, self.shorter_side)

    def transform(self, results: dict) -> dict:
        img = results['img']
        height, width = img.shape[:2]
        out_h, out_w = self.output_size(height, width)
        if (out_h, out_w) != (height, width):
            enlarge = out_h > height or out_w > width  # INTER_AREA only shrinks well
            interp = 'bilinear' if self.interpolation == 'area' and enlarge \
                else self.interpolation
            img = cv2.resize(img, (out_w, out_h), interpolation=_CV2_INTERP[interp])
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['scale_factor'] = (out_w / width, out_h / height)
        return results

    def __repr__(self) -> str:
        size = self.shorter_side if self.size is None else self.size
        return f'{self.__class__.__name__}(size={size}, interpolation={self.interpolation!r})'


@TRANSFORMS.register_module()
class CenterCrop(BaseTransform):
    """Crop the centre of the image (torchvision's position rounding).

    Required keys: ``img``. Modified keys: ``img``, ``img_shape``. Added keys:
    ``crop_bbox`` (``int64 [x1, y1, x2, y2]``, exclusive).

    Args:
        size (int | tuple[int, int]): Crop size, ``(h, w)`` or one int for a square.
    """

    def __init__(self, size: Union[int, Tuple[int, int]] = 224) -> None:
        self.size = _pair(size, 'CenterCrop: size')

    def transform(self, results: dict) -> dict:
        img = results['img']
        top, left = center_box(img.shape[0], img.shape[1], self.size)
        out = np.ascontiguousarray(img[top:top + self.size[0], left:left + self.size[1]])
        results['img'] = out
        results['img_shape'] = out.shape[:2]
        results['crop_bbox'] = np.array(
            [left, top, left + self.size[1], top + self.size[0]], dtype=np.int64)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(size={self.size})'


@TRANSFORMS.register_module()
class TenCrop(BaseTransform):
    """The four corner crops and the centre crop, then the same five of the flipped image
    (torchvision's ``TenCrop`` and its order).

    ``results['img']`` becomes a list of ten ``uint8`` arrays; ``PackClsInputs`` stacks
    them to ``(10, 1, h, w)`` and the classifier averages its scores over them.

    Required keys: ``img``. Modified keys: ``img`` (a list), ``img_shape``. Added keys:
    ``num_crops`` (10).

    Args:
        size (int | tuple[int, int]): Crop size, ``(h, w)`` or one int for a square.
        vertical_flip (bool): Flip top-bottom instead of left-right for the second five.
    """

    def __init__(self, size: Union[int, Tuple[int, int]] = 224,
                 vertical_flip: bool = False) -> None:
        self.size = _pair(size, 'TenCrop: size')
        self.vertical_flip = bool(vertical_flip)

    def crops(self, img: np.ndarray) -> List[np.ndarray]:
        """The ten crops of ``img``."""
        crop_h, crop_w = self.size
        boxes = five_crop_boxes(img.shape[0], img.shape[1], self.size)
        flipped = flip_image(img, 'vertical' if self.vertical_flip else 'horizontal')
        return [np.ascontiguousarray(src[top:top + crop_h, left:left + crop_w])
                for src in (img, flipped) for top, left in boxes]

    def transform(self, results: dict) -> dict:
        results['img'] = self.crops(results['img'])
        results['img_shape'] = self.size
        results['num_crops'] = 10
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, '
                f'vertical_flip={self.vertical_flip})')


@TRANSFORMS.register_module()
class RandomRotation(BaseTransform):
    """Rotate by an angle drawn from ``U(-degrees, degrees)`` about the image centre.

    As torchvision's ``RandomRotation(degrees)``: counter-clockwise for positive angles,
    same output size (corners cut), ``fill`` outside the image, nearest-neighbour
    interpolation by default.

    Required keys: ``img``. Modified keys: ``img``. Added keys: ``rotation`` (degrees).

    Args:
        degrees (float | tuple[float, float]): ``d`` for ``(-d, d)``, or ``(lo, hi)``.
        interpolation (str): ``'nearest'`` (torchvision's default), ``'bilinear'``, ...
        fill (int): Value of the pixels outside the rotated image.
        prob (float): Probability to rotate at all.
    """

    def __init__(self, degrees: Union[float, Tuple[float, float]] = 7.0,
                 interpolation: str = 'nearest', fill: int = 0, prob: float = 1.0) -> None:
        if isinstance(degrees, Number):
            if degrees < 0:
                raise ValueError(f'RandomRotation: degrees must be >= 0, got {degrees}')
            degrees = (-float(degrees), float(degrees))
        if len(degrees) != 2 or degrees[0] > degrees[1]:
            raise ValueError(f'RandomRotation: degrees must be d or (lo, hi), got {degrees}')
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'RandomRotation: prob must be in [0, 1], got {prob}')
        _check_interpolation('RandomRotation', interpolation)
        self.degrees = (float(degrees[0]), float(degrees[1]))
        self.interpolation = interpolation
        self.fill = int(fill)
        self.prob = float(prob)

    def transform(self, results: dict) -> dict:
        rng = get_rng(results)
        if self.prob < 1.0 and rng.random() >= self.prob:
            results['rotation'] = 0.0
            return results
        angle = float(rng.uniform(*self.degrees))
        img = results['img']
        height, width = img.shape[:2]
        matrix = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), angle, 1.0)
        results['img'] = cv2.warpAffine(
            img, matrix, (width, height), flags=_CV2_INTERP[self.interpolation],
            borderMode=cv2.BORDER_CONSTANT, borderValue=self.fill)
        results['rotation'] = angle
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(degrees={self.degrees}, '
                f'interpolation={self.interpolation!r}, fill={self.fill}, prob={self.prob})')


@TRANSFORMS.register_module()
class PackClsInputs(BaseTransform):
    """Pack ``results`` into ``{'inputs': Tensor, 'data_samples': DiRADataSample}``.

    ``inputs`` is ``uint8 (1, H, W)`` for one image, or ``(N, 1, H, W)`` when
    ``results['img']`` is a list of N crops (``TenCrop``); the data preprocessor converts
    on the device. ``gt_label`` becomes a float32 tensor data field (-1 kept: ignored by
    the loss and the metric); the other ``meta_keys`` that exist become metainfo, and
    ``skipped`` defaults to 0 so that ``SkippedSamplesHook`` can always sum it.

    Args:
        meta_keys (Sequence[str]): Keys of ``results`` to keep in the data sample.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('img_path', 'sample_idx', 'ori_shape',
                                             'img_shape', 'flip', 'num_crops',
                                             'skipped')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        img = results['img']
        if isinstance(img, (list, tuple)):
            shapes = {crop.shape for crop in img}
            if len(shapes) != 1:
                raise ValueError(f'PackClsInputs: the crops differ in shape {sorted(shapes)}.')
            inputs = torch.stack([_to_chw_tensor(crop) for crop in img])
        else:
            inputs = _to_chw_tensor(img)
        data_sample = DiRADataSample()
        if results.get('gt_label') is not None:
            data_sample.gt_label = torch.as_tensor(
                np.asarray(results['gt_label'], dtype=np.float32))
        data_sample.set_metainfo(collect_metainfo(results, self.meta_keys))
        return {'inputs': inputs, 'data_samples': data_sample}

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
