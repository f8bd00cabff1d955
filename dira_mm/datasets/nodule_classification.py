"""Nodule classification on CT: cubes centred on LUNA16-style candidates (Genesis' NCC task)."""
import copy
import csv
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from mmengine.logging import MMLogger

from dira_mm.registry import DATASETS
from .base_dataset import MedicalImageDataset
from .ct_phantom import ras_to_lps, world_to_voxel
from .image_folder import read_list_file
from .nodule_segmentation import split_volume_ext
from .readers import ImageReadError
from .volume_readers import DEFAULT_MAX_VOXELS, check_volume_options, hu_window, read_volume

__all__ = ['NoduleClassificationDataset', 'crop_with_padding']

_COORDS = ('coordX', 'coordY', 'coordZ')


def crop_with_padding(volume: np.ndarray, center: Sequence[int], size: Sequence[int],
                      pad_value: float) -> np.ndarray:
    """The ``size`` cube of ``volume`` covering ``[c - s // 2, c - s // 2 + s)`` per axis,
    filled with ``pad_value`` where it leaves the volume."""
    out = np.full(tuple(size), pad_value, dtype=volume.dtype)
    src, dst = [], []
    for c, s, n in zip(center, size, volume.shape):
        lo = int(c) - int(s) // 2
        a, b = max(lo, 0), min(lo + int(s), n)
        if b <= a:
            return out
        src.append(slice(a, b))
        dst.append(slice(a - lo, b - lo))
    out[tuple(dst)] = volume[tuple(src)]
    return out


@DATASETS.register_module()
class NoduleClassificationDataset(MedicalImageDataset):
    """Cubes centred on the candidates of a LUNA16-style CSV, labelled by a column.

    ``ann_file`` is a CSV with ``seriesuid, coordX, coordY, coordZ`` and ``label_column``
    (LUNA16's ``candidates.csv``: ``class``, 1 = nodule; the demo's ``nodules.csv``:
    ``malignant``). The volume of a series is ``<seriesuid><volume_ext>`` in the first folder of
    ``data_prefix['img_path']`` (one folder, or a list such as LUNA16's ``subset0`` ..
    ``subset9``) that holds it. ``split_file`` (optional, relative to ``data_root``) keeps only
    the series it names (one volume name or seriesuid per line), e.g. the demo's ``train.txt``.

    Coordinates are world mm in ``coord_frame``: ``'LPS'`` (ITK's frame, LUNA16's CSV files and
    the demo's) or ``'RAS'``; they go to voxels through the affine of the volume as read (RAS,
    see ``read_volume``) and are rounded. The cube (``cube_size``, default 64 x 64 x 32 as Models
    Genesis' NCC task) covers ``[c - s // 2, c - s // 2 + s)`` per axis; outside the volume it is
    padded with ``pad_hu`` (-1000, air) **before** the window (``[-1000, 1000]`` HU -> ``[0, 1]``;
    None keeps HU). ``img`` is float32 ``(1, *cube_size)``, ``gt_label`` float32 ``(1, )``.
    Decoded volumes are kept in a per-process LRU of ``cache_volumes`` volumes.

    Unreadable volumes raise ``ImageReadError`` and are skipped and counted; a scan that
    failed once is not read again in that process (its error is raised at once). With
    ``on_error='skip'`` the rows of scans that do not exist are dropped when the list is loaded
    (a warning names them). A candidate whose centre voxel lies outside its volume raises
    ``ImageReadError`` too (usually a wrong ``coord_frame``) rather than giving an air cube.
    The base class has no hook to jump past the other rows of a corrupt scan; instead its
    skips are counted per scan (``max_consecutive_skips`` counts scans, not rows), so the
    hundreds of rows of one corrupt scan, each failing at once, do not stop training.

    Args:
        label_column (str): The label column. Defaults to 'class'.
        cube_size (Sequence[int]): Cube size in voxels. Defaults to (64, 64, 32).
        window (tuple[float, float], optional): HU window. Defaults to (-1000, 1000).
        pad_hu (float): Padding value in HU. Defaults to -1000.
        coord_frame (str): ``'LPS'`` or ``'RAS'``. Defaults to 'LPS'.
        volume_ext (str): File extension of the volumes. Defaults to '.nii.gz'.
        split_file (str, optional): Series to keep. Defaults to None (all).
        cache_volumes (int): Decoded volumes kept per process. Defaults to 2.
        nonfinite (str), max_voxels (int, optional): As in ``read_volume``.
        **kwargs: Arguments of :class:`MedicalImageDataset`.
    """

    METAINFO = dict(classes=('nodule', ))
    requires_ann_file = True

    def __init__(self,
                 label_column: str = 'class',
                 cube_size: Sequence[int] = (64, 64, 32),
                 window: Optional[Sequence[float]] = (-1000, 1000),
                 pad_hu: float = -1000.0,
                 coord_frame: str = 'LPS',
                 volume_ext: str = '.nii.gz',
                 split_file: Optional[str] = None,
                 cache_volumes: int = 2,
                 nonfinite: str = 'skip',
                 max_voxels: Optional[int] = DEFAULT_MAX_VOXELS,
                 **kwargs) -> None:
        name = type(self).__name__
        check_volume_options(nonfinite, max_voxels)
        if coord_frame not in ('LPS', 'RAS'):
            raise ValueError(f"{name}: `coord_frame` must be 'LPS' or 'RAS', got "
                             f'{coord_frame!r}.')
        self.cube_size = tuple(int(s) for s in cube_size)
        if len(self.cube_size) != 3 or min(self.cube_size) < 1:
            raise ValueError(f'{name}: `cube_size` must be 3 positive ints, got {cube_size!r}.')
        if window is not None and (len(window) != 2 or not float(window[1]) > float(window[0])):
            raise ValueError(f'{name}: `window` must be (low, high) with high > low, or None; '
                             f'got {window!r}.')
        self.window = None if window is None else (float(window[0]), float(window[1]))
        self.label_column = label_column
        self.pad_hu = float(pad_hu)
        self.coord_frame = coord_frame
        self.volume_ext = volume_ext
        self.split_file = split_file
        self.cache_volumes = int(cache_volumes)
        self.nonfinite = nonfinite
        self.max_voxels = max_voxels
        self._cache: 'OrderedDict[str, tuple]' = OrderedDict()
        self._failed: Dict[str, ImageReadError] = {}  # per process: scans that failed to read
        self._skipped_scans: set = set()  # the scans skipped in the current run of skips
        super().__init__(**kwargs)

    # ------------------------------------------------------------------ list
    def _img_dirs(self) -> List[str]:
        folders: Union[str, Sequence[str]] = self.data_prefix.get('img_path', '') or ''
        return [folders] if isinstance(folders, str) else list(folders)

    def _join_prefix(self) -> None:
        """As mmengine's, but ``data_prefix['img_path']`` may be a list of folders."""
        folders = self.data_prefix.get('img_path')
        if not isinstance(folders, (list, tuple)):
            return super()._join_prefix()
        self.data_prefix['img_path'] = ''
        super()._join_prefix()
        self.data_prefix['img_path'] = [
            p if osp.isabs(p) or not self.data_root else osp.join(self.data_root, p)
            for p in folders
        ]

    def _check_paths(self) -> None:
        folders = self.data_prefix.get('img_path')
        if not isinstance(folders, list):
            return super()._check_paths()
        missing = [f for f in folders if not osp.isdir(f)]
        if len(missing) == len(folders):
            raise FileNotFoundError(
                f"{type(self).__name__}: none of the folders of `data_prefix['img_path']` "
                f'exists, e.g. "{missing[0]}". Set it to the volume folder(s), relative to '
                '`data_root` or absolute.')
        self.data_prefix['img_path'] = ''
        try:
            super()._check_paths()
        finally:
            self.data_prefix['img_path'] = folders

    def _series_index(self) -> Dict[str, str]:
        index: Dict[str, str] = {}
        for folder in self._img_dirs():
            if not osp.isdir(folder):
                continue
            for entry in sorted(os.listdir(folder)):
                if entry.lower().endswith(self.volume_ext.lower()):
                    index.setdefault(entry[:-len(self.volume_ext)], osp.join(folder, entry))
        return index

    def _split_series(self) -> Optional[set]:
        if not self.split_file:
            return None
        path = self.split_file if osp.isabs(self.split_file) else osp.join(
            self.data_root, self.split_file)
        if not osp.isfile(path):
            raise FileNotFoundError(f'{type(self).__name__}: `split_file` "{path}" does not '
                                    'exist. Set it to a list of volume names or seriesuids.')
        names = read_list_file(path, type(self).__name__, 'Set `split_file`.')
        return {split_volume_ext(osp.basename(name))[0] for name in names}

    def load_data_list(self) -> List[dict]:
        keep = self._split_series()
        index = self._series_index()
        first_dir = self._img_dirs()[0]
        data_list = []
        with open(self.ann_file, encoding='utf-8', newline='') as f:
            reader = csv.DictReader(f)
            needed = ('seriesuid', ) + _COORDS + (self.label_column, )
            missing = [c for c in needed if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(
                    f'{type(self).__name__}: `ann_file` "{self.ann_file}" lacks the column(s) '
                    f'{missing} (has {reader.fieldnames}); set `label_column` to one of its '
                    'columns or use a LUNA16-style CSV.')
            for line, row in enumerate(reader, start=2):
                uid = row['seriesuid']
                if keep is not None and uid not in keep:
                    continue
                try:
                    coord = np.array([float(row[c]) for c in _COORDS])
                    label = float(row[self.label_column])
                except ValueError:
                    raise ValueError(f'{type(self).__name__}: line {line} of "{self.ann_file}" '
                                     f'has a non-numeric coordinate or label: {row}') from None
                path = index.get(uid, osp.join(first_dir, uid + self.volume_ext))
                data_list.append(dict(img_path=osp.abspath(path), seriesuid=uid,
                                      candidate_mm=coord,
                                      gt_label=np.array([label], dtype=np.float32)))
        return self._drop_missing_scans(data_list)

    def _drop_missing_scans(self, data_list: List[dict]) -> List[dict]:
        """With ``on_error='skip'``, drop the rows of scans that do not exist (warned once).

        A scan holds hundreds of consecutive candidate rows (LUNA16: ~600), more than the
        base class skips in a row (``max_consecutive_skips``), so one missing scan would stop
        training. Rows are kept when ``on_error='raise'`` or when no scan exists at all, so
        that the base class' file check reports the error.
        """
        if self.on_error != 'skip' or not data_list:
            return data_list
        exists: Dict[str, bool] = {}
        for info in data_list:
            path = info['img_path']
            if path not in exists:
                exists[path] = osp.isfile(path)
        if all(exists.values()) or not any(exists.values()):
            return data_list
        kept = [info for info in data_list if exists[info['img_path']]]
        missing = [osp.basename(p) for p, ok in exists.items() if not ok]
        MMLogger.get_current_instance().warning(
            f'{type(self).__name__}: {len(data_list) - len(kept)} candidate rows of '
            f'"{self.ann_file}" name {len(missing)} scan(s) that do not exist, e.g. '
            f'{missing[:3]}; they are dropped (on_error="skip").')
        return kept

    def _report_skip(self, err: ImageReadError, current: int, skipped: int, idx: int) -> None:
        """Count the skipped rows of one scan as one skip, so that ``max_consecutive_skips``
        counts scans: the hundreds of rows of a corrupt scan (each failing at once, see
        ``_volume``) do not stop training. The base class' loop still steps through them."""
        if skipped == 1:
            self._skipped_scans = set()
        self._skipped_scans.add(getattr(err, 'path', None) or current)
        count = skipped if skipped >= len(self) else len(self._skipped_scans)
        super()._report_skip(err, current, count, idx)

    # ------------------------------------------------------------------ sample
    def _volume(self, path: str):
        failed = self._failed.get(path)
        if failed is not None:  # read once per process: a corrupt scan is not re-read
            raise copy.copy(failed)  # a fresh error (no notes or traceback of earlier raises)
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        try:
            item = read_volume(path, nonfinite=self.nonfinite, max_voxels=self.max_voxels)
        except ImageReadError as err:
            self._failed[path] = err
            raise
        if self.cache_volumes > 0:
            self._cache[path] = item
            while len(self._cache) > self.cache_volumes:
                self._cache.popitem(last=False)
        return item

    def candidate_voxel(self, coord_mm: Sequence[float], affine: np.ndarray) -> np.ndarray:
        """The (rounded) voxel of a candidate given in ``coord_frame`` mm."""
        ras = ras_to_lps(coord_mm) if self.coord_frame == 'LPS' else np.asarray(coord_mm)
        return np.rint(world_to_voxel(affine, ras)).astype(np.int64)

    def load_sample(self, results: dict) -> dict:
        """Read the volume (LRU) and crop the candidate's cube into ``img``."""
        vol, meta = self._volume(results['img_path'])
        center = self.candidate_voxel(results['candidate_mm'], meta['affine'])
        if np.any(center < 0) or np.any(center >= np.asarray(vol.shape)):
            raise ImageReadError(
                results['img_path'],
                f"the candidate of series {results.get('seriesuid')} at "
                f"{[float(c) for c in results['candidate_mm']]} mm ({self.coord_frame}) lies "
                f'at voxel {center.tolist()}, outside the volume {tuple(vol.shape)}',
                '`coord_frame` (LPS for LUNA16/ITK CSV files, RAS otherwise) or the CSV '
                'is probably wrong')
        cube = crop_with_padding(vol, center, self.cube_size, self.pad_hu)
        if self.window is not None:
            cube = hu_window(cube, *self.window)
        results['img'] = np.ascontiguousarray(cube, dtype=np.float32)[None]
        results['candidate_voxel'] = tuple(int(c) for c in center)
        results['spatial_dims'] = 3
        results['spacing'] = meta['spacing']
        results['img_shape'] = self.cube_size
        results['ori_shape'] = tuple(vol.shape)
        return results
