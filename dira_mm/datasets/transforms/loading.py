"""Load a medical image file into the pipeline's results dict."""
from typing import Optional, Sequence

from mmcv.transforms import BaseTransform
from mmengine.logging import MMLogger

from dira_mm.registry import TRANSFORMS
from ..decoded_cache import DecodedImageCache
from ..readers import (DEFAULT_MAX_PIXELS, ImageReadError, check_read_options, decode_image,
                       read_image, resolve_window)

__all__ = ['LoadMedicalImage']


@TRANSFORMS.register_module()
class LoadMedicalImage(BaseTransform):
    """Read ``results['img_path']`` as a 2-D uint8 gray image.

    Unlike mmcv's ``LoadImageFromFile`` it reads DICOM and 16-bit images through one
    documented window (see :mod:`dira_mm.datasets.readers`) and keeps chest X-rays
    single-channel, as the data contract requires. A file that cannot be read raises
    :class:`~dira_mm.datasets.readers.ImageReadError`, which the dataset turns into a skip or
    an error according to its ``on_error``; nothing is returned as None. So do an image with
    NaN/Inf values (``nonfinite='skip'``) and one larger than ``max_pixels`` (refused from
    its header, before decoding): both are skipped, named in a warning and counted by
    ``SkippedSamplesHook`` like any unreadable file.

    Added keys: ``img`` (uint8 ``(H, W)``), ``img_shape`` and ``ori_shape`` (``(H, W)``).

    Args:
        window (tuple[float, float], optional): ``(center, width)`` for images with more than
            8 bits (DICOM values after the modality LUT, 16-bit PNG values). Defaults to None:
            the DICOM header's window, else the image's min-max.
        value_range (tuple[float, float], optional): The same window given as ``(lo, hi)``;
            mutually exclusive with ``window``. Defaults to None.
        invert_monochrome1 (bool): Invert DICOM ``MONOCHROME1`` images so bone is bright.
            Defaults to True.
        backend_args (dict, optional): mmengine file backend arguments for reading from
            a non-local storage. Defaults to None (local files).
        cache_dir (str, optional): folder of a :class:`~dira_mm.datasets.DecodedImageCache`
            for local files: each image is decoded once and read back as raw pixels after
            that (identical pixels; ~10 ms saved per 1024² PNG). Defaults to None (decode
            every time, as the official code does).
        nonfinite (str): NaN/Inf pixel values (float TIFF/NPY/DICOM): ``'skip'`` treats the
            image as unreadable; ``'fill'`` replaces them by the image's finite minimum, logs a
            warning with the file and the count (once per file and process) and keeps the
            image out of ``cache_dir`` so the warning recurs. Defaults to 'skip'.
        max_pixels (int, optional): Refuse images with more than this many pixels (H * W),
            read from the header before decoding. None: no limit. Defaults to 50 million
            (:data:`~dira_mm.datasets.readers.DEFAULT_MAX_PIXELS`: above the largest
            mammograms, ~30 MP; a 30000² PNG bomb would need 3.2 GB to decode).
    """

    def __init__(self,
                 window: Optional[Sequence[float]] = None,
                 value_range: Optional[Sequence[float]] = None,
                 invert_monochrome1: bool = True,
                 backend_args: Optional[dict] = None,
                 cache_dir: Optional[str] = None,
                 nonfinite: str = 'skip',
                 max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> None:
        resolve_window(window, value_range)  # fail at build time on a bad config
        try:
            check_read_options(nonfinite, max_pixels)
        except ValueError as e:
            raise ValueError(f'LoadMedicalImage: {e}') from None
        self.nonfinite = nonfinite
        self.max_pixels = None if max_pixels is None else int(max_pixels)
        self._filled_reported: set = set()
        self.window = tuple(window) if window is not None else None
        self.value_range = tuple(value_range) if value_range is not None else None
        self.invert_monochrome1 = invert_monochrome1
        self.backend_args = backend_args.copy() if backend_args else None
        if cache_dir is not None and self.backend_args is not None:
            raise ValueError('LoadMedicalImage: cache_dir works for local files only; '
                             'remove backend_args or cache_dir')
        self.cache_dir = cache_dir
        self._cache = DecodedImageCache(cache_dir) if cache_dir is not None else None

    def transform(self, results: dict) -> dict:
        """Read the image of ``results['img_path']`` into ``results['img']``."""
        path = results['img_path']
        # the cache key: options that change the pixels of a cached image (non-finite images
        # are never cached, and the pixel limit only refuses)
        options = dict(
            window=self.window,
            value_range=self.value_range,
            invert_monochrome1=self.invert_monochrome1)
        checks = dict(nonfinite=self.nonfinite, max_pixels=self.max_pixels, return_filled=True)
        filled = [0]

        def read(p: str):
            img, filled[0] = read_image(p, **options, **checks)
            return img

        if self._cache is not None:
            img = self._cache.get(path, repr(sorted(options.items())), read,
                                  cache_if=lambda _: not filled[0])
        elif self.backend_args is None:
            img = read(path)
        else:
            from mmengine.fileio import get
            try:
                data = get(path, backend_args=self.backend_args)
            except (OSError, ValueError) as e:
                raise ImageReadError(path, f'the file cannot be fetched ({e})') from None
            img, filled[0] = decode_image(data, path=path, **options, **checks)
        if filled[0] and path not in self._filled_reported:
            self._filled_reported.add(path)
            MMLogger.get_current_instance().warning(
                f'LoadMedicalImage: "{path}": {filled[0]} non-finite (NaN/Inf) pixel values '
                'were replaced by the image\'s finite minimum (nonfinite="fill"; '
                'nonfinite="skip" skips such images).')
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(window={self.window}, '
                f'value_range={self.value_range}, '
                f'invert_monochrome1={self.invert_monochrome1}, '
                f'backend_args={self.backend_args}, cache_dir={self.cache_dir!r}, '
                f'nonfinite={self.nonfinite!r}, max_pixels={self.max_pixels})')
