"""TransVW's visual-word instances (written by ``tools/misc/transvw_discover.py``)."""
import csv
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np

from dira_mm.registry import DATASETS
from .base_dataset import MedicalImageDataset
from .readers import ImageReadError
from .volume_readers import hu_window

__all__ = ['TransVWDataset', 'TRANSVW_INDEX_FIELDS']

#: columns of the index CSV written by the discovery tool
TRANSVW_INDEX_FIELDS = ('path', 'class', 'patient', 'x', 'y', 'z', 'resolution')


@DATASETS.register_module()
class TransVWDataset(MedicalImageDataset):
    """Visual-word cubes with their class, from a discovery index CSV.

    Each row of ``ann_file`` (``path,class,patient,x,y,z,resolution``, see
    :data:`TRANSVW_INDEX_FIELDS`) names one ``.npy`` instance (relative to
    ``data_prefix['img_path']``, default ``data_root``), its class, the patient it was
    cropped from, the crop coordinate and its resolution (0: the base crop, 1, 2: the
    multi-resolution crops). A sample is the cube as ``img`` (float32 ``(1, X, Y, Z)``,
    values in [0, 1]), ``gt_label`` (the class, an int), ``spatial_dims`` and the row's
    metadata; the pipeline (e.g. ``TransVWPerturbation`` + ``PackDiRAInputs``) does the rest.

    Unreadable instances (missing, not a 3-D float array, non-finite) raise
    :class:`ImageReadError`, so they are skipped and counted as any unreadable image
    (``on_error``).

    Args:
        resolutions (Sequence[int], optional): Keep only these resolution indices (None:
            all; TransVW trains on all three).
        window (tuple[float, float], optional): HU window applied on load, for instances
            written in HU by another tool (``transvw_discover.py`` always writes windowed
            values, its ``--window``); None (default): the files already hold windowed
            [0, 1] values.
        num_classes (int, optional): Check that every class is below it (the head's
            ``num_classes``).
        **kwargs: :class:`MedicalImageDataset` arguments (``ann_file``, ``data_root``,
            ``pipeline``, ``seed``, ``on_error``, ...).
    """

    requires_ann_file = True

    def __init__(self, *args, resolutions: Optional[Sequence[int]] = None,
                 window: Optional[Sequence[float]] = None,
                 num_classes: Optional[int] = None, **kwargs) -> None:
        self.resolutions = None if resolutions is None else tuple(int(r) for r in resolutions)
        self.window = None if window is None else (float(window[0]), float(window[1]))
        self.num_classes = None if num_classes is None else int(num_classes)
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        with open(self.ann_file, newline='') as f:
            reader = csv.DictReader(f)
            missing = set(TRANSVW_INDEX_FIELDS) - set(reader.fieldnames or ())
            if missing:
                raise ValueError(
                    f'TransVWDataset: `ann_file` "{self.ann_file}" lacks the columns '
                    f'{sorted(missing)}; expected {",".join(TRANSVW_INDEX_FIELDS)} (the index '
                    'written by tools/misc/transvw_discover.py).')
            rows = list(reader)
        data_list = []
        for i, row in enumerate(rows):
            try:
                label = int(row['class'])
                res = int(row['resolution'])
                coord = tuple(int(row[k]) for k in ('x', 'y', 'z'))
            except (TypeError, ValueError) as err:
                raise ValueError(f'TransVWDataset: `ann_file` "{self.ann_file}" row {i + 2}: '
                                 f'{err}') from None
            if label < 0 or (self.num_classes is not None and label >= self.num_classes):
                raise ValueError(
                    f'TransVWDataset: `ann_file` "{self.ann_file}" row {i + 2} has class '
                    f'{label}, outside [0, {self.num_classes}); set num_classes (and the '
                    "head's) to the discovered number of classes.")
            if self.resolutions is not None and res not in self.resolutions:
                continue
            data_list.append(dict(img_path=self._join_img_path(row['path']), gt_label=label,
                                  patient=row['patient'], coordinate=coord, resolution=res))
        return data_list

    def load_sample(self, results: dict) -> dict:
        path = results['img_path']
        try:
            cube = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise ImageReadError(path, f'not a readable .npy file ({err})',
                                 'Re-run tools/misc/transvw_discover.py or fix the index.'
                                 ) from None
        if cube.ndim == 4 and cube.shape[0] == 1:
            cube = cube[0]
        if cube.ndim != 3 or not np.issubdtype(cube.dtype, np.number):
            raise ImageReadError(path, f'expected a numeric (X, Y, Z) cube, got dtype '
                                 f'{cube.dtype} shape {cube.shape}')
        cube = cube.astype(np.float32, copy=False)
        if not np.isfinite(cube).all():
            raise ImageReadError(path, 'the cube has NaN/Inf values')
        if self.window is not None:
            cube = hu_window(cube, *self.window)
        results['img'] = np.ascontiguousarray(cube[None])
        results['spatial_dims'] = 3
        results['img_shape'] = tuple(cube.shape)
        return results
