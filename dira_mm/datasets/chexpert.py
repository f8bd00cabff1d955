"""CheXpert (Stanford) read from the official ``train.csv`` / ``valid.csv``."""
import csv
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from dira_mm.registry import DATASETS
from .base_dataset import MedicalImageDataset

__all__ = ['CheXpertDataset', 'CHEXPERT_CLASSES', 'CHEXPERT_UNCERTAIN_PROTOCOL']

#: The 14 observations in the column order of the official CSVs.
CHEXPERT_CLASSES = ('No Finding', 'Enlarged Cardiomediastinum', 'Cardiomegaly',
                    'Lung Opacity', 'Lung Lesion', 'Edema', 'Consolidation', 'Pneumonia',
                    'Atelectasis', 'Pneumothorax', 'Pleural Effusion', 'Pleural Other',
                    'Fracture', 'Support Devices')

#: The per-class uncertainty protocol common in later work on the five competition tasks:
#: U-Ones for Atelectasis and Edema, U-Zeros for Cardiomegaly, Consolidation and Effusion.
CHEXPERT_UNCERTAIN_PROTOCOL = {
    'Atelectasis': 'ones',
    'Edema': 'ones',
    'Cardiomegaly': 'zeros',
    'Consolidation': 'zeros',
    'Pleural Effusion': 'zeros',
}

_VIEWS = ('Frontal', 'Lateral')
_POLICIES = ('ones', 'zeros', 'ignore')
_PATH, _VIEW, _SEX, _AGE, _AP_PA = 'Path', 'Frontal/Lateral', 'Sex', 'Age', 'AP/PA'
# Fast path for the label cells of the official CSVs (NaN: blank); any other cell is parsed
# (or rejected) by `_parse_cell`.
_CELLS = {'1.0': 1.0, '0.0': 0.0, '-1.0': -1.0, '1': 1.0, '0': 0.0, '-1': -1.0, '': np.nan}


@DATASETS.register_module()
class CheXpertDataset(MedicalImageDataset):
    """CheXpert from an official CSV (``Path,Sex,Age,Frontal/Lateral,AP/PA,<14 labels>``).

    ``Path`` (e.g. ``CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg``) is
    taken relative to the image folder (``data_root`` + ``data_prefix['img_path']``). Since
    it starts with the release folder, ``strip_components='auto'`` finds the images with
    ``data_root`` either above the release folder or inside it: the first of the checked
    rows that exists decides whether the first component is kept (0) or stripped (1).

    Label cells are ``1.0``, ``0.0``, ``-1.0`` (uncertain) or blank (not mentioned).
    Uncertain labels follow ``uncertain`` (the same policy for every class) unless
    ``uncertain_per_class`` names the class: ``'ones'`` (U-Ones), ``'zeros'`` (U-Zeros) or
    ``'ignore'`` (kept as -1, the data contract's "uncertain"; a loss masks ``gt_label < 0``).
    :data:`CHEXPERT_UNCERTAIN_PROTOCOL` is the usual per-class choice. Blank cells become
    ``blank`` whatever the policy. Pre-training ignores the labels; fine-tuning uses them.

    Every sample gets ``img_path`` (absolute) and, when the columns exist, ``view``,
    ``sex``, ``age`` (int, None when blank), ``ap_pa`` (``''`` for lateral views) and,
    with labels, ``gt_label`` (float32, 14, in ``METAINFO['classes']`` order; a
    ``metainfo=dict(classes=...)`` subset reads only those columns).

    Args:
        ann_file (str): The CSV, relative to ``data_root`` unless absolute.
        views (str | Sequence[str]): Keep the rows whose ``Frontal/Lateral`` is one of these
            (``'Frontal'``, ``'Lateral'``). Defaults to ``('Frontal',)``.
        with_label (bool): Read the 14 labels. Defaults to True.
        uncertain (str): Policy for -1 labels: ``'ones'``, ``'zeros'`` or ``'ignore'``.
            Defaults to 'ignore'.
        uncertain_per_class (dict, optional): ``{class name: policy}`` overriding
            ``uncertain`` for those classes. Defaults to None.
        blank (float): The value of blank label cells: 0, 1 or -1. Defaults to 0.
        strip_components (int | str): Leading components of ``Path`` to drop, or ``'auto'``
            (0 or 1, whichever exists). Defaults to 'auto'.
        **kwargs: Arguments of ``MedicalImageDataset``: ``data_root`` (the dataset folder),
            ``data_prefix`` (``dict(img_path=...)``, the folder the CSV paths are relative
            to, relative to ``data_root``), ``pipeline``, ``seed``, ``on_error``,
            ``check_files``, ...
    """

    METAINFO = dict(classes=CHEXPERT_CLASSES)
    requires_ann_file = True

    def __init__(self,
                 ann_file: str,
                 views: Union[str, Sequence[str]] = ('Frontal', ),
                 with_label: bool = True,
                 uncertain: str = 'ignore',
                 uncertain_per_class: Optional[Dict[str, str]] = None,
                 blank: float = 0.0,
                 strip_components: Union[int, str] = 'auto',
                 **kwargs) -> None:
        views = (views, ) if isinstance(views, str) else tuple(views)
        if not views or any(v not in _VIEWS for v in views):
            raise ValueError(f'`views` must be a non-empty subset of {_VIEWS}, got {views!r}.')
        self.views = views
        self.with_label = with_label
        self.uncertain = self._check_policy('uncertain', uncertain)
        self.uncertain_per_class = {
            name: self._check_policy(f'uncertain_per_class[{name!r}]', policy)
            for name, policy in (uncertain_per_class or {}).items()
        }
        if blank not in (0, 1, -1):
            raise ValueError(f'`blank` must be 0, 1 or -1, got {blank!r}.')
        self.blank = float(blank)
        if strip_components != 'auto' and not (isinstance(strip_components, int)
                                               and strip_components >= 0):
            raise ValueError('`strip_components` must be "auto" or an int >= 0, got '
                             f'{strip_components!r}.')
        self.strip_components = strip_components
        classes = (kwargs.get('metainfo') or {}).get('classes', self.METAINFO['classes'])
        unknown = set(self.uncertain_per_class) - set(classes)
        if unknown:
            raise ValueError(f'`uncertain_per_class` names unknown classes {sorted(unknown)}; '
                             f'the classes are {list(classes)}.')
        super().__init__(ann_file=ann_file, **kwargs)

    @staticmethod
    def _check_policy(name: str, policy: str) -> str:
        if policy not in _POLICIES:
            raise ValueError(f'`{name}` must be one of {_POLICIES}, got {policy!r}.')
        return policy

    # ------------------------------------------------------------------ loading
    def load_data_list(self) -> List[dict]:
        """Parse the CSV, keep the requested views, resolve the paths, map the labels."""
        header, rows, linenos = self._read_csv()
        classes = list(self._metainfo['classes'])
        required = [_PATH] + ([_VIEW] if len(self.views) < len(_VIEWS) else [])
        required += classes if self.with_label else []
        missing = [col for col in required if col not in header]
        if missing:
            raise ValueError(
                f'{self._where()}: missing column(s) {", ".join(map(repr, missing))}; the '
                f'header is {", ".join(header)}. Expected the official CheXpert header '
                '"Path,Sex,Age,Frontal/Lateral,AP/PA,<the 14 observations>".')
        col = {name: i for i, name in enumerate(header)}
        keep = []
        for row, lineno in zip(rows, linenos):
            if _VIEW in col:
                view = row[col[_VIEW]]
                if view not in _VIEWS:
                    self._bad_value(lineno, _VIEW, view, '"Frontal" or "Lateral"')
                if view not in self.views:
                    continue
            keep.append((row, lineno))
        if not keep:
            raise ValueError(f'{self._where()}: no row with a view in {self.views} (of '
                             f'{len(rows)} rows). Check `views` and the CSV.')
        strip = self._resolve_strip([row[col[_PATH]] for row, _ in keep[:self.num_checked_files]])
        folder = osp.abspath(self.data_prefix.get('img_path', '') or '')
        data_list = [self._row_info(row, lineno, col, folder, strip) for row, lineno in keep]
        if self.with_label:
            labels = self._parse_labels(keep, [col[name] for name in classes], classes)
            for info, label in zip(data_list, labels):
                info['gt_label'] = label
        return data_list

    def _read_csv(self) -> Tuple[List[str], List[List[str]], List[int]]:
        """Header, non-blank rows and their line numbers; a ragged row raises."""
        rows, linenos = [], []
        with open(self.ann_file, encoding='utf-8-sig', newline='') as f:
            reader = csv.reader(f)
            header = [name.strip() for name in next(reader, [])]
            if not header:
                raise ValueError(f'{self._where()}: the file is empty; expected the official '
                                 'CheXpert CSV with a header line.')
            for row in reader:
                if not row or not ''.join(row).strip():
                    continue
                if len(row) != len(header):
                    raise ValueError(f'{self._where()}, line {reader.line_num}: expected '
                                     f'{len(header)} fields as in the header, got {len(row)}.')
                rows.append(row)
                linenos.append(reader.line_num)
        return header, rows, linenos

    def _row_info(self, row: List[str], lineno: int, col: Dict[str, int], folder: str,
                  strip: int) -> dict:
        """``img_path`` (in the absolute image ``folder``) and the cheap metadata of a row."""
        info = dict(img_path=osp.join(folder, self._strip(row[col[_PATH]], strip, lineno)))
        if _VIEW in col:
            info['view'] = row[col[_VIEW]]
        if _SEX in col:
            info['sex'] = row[col[_SEX]]
        if _AP_PA in col:
            info['ap_pa'] = row[col[_AP_PA]]
        if _AGE in col:
            age = row[col[_AGE]].strip()
            if age and not age.isdigit():
                self._bad_value(lineno, _AGE, age, 'a whole number or blank')
            info['age'] = int(age) if age else None
        return info

    def _parse_labels(self, keep: List[Tuple[List[str], int]], indices: List[int],
                      classes: List[str]) -> np.ndarray:
        """The (N, 14) float32 labels after the uncertainty policy and the blank value."""
        cells = np.array([[row[k] for k in indices] for row, _ in keep], dtype=str)
        labels = np.full(cells.shape, np.inf, dtype=np.float32)
        for text, value in _CELLS.items():
            labels[cells == text] = value
        for i, j in zip(*np.nonzero(np.isinf(labels))):  # off the fast path, in line order
            row, lineno = keep[i]
            labels[i, j] = self._parse_cell(row[indices[j]], lineno, classes[j])
        for j, name in enumerate(classes):
            policy = self.uncertain_per_class.get(name, self.uncertain)
            if policy != 'ignore':
                column = labels[:, j]
                column[column == -1] = 1.0 if policy == 'ones' else 0.0
        labels[np.isnan(labels)] = self.blank
        return labels

    def _parse_cell(self, cell: str, lineno: int, column: str) -> float:
        """A label cell off the fast path (spaces, other spellings of the numbers)."""
        text = cell.strip()
        if not text:
            return np.nan
        try:
            value = float(text)
        except ValueError:
            value = None
        if value not in (1.0, 0.0, -1.0):
            self._bad_value(lineno, column, cell, '1.0, 0.0, -1.0 (uncertain) or blank')
        return value

    # ------------------------------------------------------------------ paths
    def _resolve_strip(self, paths: List[str]) -> int:
        """``strip_components``, or for ``'auto'`` the first of 0, 1 whose file exists."""
        if self.strip_components != 'auto':
            return self.strip_components
        for path in paths:
            for strip in (0, 1):
                if osp.isfile(self._join_img_path(self._strip(path, strip))):
                    return strip
        if self.check_files == 'none':
            return 0
        folder = osp.abspath(self.data_prefix.get('img_path', '') or '')
        example = paths[0]
        raise FileNotFoundError(
            f'{type(self).__name__}: none of the first {len(paths)} images of `ann_file` '
            f'"{osp.abspath(self.ann_file)}" exists, e.g. "{example}" is neither at '
            f'"{self._join_img_path(example)}" nor at '
            f'"{self._join_img_path(self._strip(example, 1))}". Set `data_root` (now '
            f'"{self.data_root}", image folder "{folder}") to the folder that holds '
            f'"{example.split("/")[0]}/" or to that folder itself.')

    def _strip(self, path: str, strip: int, lineno: Optional[int] = None) -> str:
        """``path`` without its first ``strip`` components ('/'-separated as in the CSV)."""
        text = path.strip()
        if strip == 0 and text:
            return text
        parts = [part for part in text.split('/') if part not in ('', '.')]
        if strip >= len(parts):
            if lineno is None:
                return ''
            self._bad_value(lineno, _PATH, path, 'an image path' if strip == 0 else
                            f'a path of more than {strip} component(s) (strip_components)')
        return '/'.join(parts[strip:])

    # ------------------------------------------------------------------ errors
    def _where(self) -> str:
        return f'{type(self).__name__}: `ann_file` "{osp.abspath(self.ann_file)}"'

    def _bad_value(self, lineno: int, column: str, value: str, expected: str) -> None:
        raise ValueError(f'{self._where()}, line {lineno}, column "{column}": bad value '
                         f'"{value}"; expected {expected}.')
