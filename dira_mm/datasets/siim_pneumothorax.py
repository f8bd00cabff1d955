"""SIIM-ACR Pneumothorax Segmentation: DICOM images + run-length masks in a CSV."""
import csv
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional

import numpy as np
from mmengine.logging import MMLogger

from dira_mm.registry import DATASETS
from .base_dataset import MedicalImageDataset
from .image_folder import iter_files
from .rle import is_empty_rle

__all__ = ['SIIMPneumothoraxDataset']

_MISSING = ('raise', 'skip')


def _image_id(token: str) -> str:
    """``a/b/1.2.3.dcm`` -> ``1.2.3`` (IDs are DICOM UIDs: dots inside, ``.dcm`` at the end)."""
    name = osp.basename(token.strip())
    return name[:-4] if name.lower().endswith('.dcm') else name


@DATASETS.register_module()
class SIIMPneumothoraxDataset(MedicalImageDataset):
    """The SIIM-ACR challenge data: ``train-rle.csv`` and a folder tree of DICOM files.

    ``ann_file`` is the challenge CSV (``ImageId, EncodedPixels``; the header's spaces are
    ignored, as is the stage-2 ``stage_2_train.csv``). Every row is one pneumothorax region
    in the SIIM run-length format (:mod:`dira_mm.datasets.rle`), ``-1`` for none; the rows of
    one image are merged by union (``LoadSegMask`` decodes them at the image's size). The
    images are found by ``ImageId`` anywhere under the image folder
    (``data_prefix['img_path']``, e.g. ``dicom-images-train/<study>/<series>/<ImageId>.dcm``),
    and are read through ``LoadMedicalImage`` (DICOM window, MONOCHROME1 inverted).

    The challenge publishes no validation split: ``split_file`` (optional) lists the image
    IDs (or DICOM file names) of this split, one per line; without it every image of the
    CSV is used. Images of the CSV without a DICOM file raise at construction
    (``missing_images='raise'``), or are left out with a warning (``'skip'``). DICOM files
    the CSV does not name are ignored.

    Samples carry ``img_path``, ``mask_rle`` (the non-empty encodings), ``image_id`` and
    ``gt_label`` (float32 ``[1.]`` with a pneumothorax, ``[0.]`` without).

    Args:
        data_root: the dataset folder.
        ann_file: the CSV, relative to ``data_root`` unless absolute.
        data_prefix: ``img_path``: the DICOM folder, searched recursively.
        split_file: optional list of the image IDs to keep, relative to ``data_root``.
        missing_images: ``'raise'`` or ``'skip'`` for CSV images without a DICOM file.
        **kwargs: :class:`MedicalImageDataset` arguments (``pipeline``, ``seed``, ...).
    """

    requires_ann_file = True
    METAINFO = dict(classes=('Pneumothorax', ))

    def __init__(self,
                 data_root: str = '',
                 ann_file: str = 'train-rle.csv',
                 data_prefix: Optional[dict] = None,
                 split_file: str = '',
                 missing_images: str = 'raise',
                 **kwargs) -> None:
        if missing_images not in _MISSING:
            raise ValueError(f'SIIMPneumothoraxDataset: `missing_images` must be one of '
                             f'{_MISSING}, got {missing_images!r}.')
        if split_file and data_root and not osp.isabs(split_file):
            split_file = osp.join(data_root, split_file)
        self.split_file = split_file
        self.missing_images = missing_images
        prefix = dict(img_path='dicom-images-train') if data_prefix is None else data_prefix
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=prefix, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Group the CSV rows by image, keep the split, find every image's DICOM file."""
        masks = self._read_csv()
        if self.split_file:
            keep = self._read_split()
            unknown = [i for i in keep if i not in masks]
            if unknown:
                raise ValueError(
                    f'SIIMPneumothoraxDataset: {len(unknown)} image ID(s) of `split_file` '
                    f'"{self.split_file}" are not in `ann_file` "{self.ann_file}", e.g. '
                    f'{unknown[:3]}.')
            masks = OrderedDict((i, masks[i]) for i in keep)
        files = self._index_dicoms()
        missing = [i for i in masks if i not in files]
        if missing:
            message = (f'SIIMPneumothoraxDataset: {len(missing)} of the {len(masks)} images '
                       f'have no DICOM file under "{self.data_prefix.get("img_path")}", e.g. '
                       f'{missing[:3]}.')
            if self.missing_images == 'raise' or len(missing) == len(masks):
                raise FileNotFoundError(
                    message + " Check `data_prefix['img_path']`, or set "
                    "missing_images='skip' to leave them out.")
            MMLogger.get_current_instance().warning(message + ' They are left out.')
        return [dict(img_path=files[i], mask_rle=rles, image_id=i,
                     gt_label=np.array([float(bool(rles))], dtype=np.float32))
                for i, rles in masks.items() if i in files]

    def _read_csv(self) -> 'OrderedDict[str, List[str]]':
        with open(self.ann_file, newline='', encoding='utf-8') as f:
            reader = csv.reader(f, skipinitialspace=True)
            header = [h.strip().lower() for h in next(reader, [])]
            try:
                id_col, rle_col = header.index('imageid'), header.index('encodedpixels')
            except ValueError:
                raise ValueError(
                    f'SIIMPneumothoraxDataset: `ann_file` "{self.ann_file}" must have the '
                    f'columns ImageId and EncodedPixels; its header is {header}.') from None
            masks: 'OrderedDict[str, List[str]]' = OrderedDict()
            for lineno, row in enumerate(reader, 2):
                if not row:
                    continue
                if len(row) <= max(id_col, rle_col):
                    raise ValueError(f'SIIMPneumothoraxDataset: line {lineno} of "'
                                     f'{self.ann_file}" has {len(row)} columns: {row[:3]}.')
                rles = masks.setdefault(row[id_col].strip(), [])
                if not is_empty_rle(row[rle_col]):
                    rles.append(row[rle_col].strip())
        return masks

    def _read_split(self) -> List[str]:
        if not osp.isfile(self.split_file):
            raise FileNotFoundError(
                f'SIIMPneumothoraxDataset: `split_file` "{self.split_file}" does not exist '
                '(relative to `data_root` unless absolute).')
        with open(self.split_file, encoding='utf-8') as f:
            ids = [_image_id(line.split()[0]) for line in f
                   if line.strip() and not line.startswith('#')]
        return list(OrderedDict.fromkeys(ids))

    def _index_dicoms(self) -> Dict[str, str]:
        """``ImageId -> path`` of every ``*.dcm`` under the image folder (links to folders
        followed, each real folder once)."""
        root = osp.abspath(self.data_prefix.get('img_path', '') or '')
        files: Dict[str, str] = {}
        for path in iter_files(root, '.dcm', skip_hidden=False):
            image_id = _image_id(osp.basename(path))
            if image_id in files:
                raise ValueError(f'SIIMPneumothoraxDataset: image ID {image_id} has two '
                                 f'DICOM files, "{files[image_id]}" and "{path}".')
            files[image_id] = path
        return files
