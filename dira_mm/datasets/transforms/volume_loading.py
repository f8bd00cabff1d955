"""Load 3-D volumes and sample Models Genesis cubes from them (issue 9, section 2).

``LoadVolume`` reads a volume with :func:`dira_mm.datasets.volume_readers.read_volume` and puts
it into the channel-first ``(C, *spatial)`` contract as ``(1, X, Y, Z)`` float32. ``RandomCubes``
crops cubes at random positions as Models Genesis' ``infinite_generator_3D.py`` does, with its
air/lung filter as an option. Randomness comes from
:func:`dira_mm.datasets.transforms.utils.get_rng` only, so the cubes are a pure function of
``(seed, epoch, index)``.
"""
import warnings
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import MMLogger

from dira_mm.registry import TRANSFORMS
from ..readers import ImageReadError, NonFinitePixelsWarning
from ..volume_cache import DecodedVolumeCache
from ..volume_readers import (DEFAULT_MAX_VOXELS, check_spacing, check_volume_options,
                              hu_window, read_volume, resample_volume)
from .utils import get_rng

__all__ = ['LoadVolume', 'RandomCubes', 'genesis_air_score']


@TRANSFORMS.register_module()
class LoadVolume(BaseTransform):
    """Read ``results['img_path']`` (NIfTI, MetaImage or a DICOM series folder) as a volume.

    The volume comes out in RAS axis order ``(X, Y, Z)`` (see
    :mod:`dira_mm.datasets.volume_readers`), with CT in Hounsfield units. With ``window`` it is
    clipped and scaled to ``[0, 1]`` by :func:`~dira_mm.datasets.volume_readers.hu_window`
    (Models Genesis / TransVW: ``[-1000, 1000]``); with ``window=None`` it stays float HU (the
    contract: CT stays HU until an explicit window).

    Unreadable volumes (missing, corrupt, too large, non-finite with ``nonfinite='skip'``) raise
    :class:`~dira_mm.datasets.readers.ImageReadError` from the reader, exactly as
    :class:`LoadMedicalImage` does, so a dataset with ``on_error='skip'`` skips and counts them.

    **Resampling** (``spacing``): after reorientation, the HU volume is resampled to
    ``spacing`` mm with MONAI's ``Spacing`` (:func:`~dira_mm.datasets.volume_readers.
    resample_volume`; ``resample_mode='bilinear'`` is trilinear), *then* windowed. The default
    None keeps the native spacing, as Models Genesis and TransVW do.

    **Cache** (``cache_dir``): a :class:`~dira_mm.datasets.volume_cache.DecodedVolumeCache`
    stores ``img`` exactly as this transform outputs it -- the RAS, resampled and **windowed**
    float32 volume (the HU one when ``window=None``) -- and, with ``keep_hu=True`` and a
    window, the HU volume as a second entry. Later reads memory-map them (copy-on-write), so
    a cube costs the pages it covers instead of a decode, a resampling and a full-volume
    window. The windowed volume is stored (not only HU) because windowing a whole CT per
    sample would cost as much as everything else in the cube pipeline together; the Genesis
    air filter works on it directly (as the official code does). The output is the same
    with and without the cache (bit for bit); volumes whose NaN/Inf voxels were filled
    (``nonfinite='fill'``) are not cached, so their warning recurs.

    Added keys: ``img`` (float32 ``(1, X, Y, Z)``), ``img_hu`` (float32 ``(X, Y, Z)`` HU, only
    with ``keep_hu=True``; with ``window=None`` it shares memory with ``img``), ``spatial_dims``
    (3), ``spacing`` (mm along X, Y, Z, after resampling), ``source_spacing`` (before),
    ``affine`` (4x4 RAS), ``img_shape`` and ``ori_shape`` (``(X, Y, Z)``), ``hu_window`` (the
    window applied, or None).

    Args:
        window (tuple[float, float], optional): ``(low, high)`` HU mapped to ``[0, 1]``. None
            keeps the values unwindowed. Defaults to (-1000, 1000).
        keep_hu (bool): Also keep the unwindowed volume in ``results['img_hu']``. Defaults to
            False.
        nonfinite (str): ``'skip'`` or ``'fill'``, as in :func:`read_volume`. Defaults to 'skip'.
        max_voxels (int, optional): Voxel limit checked from the header. Defaults to
            :data:`~dira_mm.datasets.volume_readers.DEFAULT_MAX_VOXELS`.
        spacing (float | tuple, optional): Target spacing in mm (per axis; None keeps an
            axis). Defaults to None (no resampling).
        resample_mode (str): ``'bilinear'`` (trilinear, images) or ``'nearest'``.
            Defaults to 'bilinear'.
        cache_dir (str, optional): Folder of the decoded-volume cache. Defaults to None.
    """

    def __init__(self,
                 window: Optional[Sequence[float]] = (-1000, 1000),
                 keep_hu: bool = False,
                 nonfinite: str = 'skip',
                 max_voxels: Optional[int] = DEFAULT_MAX_VOXELS,
                 spacing=None,
                 resample_mode: str = 'bilinear',
                 cache_dir: Optional[str] = None) -> None:
        try:
            check_volume_options(nonfinite, max_voxels)
            self.spacing = check_spacing(spacing)
        except ValueError as e:
            raise ValueError(f'LoadVolume: {e}') from None
        if resample_mode not in ('bilinear', 'nearest'):
            raise ValueError(f"LoadVolume: resample_mode must be 'bilinear' (trilinear) or "
                             f"'nearest', got {resample_mode!r}")
        if window is not None:
            if len(window) != 2 or not float(window[1]) > float(window[0]):
                raise ValueError(f'LoadVolume: window must be (low, high) with high > low, got '
                                 f'{window!r}')
            window = (float(window[0]), float(window[1]))
        self.window = window
        self.keep_hu = bool(keep_hu)
        self.nonfinite = nonfinite
        self.max_voxels = None if max_voxels is None else int(max_voxels)
        self.resample_mode = resample_mode
        self.cache_dir = cache_dir
        self._cache = DecodedVolumeCache(cache_dir) if cache_dir is not None else None

    def _options(self, window) -> str:
        """The cache key's options: everything that changes the stored voxels, and
        ``max_voxels`` (a hit must not bypass the limit a fresh read enforces)."""
        return repr(dict(window=window, spacing=self.spacing, mode=self.resample_mode,
                         nonfinite=self.nonfinite, max_voxels=self.max_voxels, v=1))

    def _decode(self, path: str) -> Tuple[np.ndarray, Dict[str, Any], bool]:
        """Read (+ resample) the HU volume; also whether non-finite voxels were filled."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always', NonFinitePixelsWarning)
            vol, meta = read_volume(path, nonfinite=self.nonfinite, max_voxels=self.max_voxels)
        filled = False
        for w in caught:  # pass them on, noting a fill
            filled = filled or issubclass(w.category, NonFinitePixelsWarning)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if self.spacing is not None:
            vol, meta = resample_volume(vol, meta, self.spacing, self.resample_mode)
        return vol, meta, filled

    def _load(self, path: str) -> Tuple[np.ndarray, Optional[np.ndarray], Dict[str, Any]]:
        """``(img volume, HU volume or None, meta)``, from the cache when possible."""
        need_hu = self.keep_hu and self.window is not None
        if self._cache is not None:
            hit = self._cache.load(path, self._options(self.window))
            hu_hit = self._cache.load(path, self._options(None)) if need_hu else None
            if hit is not None and (hu_hit is not None or not need_hu):
                img, meta = hit
                hu = hu_hit[0] if need_hu else (img if self.keep_hu else None)
                return img, hu, meta
        vol, meta, filled = self._decode(path)
        img = vol if self.window is None else hu_window(vol, *self.window)
        if self._cache is not None and not filled:
            self._cache.store(path, self._options(self.window), img, meta)
            if need_hu:
                self._cache.store(path, self._options(None), vol, meta)
        return img, (vol if self.keep_hu else None), meta

    def transform(self, results: dict) -> dict:
        """Read the volume of ``results['img_path']`` into ``results['img']``."""
        img, hu, meta = self._load(results['img_path'])
        if self.keep_hu:
            results['img_hu'] = hu
        results['img'] = img[None]
        results['spatial_dims'] = 3
        results['spacing'] = tuple(meta['spacing'])
        results['source_spacing'] = tuple(meta.get('source_spacing', meta['spacing']))
        results['affine'] = meta['affine']
        results['img_shape'] = tuple(img.shape)
        results['ori_shape'] = tuple(img.shape)
        results['hu_window'] = self.window
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(window={self.window}, keep_hu={self.keep_hu}, '
                f'nonfinite={self.nonfinite!r}, max_voxels={self.max_voxels}, '
                f'spacing={self.spacing}, resample_mode={self.resample_mode!r}, '
                f'cache_dir={self.cache_dir!r})')


def genesis_air_score(hu: np.ndarray, depth: int, air_hu: float = -150.0,
                      look_ahead: int = 3) -> float:
    """Models Genesis' tissue score of a crop (``infinite_generator_3D.py`` lines 162-181).

    ``hu`` is an ``(X, Y, Z')`` HU crop with ``Z' >= depth``. For each voxel ``(i, j, d)`` of the
    first ``depth`` slices, ``k`` is the first of ``0 .. look_ahead - 1`` with
    ``hu[i, j, d + k] >= air_hu`` (``look_ahead - 1`` when none is); the voxel scores
    ``1 - k / (look_ahead - 1)``: 1 when it is tissue, falling to 0 when none of the
    ``look_ahead`` slices is. Slices past the end of the crop count as air. Returns the mean
    score (the official test ``sum <= 0.15 * V`` is ``mean <= 0.15``).
    """
    x, y, zc = hu.shape
    if look_ahead < 2:
        return float(np.mean(hu[:, :, :depth] >= air_hu))
    k = np.full((x, y, depth), look_ahead - 1, dtype=np.int64)
    found = np.zeros((x, y, depth), dtype=bool)
    for j in range(look_ahead):
        sl = np.zeros((x, y, depth), dtype=bool)
        n = max(0, min(depth, zc - j))
        sl[:, :, :n] = hu[:, :, j:j + n] >= air_hu
        new = sl & ~found
        k[new] = j
        found |= sl
    return float(np.mean(1.0 - k / (look_ahead - 1)))


@TRANSFORMS.register_module()
class RandomCubes(BaseTransform):
    """Crop cubes at random positions, as Models Genesis' ``infinite_generator_3D.py``.

    Each cube's start is drawn uniformly (integers, from ``get_rng(results)``) in
    ``[border, dim - crop - border]`` per spatial axis, where ``crop`` is ``size`` with
    ``extra_depth`` added on the last (depth) axis, as Genesis crops ``32 + 3`` slices for its
    filter; the extra slices are used by the filter and dropped from the cube. The extra depth
    is part of the bounds with and without the filter, so the position law does not depend on
    it. (Genesis' upper bound is one lower, ``randint(b, dim - crop - 1 - b)``; we allow the
    last position too, so a volume exactly as large as the crop has one valid start.)

    **Small volumes (border rule).** When an axis is shorter than ``crop + 2 * border``, its
    border becomes ``(dim - crop) // 4``: a quarter of the spare room on each side, half of it
    left for the random start (a 96-voxel axis with a 64-voxel cube: border 8, starts 8..24).
    An axis shorter than ``crop`` raises :class:`~dira_mm.datasets.readers.ImageReadError`
    (Genesis skips such scans), so the dataset skips and counts the volume.

    **Air/lung filter** (``air_filter=True``; Genesis lines 162-181, see
    :func:`genesis_air_score`): a candidate is kept only if its tissue score is at most
    ``max_air_fraction`` (the official ``lung_max = 0.15``), i.e. the cube is mostly air or lung.
    The filter reads ``results['img_hu']`` when present (``LoadVolume(keep_hu=True)``), else
    the windowed ``img`` with ``air_hu`` mapped through ``results['hu_window']`` (the official
    code thresholds the windowed cube at ``(-150 + 1000) / 2000`` this way; the same decision
    for every voxel whose HU differs from ``air_hu`` by more than a float32 rounding step),
    and raises a ``KeyError`` when it has neither. Each cube gets up to ``max_tries``
    candidates; when none passes, the **last candidate is used** (a fallback, not an error): it
    is counted in ``self.num_fallbacks`` (per process) and in ``results['cube_fallbacks']``,
    and logged as a warning with the running count. (Genesis instead returns fewer cubes, or
    none, for such a scan.)

    **Generator.** Positions are drawn from ``results['cube_rng']`` when a dataset sets it
    (``VolumeDataset(fixed_cubes=True)``: the same cubes every epoch, as Models Genesis'
    offline cubes), else from :func:`~dira_mm.datasets.transforms.utils.get_rng`.

    **Output.** ``results['img']`` is one array ``(C, *size)`` when ``num_cubes == 1`` (so the
    rest of the pipeline, e.g. :class:`GenesisDistortion`, runs unchanged), and a **list** of
    ``num_cubes`` such arrays otherwise (a wrapper applies the next transforms per cube).
    ``results['cube_origins']`` is always a list of ``num_cubes`` start tuples (voxel indices in
    ``img``); ``img_shape`` becomes ``size``. ``img_hu`` is left as it is (the whole volume).

    Args:
        size (tuple[int, int, int]): Cube size. Defaults to (64, 64, 32).
        num_cubes (int): Cubes per read. Defaults to 1.
        border (tuple[int, int, int]): Borders kept free on each side. Defaults to
            (100, 100, 30).
        extra_depth (int): Slices added to the crop's last axis for the filter's look-ahead.
            Defaults to 3.
        air_filter (bool): Apply the air/lung filter. Defaults to False.
        air_hu (float): HU at and above which a voxel is tissue. Defaults to -150.
        max_air_fraction (float): The maximum tissue score of a kept cube (the official
            ``lung_max``; the name follows the issue). Defaults to 0.15.
        max_tries (int): Candidates per cube before the fallback. Defaults to 50.
    """

    def __init__(self,
                 size: Sequence[int] = (64, 64, 32),
                 num_cubes: int = 1,
                 border: Sequence[int] = (100, 100, 30),
                 extra_depth: int = 3,
                 air_filter: bool = False,
                 air_hu: float = -150.0,
                 max_air_fraction: float = 0.15,
                 max_tries: int = 50) -> None:
        self.size = tuple(int(s) for s in size)
        self.border = tuple(int(b) for b in border)
        if len(self.size) != 3 or min(self.size) < 1:
            raise ValueError(f'RandomCubes: size must be 3 positive ints, got {size!r}')
        if len(self.border) != 3 or min(self.border) < 0:
            raise ValueError(f'RandomCubes: border must be 3 non-negative ints, got {border!r}')
        if int(num_cubes) < 1 or int(max_tries) < 1 or int(extra_depth) < 0:
            raise ValueError('RandomCubes: num_cubes and max_tries must be >= 1 and '
                             'extra_depth >= 0')
        self.num_cubes = int(num_cubes)
        self.extra_depth = int(extra_depth)
        self.air_filter = bool(air_filter)
        self.air_hu = float(air_hu)
        self.max_air_fraction = float(max_air_fraction)
        self.max_tries = int(max_tries)
        self.num_fallbacks = 0

    def _bounds(self, shape: Tuple[int, ...], path) -> list:
        crop = self.size[:2] + (self.size[2] + self.extra_depth, )
        bounds = []
        for axis, (dim, c, b) in enumerate(zip(shape, crop, self.border)):
            if dim < c:
                raise ImageReadError(
                    str(path), f'the volume {tuple(shape)} is smaller than the cube crop {crop} '
                    f'(size {self.size} + extra_depth {self.extra_depth} on the last axis) on '
                    f'axis {axis}', 'Lower RandomCubes size/extra_depth, or remove the volume.')
            if dim < c + 2 * b:
                b = (dim - c) // 4
            bounds.append((b, dim - c - b))
        return bounds

    def _filter_values(self, results: dict, img: np.ndarray) -> Tuple[np.ndarray, float]:
        """The volume the air filter reads and its tissue threshold: ``img_hu`` with
        ``air_hu``, else the windowed ``img`` with ``air_hu`` windowed the same way."""
        if results.get('img_hu') is not None:
            hu = np.asarray(results['img_hu'])
            if hu.ndim == 4:
                hu = hu[0]
            if hu.shape != img.shape[1:]:
                raise ValueError(f"results['img_hu'] has shape {hu.shape}, not the volume's "
                                 f'{img.shape[1:]}')
            return hu, self.air_hu
        if 'hu_window' not in results:
            raise KeyError("RandomCubes(air_filter=True) needs HU or a known window: "
                           "results['img_hu'] (LoadVolume(keep_hu=True)) or "
                           "results['hu_window'] (set by LoadVolume)")
        window = results['hu_window']
        if window is None:  # img is HU
            return img[0], self.air_hu
        # the same float32 operations as hu_window: exact for HU on the integer grid
        thr = float(hu_window(np.float32([self.air_hu]), *window)[0])
        return img[0], thr

    def transform(self, results: dict) -> dict:
        """Replace ``results['img']`` by the cube(s)."""
        img = results['img']
        if not isinstance(img, np.ndarray) or img.ndim != 4:
            raise ValueError(f'RandomCubes expects results["img"] as a (C, X, Y, Z) array, got '
                             f'{getattr(img, "shape", type(img))}')
        vals, thr = (self._filter_values(results, img) if self.air_filter else (None, None))
        rng = results.get('cube_rng')
        rng = get_rng(results) if rng is None else rng
        bounds = self._bounds(img.shape[1:], results.get('img_path'))
        sx, sy, sz = self.size
        cubes, origins, fallbacks = [], [], 0
        for _ in range(self.num_cubes):
            for _ in range(self.max_tries):
                o = tuple(int(rng.integers(lo, hi + 1)) for lo, hi in bounds)
                if vals is None:
                    break
                crop = vals[o[0]:o[0] + sx, o[1]:o[1] + sy, o[2]:o[2] + sz + self.extra_depth]
                if genesis_air_score(crop, sz, thr, self.extra_depth) <= self.max_air_fraction:
                    break
            else:
                fallbacks += 1
                self.num_fallbacks += 1
                MMLogger.get_current_instance().warning(
                    f'RandomCubes: no cube of "{results.get("img_path")}" passed the air filter '
                    f'in {self.max_tries} tries; the last candidate {o} is used '
                    f'({self.num_fallbacks} fallback(s) so far in this process).')
            origins.append(o)
            cubes.append(img[:, o[0]:o[0] + sx, o[1]:o[1] + sy, o[2]:o[2] + sz].copy())
        results['img'] = cubes[0] if self.num_cubes == 1 else cubes
        results['cube_origins'] = origins
        results['cube_fallbacks'] = fallbacks
        results['img_shape'] = self.size
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, num_cubes={self.num_cubes}, '
                f'border={self.border}, extra_depth={self.extra_depth}, '
                f'air_filter={self.air_filter}, air_hu={self.air_hu}, '
                f'max_air_fraction={self.max_air_fraction}, max_tries={self.max_tries})')
