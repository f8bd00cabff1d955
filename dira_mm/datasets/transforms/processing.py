"""Per-view augmentations of DiRA on gray uint8 images (numpy/cv2).

The official pipeline runs torchvision v1 transforms on 3-channel PIL images. These
transforms draw the same random parameters but work on one 2-D ``uint8`` array
``(H, W)`` with cv2 and lookup tables. They are hand-written because no library does
this cheaply on one CPU core: torchvision v2 on a ``uint8 (1, H, W)`` tensor takes about
3.6 ms per view (crop of a 1024-pixel image, jitter, blur, flip; one thread) against
0.65 ms here, and PIL needs 3-channel images. Each draws from ``results['rng']`` (see
:func:`~dira_mm.datasets.transforms.utils.get_rng`).
"""
import math
from numbers import Number
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from dira_mm.registry import TRANSFORMS
from .utils import get_rng

__all__ = ['RandomResizedCrop', 'ColorJitter', 'GaussianBlur', 'RandomFlip']

_CV2_INTERP = {
    'nearest': cv2.INTER_NEAREST,
    'bilinear': cv2.INTER_LINEAR,
    'bicubic': cv2.INTER_CUBIC,
    'area': cv2.INTER_AREA,
    'lanczos': cv2.INTER_LANCZOS4,
}

_FLIP_CODES = {'horizontal': 1, 'vertical': 0, 'diagonal': -1}


def _pair(value: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    """``224 -> (224, 224)``; ``(h, w)`` is kept."""
    if isinstance(value, Number):
        value = (int(value), int(value))
    if len(value) != 2 or min(value) <= 0:
        raise ValueError(f'{name} must be a positive int or (h, w), got {value}')
    return int(value[0]), int(value[1])


def flip_image(img: np.ndarray, direction: str) -> np.ndarray:
    """Flip ``img`` (a new contiguous array, unlike ``img[:, ::-1]``)."""
    return cv2.flip(img, _FLIP_CODES[direction])


@TRANSFORMS.register_module()
class RandomResizedCrop(BaseTransform):
    """Crop a random box of random area and aspect ratio, then resize it.

    The box is sampled as torchvision's ``RandomResizedCrop.get_params`` does: up to
    ``max_attempts`` draws of an area fraction ``U(scale)`` and a log-uniform aspect
    ratio, the first box that fits wins, else a central crop clamped to ``ratio``. Only
    the box is then resized (a view of the image, no copy of the full image).

    Required keys: ``img``. Modified keys: ``img``, ``img_shape``. Added keys:
    ``crop_bbox`` (``int64 [x1, y1, x2, y2]``, exclusive ``x2, y2``, in input pixels: the
    box that was resized).

    Args:
        size (int | tuple[int, int]): Output size, ``(h, w)`` or one int for a square.
        scale (tuple[float, float]): Range of the box area as a fraction of the image.
        ratio (tuple[float, float]): Range of the box aspect ratio ``w / h``.
        interpolation (str): ``'area'`` (default) uses cv2's ``INTER_AREA`` when the box
            is shrunk, which approximates the antialiased bilinear resize of PIL that the
            official pipeline gets, and ``INTER_LINEAR`` when it is enlarged. Also
            ``'bilinear'``, ``'nearest'``, ``'bicubic'``, ``'lanczos'`` (cv2, no
            antialiasing).
        max_attempts (int): Box draws before the central-crop fallback.
        prereduce (bool): With ``'area'``, first halve a box that is at least twice the
            output (exact 2x2 means, cv2's fast path) until it is not: 2-4x faster on
            1024-pixel images, and as close to PIL. The box is trimmed to a multiple of
            ``2**halvings`` (less than one output pixel; ``crop_bbox`` records the box
            used). ``False``: one plain ``INTER_AREA`` resize.
    """

    def __init__(self,
                 size: Union[int, Tuple[int, int]] = 224,
                 scale: Tuple[float, float] = (0.2, 1.0),
                 ratio: Tuple[float, float] = (3. / 4., 4. / 3.),
                 interpolation: str = 'area',
                 max_attempts: int = 10,
                 prereduce: bool = True) -> None:
        self.size = _pair(size, 'size')
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f'scale must be 0 < min <= max, got {scale}')
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f'ratio must be 0 < min <= max, got {ratio}')
        if interpolation not in _CV2_INTERP:
            raise ValueError(f'interpolation must be one of {sorted(_CV2_INTERP)}, '
                             f'got {interpolation!r}')
        if max_attempts < 1:
            raise ValueError(f'max_attempts must be >= 1, got {max_attempts}')
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.interpolation = interpolation
        self.max_attempts = int(max_attempts)
        self.prereduce = bool(prereduce)
        self._log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))

    def get_params(self, height: int, width: int,
                   rng: np.random.Generator) -> Tuple[int, int, int, int]:
        """Sample a box ``(top, left, box_h, box_w)`` inside a ``height x width`` image."""
        area = height * width
        # All attempts are drawn at once (numpy vectorised); the first valid one wins,
        # which is the same distribution as torchvision's sequential loop.
        target_area = area * rng.uniform(self.scale[0], self.scale[1], self.max_attempts)
        aspect = np.exp(rng.uniform(*self._log_ratio, self.max_attempts))
        box_w = np.rint(np.sqrt(target_area * aspect))
        box_h = np.rint(np.sqrt(target_area / aspect))
        valid = (box_w > 0) & (box_w <= width) & (box_h > 0) & (box_h <= height)
        if valid.any():
            first = int(np.argmax(valid))
            box_h, box_w = int(box_h[first]), int(box_w[first])
            top = int(rng.integers(0, height - box_h + 1))
            left = int(rng.integers(0, width - box_w + 1))
            return top, left, box_h, box_w
        # Fallback: the whole image, clamped to the allowed aspect ratios, centred.
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            box_w, box_h = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            box_h, box_w = height, int(round(height * self.ratio[1]))
        else:
            box_h, box_w = height, width
        return (height - box_h) // 2, (width - box_w) // 2, box_h, box_w

    def resize(self, img: np.ndarray) -> np.ndarray:
        """Resize ``img`` (any box, possibly a strided view) to ``self.size``."""
        out_h, out_w = self.size
        in_h, in_w = img.shape[:2]
        if (in_h, in_w) == (out_h, out_w):
            return np.array(img, order='C', copy=True)
        interp = _CV2_INTERP[self.interpolation]
        if self.interpolation == 'area' and (in_h < out_h or in_w < out_w):
            interp = cv2.INTER_LINEAR
        return cv2.resize(img, (out_w, out_h), interpolation=interp)

    def _prereduce(self, img: np.ndarray, top: int, left: int, box_h: int, box_w: int
                   ) -> Tuple[np.ndarray, int, int, int, int]:
        """Halve the box per axis while it is at least twice the output (cv2's fast,
        exact 2x2 mean), so that the general ``INTER_AREA`` only sees a box less than
        twice the output. The box is first trimmed to a multiple of ``2**levels``, evenly
        on both sides: fewer pixels than one output pixel covers."""
        levels_h = max(int(math.floor(math.log2(box_h / self.size[0]))), 0)
        levels_w = max(int(math.floor(math.log2(box_w / self.size[1]))), 0)
        trim_h, trim_w = box_h % (1 << levels_h), box_w % (1 << levels_w)
        top, left = top + trim_h // 2, left + trim_w // 2
        box_h, box_w = box_h - trim_h, box_w - trim_w
        roi = img[top:top + box_h, left:left + box_w]
        for level in range(max(levels_h, levels_w)):
            new_h = roi.shape[0] // 2 if level < levels_h else roi.shape[0]
            new_w = roi.shape[1] // 2 if level < levels_w else roi.shape[1]
            roi = cv2.resize(roi, (new_w, new_h), interpolation=cv2.INTER_AREA)
        return roi, top, left, box_h, box_w

    def transform(self, results: dict) -> dict:
        img = results['img']
        rng = get_rng(results)
        top, left, box_h, box_w = self.get_params(img.shape[0], img.shape[1], rng)
        if (self.interpolation == 'area' and self.prereduce
                and max(box_h // self.size[0], box_w // self.size[1]) >= 2):
            roi, top, left, box_h, box_w = self._prereduce(img, top, left, box_h, box_w)
        else:
            roi = img[top:top + box_h, left:left + box_w]
        out = self.resize(roi)
        results['img'] = out
        results['img_shape'] = out.shape[:2]
        results['crop_bbox'] = np.array(
            [left, top, left + box_w, top + box_h], dtype=np.int64)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, scale={self.scale}, '
                f'ratio={tuple(round(r, 4) for r in self.ratio)}, '
                f'interpolation={self.interpolation!r}, max_attempts={self.max_attempts}, '
                f'prereduce={self.prereduce})')


def _factor_range(value: Union[float, Sequence[float], None], name: str,
                  center: float = 1., bound: Optional[Tuple[float, float]] = None
                  ) -> Optional[Tuple[float, float]]:
    """torchvision's convention: ``v -> [max(0, c - v), c + v]`` (``[-v, v]`` for hue,
    which must lie within ``bound``); ``(lo, hi)`` is kept."""
    if value is None:
        return None
    if isinstance(value, Number):
        if value < 0:
            raise ValueError(f'{name} must be non-negative, got {value}')
        value = (center - value, center + value)
        if bound is None:
            value = (max(0., value[0]), value[1])
    lo, hi = float(value[0]), float(value[1])
    if lo > hi or (bound is not None and not bound[0] <= lo <= hi <= bound[1]):
        raise ValueError(f'{name} range is invalid: {value}')
    if lo == hi == center:
        return None
    return lo, hi


@TRANSFORMS.register_module()
class ColorJitter(BaseTransform):
    """Random brightness and contrast of a gray image, applied with probability ``prob``.

    Mirrors ``RandomApply([ColorJitter(b, c, s, h)], p=prob)`` of torchvision on the gray
    images of the official pipeline. Brightness multiplies by ``f ~ U[1-b, 1+b]``;
    contrast blends with the image's gray mean, ``m + f * (x - m)``, ``f ~ U[1-c, 1+c]``.
    Both are rounded to uint8 and clipped after each step, in a random order as
    torchvision does (it permutes its four ops; only the relative order of these two
    matters). Each step is a 256-entry lookup table; the two are composed into one LUT,
    so a sample costs one histogram and one ``cv2.LUT``.

    Saturation and hue are exact no-ops on a gray image: the official code feeds gray
    X-rays as 3 identical RGB channels, so they do nothing there either. The arguments
    are kept (and validated) only so that configs read like the official ones.

    Required keys: ``img`` (uint8). Modified keys: ``img``.

    Args:
        brightness (float | tuple[float, float]): Brightness jitter ``b`` or ``(lo, hi)``.
        contrast (float | tuple[float, float]): Contrast jitter ``c`` or ``(lo, hi)``.
        saturation (float | tuple[float, float]): Ignored on gray images (see above).
        hue (float | tuple[float, float]): Ignored on gray images, must be in
            ``[0, 0.5]``.
        prob (float): Probability to apply the jitter at all.
    """

    def __init__(self,
                 brightness: Union[float, Tuple[float, float]] = 0.4,
                 contrast: Union[float, Tuple[float, float]] = 0.4,
                 saturation: Union[float, Tuple[float, float]] = 0.4,
                 hue: Union[float, Tuple[float, float]] = 0.1,
                 prob: float = 0.8) -> None:
        if not 0. <= prob <= 1.:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.brightness = _factor_range(brightness, 'brightness')
        self.contrast = _factor_range(contrast, 'contrast')
        self.saturation = _factor_range(saturation, 'saturation')
        self.hue = _factor_range(hue, 'hue', center=0., bound=(-0.5, 0.5))
        self.prob = float(prob)

    @staticmethod
    def brightness_lut(factor: float) -> np.ndarray:
        """``round(clip(v * factor))`` for every uint8 value ``v`` (float64 LUT)."""
        return np.clip(np.floor(np.arange(256.) * factor + 0.5), 0, 255)

    @staticmethod
    def contrast_lut(factor: float, mean: float) -> np.ndarray:
        """``round(clip(mean + factor * (v - mean)))`` for every uint8 value ``v``."""
        return np.clip(np.floor(mean + factor * (np.arange(256.) - mean) + 0.5), 0, 255)

    def transform(self, results: dict) -> dict:
        rng = get_rng(results)
        if self.prob < 1. and rng.random() >= self.prob:
            return results
        brightness_first = rng.random() < 0.5
        b = rng.uniform(*self.brightness) if self.brightness is not None else None
        c = rng.uniform(*self.contrast) if self.contrast is not None else None
        if b is None and c is None:
            return results
        img = results['img']
        if img.dtype != np.uint8:
            raise TypeError(f'ColorJitter expects a uint8 image, got {img.dtype}')
        if c is None:
            lut = self.brightness_lut(b)
        else:
            # The contrast anchor is the mean of the image it is applied to: computed
            # from the histogram, through the brightness LUT when brightness comes first.
            hist = cv2.calcHist([img], [0], None, [256], [0, 256]).ravel().astype(np.float64)
            total = hist.sum()
            if b is None:
                lut = self.contrast_lut(c, hist @ np.arange(256.) / total)
            elif brightness_first:
                lut_b = self.brightness_lut(b)
                lut = self.contrast_lut(c, hist @ lut_b / total)[lut_b.astype(np.intp)]
            else:
                lut_c = self.contrast_lut(c, hist @ np.arange(256.) / total)
                lut = self.brightness_lut(b)[lut_c.astype(np.intp)]
        results['img'] = cv2.LUT(img, lut.astype(np.uint8))
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(brightness={self.brightness}, '
                f'contrast={self.contrast}, saturation={self.saturation}, '
                f'hue={self.hue}, prob={self.prob})')


@TRANSFORMS.register_module()
class GaussianBlur(BaseTransform):
    """Gaussian blur with ``sigma ~ U[sigma]``, applied with probability ``prob``.

    The official pipeline uses PIL's ``GaussianBlur(radius=sigma)``, whose radius is the
    standard deviation of the Gaussian it approximates; here ``cv2.GaussianBlur`` uses
    that same ``sigma`` with a kernel covering ``+-truncate * sigma`` and replicated
    borders (PIL extends edges too).

    Required keys: ``img``. Modified keys: ``img``.

    Args:
        sigma (tuple[float, float]): Range of the standard deviation, in pixels.
        prob (float): Probability to blur.
        truncate (float): Kernel half-width in standard deviations.
    """

    def __init__(self,
                 sigma: Tuple[float, float] = (0.1, 2.0),
                 prob: float = 0.5,
                 truncate: float = 3.0) -> None:
        if not 0 < sigma[0] <= sigma[1]:
            raise ValueError(f'sigma must be 0 < min <= max, got {sigma}')
        if not 0. <= prob <= 1.:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.sigma = (float(sigma[0]), float(sigma[1]))
        self.prob = float(prob)
        self.truncate = float(truncate)

    def transform(self, results: dict) -> dict:
        rng = get_rng(results)
        if self.prob < 1. and rng.random() >= self.prob:
            return results
        sigma = float(rng.uniform(*self.sigma))
        ksize = 2 * max(1, math.ceil(self.truncate * sigma)) + 1
        results['img'] = cv2.GaussianBlur(
            results['img'], (ksize, ksize), sigmaX=sigma, sigmaY=sigma,
            borderType=cv2.BORDER_REPLICATE)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(sigma={self.sigma}, prob={self.prob}, '
                f'truncate={self.truncate})')


@TRANSFORMS.register_module()
class RandomFlip(BaseTransform):
    """Flip the image with probability ``prob``.

    Required keys: ``img``. Modified keys: ``img``. Added keys: ``flip`` (bool) and
    ``flip_direction`` (the direction, or ``None`` when not flipped).

    Args:
        prob (float): Probability to flip.
        direction (str): ``'horizontal'`` (left-right, the official
            ``RandomHorizontalFlip``), ``'vertical'`` or ``'diagonal'`` (both).
    """

    def __init__(self, prob: float = 0.5, direction: str = 'horizontal') -> None:
        if not 0. <= prob <= 1.:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        if direction not in _FLIP_CODES:
            raise ValueError(f'direction must be one of {sorted(_FLIP_CODES)}, '
                             f'got {direction!r}')
        self.prob = float(prob)
        self.direction = direction

    def transform(self, results: dict) -> dict:
        rng = get_rng(results)
        flip = bool(rng.random() < self.prob)
        if flip:
            results['img'] = flip_image(results['img'], self.direction)
        results['flip'] = flip
        results['flip_direction'] = self.direction if flip else None
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob}, direction={self.direction!r})'
