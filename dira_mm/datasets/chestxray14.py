"""ChestX-ray14 (NIH) read from the official DiRA / BenchmarkTransferLearning list files."""
import os.path as osp
from typing import List, Optional

import numpy as np

from dira_mm.registry import DATASETS
from .base_dataset import MedicalImageDataset

__all__ = ['ChestXray14Dataset', 'CHESTXRAY14_CLASSES']

#: The 14 findings in the column order of the official lists.
CHESTXRAY14_CLASSES = ('Atelectasis', 'Cardiomegaly', 'Effusion', 'Infiltration', 'Mass',
                       'Nodule', 'Pneumonia', 'Pneumothorax', 'Consolidation', 'Edema',
                       'Emphysema', 'Fibrosis', 'Pleural_Thickening', 'Hernia')


@DATASETS.register_module()
class ChestXray14Dataset(MedicalImageDataset):
    """ChestX-ray14 from a list file in the official format.

    Each non-blank line is ``<file name> <label_1> ... <label_14>`` separated by white space,
    e.g. ``00000001_000.png 0 1 0 0 0 0 0 0 0 0 0 0 0 0``; the file name is relative to the
    image folder (``data_root`` + ``data_prefix['img_path']``) and the labels follow
    ``METAINFO['classes']``. Labels may be 0, 1, or -1 (uncertain). DiRA's pre-training
    ignores the labels; with ``with_label=False`` they are not read and lines may hold the
    file name only.

    Every sample gets ``img_path`` (absolute) and, with labels, ``gt_label`` (float32, 14).
    Unreadable images, seeds and early path checks are handled by
    :class:`~dira_mm.datasets.base_dataset.MedicalImageDataset`.

    Args:
        ann_file (str): The list file, relative to ``data_root`` unless absolute.
        data_root (str): The dataset folder. Defaults to ''.
        data_prefix (dict, optional): ``dict(img_path=...)``, the image folder relative to
            ``data_root``. Defaults to ``dict(img_path='')``.
        with_label (bool): Read the 14 labels. Defaults to True.
        **kwargs: Arguments of ``MedicalImageDataset`` (``pipeline``, ``seed``, ``on_error``,
            ``check_files``, ...).
    """

    METAINFO = dict(classes=CHESTXRAY14_CLASSES)
    requires_ann_file = True

    def __init__(self,
                 ann_file: str,
                 data_root: str = '',
                 data_prefix: Optional[dict] = None,
                 with_label: bool = True,
                 **kwargs) -> None:
        self.with_label = with_label
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=data_prefix,
                         **kwargs)

    def load_data_list(self) -> List[dict]:
        """Parse the list file; a malformed line raises ``ValueError`` with its number."""
        num_classes = len(self._metainfo['classes'])
        names, rows, linenos, lines = [], [], [], []
        with open(self.ann_file, encoding='utf-8') as f:
            for lineno, line in enumerate(f, 1):
                tokens = line.split()
                if not tokens:
                    continue
                if len(tokens) not in (1, 1 + num_classes) or \
                        (self.with_label and len(tokens) == 1):
                    expected = (f'a file name and {num_classes} labels' if self.with_label else
                                f'a file name, optionally followed by {num_classes} labels')
                    self._malformed(lineno, line, f'expected {expected}, got {len(tokens)} '
                                    'fields')
                names.append(tokens[0])
                if self.with_label:
                    rows.append(tokens[1:])
                    linenos.append(lineno)
                    lines.append(line)
        if not names:
            raise ValueError(f'{type(self).__name__}: `ann_file` "{self.ann_file}" lists no '
                             'image. Point `ann_file` at a list in the official format.')
        prefix = osp.abspath(self.data_prefix.get('img_path', '') or '')
        paths = [osp.join(prefix, name) for name in names]
        if not self.with_label:
            return [dict(img_path=path) for path in paths]
        labels = self._parse_labels(rows, linenos, lines)
        return [dict(img_path=path, gt_label=label) for path, label in zip(paths, labels)]

    def _parse_labels(self, rows: List[List[str]], linenos: List[int],
                      lines: List[str]) -> np.ndarray:
        """All label rows at once (fast); the first bad row is reported with its line."""
        try:
            labels = np.array(rows, dtype=np.float32)
        except ValueError:
            for row, lineno, line in zip(rows, linenos, lines):
                try:
                    np.array(row, dtype=np.float32)
                except ValueError:
                    self._malformed(lineno, line, 'the labels must be numbers (0, 1 or -1)')
            raise
        valid = np.isin(labels, (-1.0, 0.0, 1.0)).all(axis=1)
        if not valid.all():
            i = int(np.argmin(valid))
            self._malformed(linenos[i], lines[i], 'the labels must be 0, 1 or -1 (uncertain)')
        return labels

    def _malformed(self, lineno: int, line: str, reason: str) -> None:
        text = line.strip()
        text = text if len(text) <= 80 else text[:77] + '...'
        raise ValueError(
            f'{type(self).__name__}: `ann_file` "{osp.abspath(self.ann_file)}", line {lineno}: '
            f'{reason}: "{text}". Each line must be "<file name> <14 labels>" (official '
            'format), or the file name alone with with_label=False.')
