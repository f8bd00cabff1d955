"""Unlabelled images found in a folder tree (or listed in a file), for pre-training."""
import fnmatch
import os
import os.path as osp
from typing import List, Optional, Sequence, Union

from dira_mm.registry import DATASETS
from .base_dataset import MedicalImageDataset

__all__ = ['MedicalImageFolder']

_DEFAULT_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.dcm')
_DICOM_MAGIC_OFFSET = 128
_DICOM_MAGIC = b'DICM'


def _has_dicom_magic(path: str) -> bool:
    """Whether ``path`` has the DICOM preamble + ``DICM`` magic (reads 132 bytes)."""
    try:
        with open(path, 'rb') as f:
            head = f.read(_DICOM_MAGIC_OFFSET + len(_DICOM_MAGIC))
    except OSError:
        return False
    return head[_DICOM_MAGIC_OFFSET:] == _DICOM_MAGIC


@DATASETS.register_module()
class MedicalImageFolder(MedicalImageDataset):
    """Every image under a folder, recursively, or the images named in a list file.

    Self-supervised pre-training needs no labels, so any collection of 2-D images (PNG,
    JPEG, DICOM) can be used as it lies on disk. Without ``ann_file`` the image folder
    (``data_root`` + ``data_prefix['img_path']``) is scanned recursively, following links to
    folders (each real folder once), for files whose name ends with one of ``extensions``
    (case-insensitive), hidden files and folders (names starting with ``.``) left out; the
    paths are sorted, so the indices, and with them the per-sample seeds, do not depend on
    the file system. With ``ann_file`` the list
    decides instead: one path per line, relative to the image folder, anything after the
    first white-space separated token ignored (so a ChestX-ray14 list works), blank lines
    and lines starting with ``#`` skipped, the order kept.

    Samples have ``img_path`` (absolute) and no ``gt_label``.

    Args:
        data_root (str): The dataset folder. Defaults to ''.
        data_prefix (dict, optional): ``dict(img_path=...)``, the image folder relative to
            ``data_root``. Defaults to ``dict(img_path='')``.
        ann_file (str): Optional list file, relative to ``data_root`` unless absolute;
            '' scans the folder. Defaults to ''.
        extensions (Sequence[str]): File endings to keep when scanning. Defaults to
            ``('.png', '.jpg', '.jpeg', '.dcm')``.
        exclude (str | Sequence[str], optional): ``fnmatch`` patterns matched against the
            path relative to the image folder (``/``-separated; ``*`` also matches ``/``);
            matching files are left out, in both modes. Defaults to None.
        extensionless_dicom (bool): When scanning, also keep files whose name ends with none
            of ``extensions`` but whose bytes 128-131 are the DICOM magic ``DICM`` (files
            named without an extension or by their UID). Reads 132 bytes of each such file.
            Defaults to False.
        **kwargs: Arguments of ``MedicalImageDataset`` (``pipeline``, ``seed``, ``on_error``,
            ``check_files``, ...).
    """

    def __init__(self,
                 data_root: str = '',
                 data_prefix: Optional[dict] = None,
                 ann_file: str = '',
                 extensions: Sequence[str] = _DEFAULT_EXTENSIONS,
                 exclude: Optional[Union[str, Sequence[str]]] = None,
                 extensionless_dicom: bool = False,
                 **kwargs) -> None:
        if isinstance(extensions, str):
            extensions = (extensions, )
        if not extensions or not all(isinstance(e, str) and e.strip('.') for e in extensions):
            raise ValueError(f'`extensions` must be non-empty file endings such as ".png", '
                             f'got {extensions!r}.')
        self.extensions = tuple('.' + e.lower().lstrip('.') for e in extensions)
        self.exclude = (exclude, ) if isinstance(exclude, str) else tuple(exclude or ())
        self.extensionless_dicom = extensionless_dicom
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=data_prefix,
                         **kwargs)

    def load_data_list(self) -> List[dict]:
        """Scan the image folder (or read the list) and return the sorted image paths."""
        names = self._read_list() if self.ann_file else self._scan()
        names = [name for name in names if not self._excluded(name)]
        if not names:
            raise FileNotFoundError(self._nothing_found())
        return [dict(img_path=self._join_img_path(name)) for name in names]

    def _scan(self) -> List[str]:
        """Relative ``/``-separated paths of the images under the image folder, sorted."""
        root = self._folder()
        names, seen = [], set()
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            # links are followed, each real folder once (the first reached, walking sorted)
            real = osp.realpath(dirpath)
            if real in seen:
                dirnames[:] = []
                continue
            seen.add(real)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
            rel_dir = osp.relpath(dirpath, root)
            for filename in filenames:
                if filename.startswith('.'):
                    continue
                if not filename.lower().endswith(self.extensions) and not (
                        self.extensionless_dicom
                        and _has_dicom_magic(osp.join(dirpath, filename))):
                    continue
                rel = filename if rel_dir == '.' else osp.join(rel_dir, filename)
                names.append(rel.replace(os.sep, '/'))
        return sorted(names)

    def _read_list(self) -> List[str]:
        """The first token of each non-blank, non-comment line of ``ann_file``."""
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'{type(self).__name__}: `ann_file` "{osp.abspath(self.ann_file)}" does not '
                'exist. Set `ann_file` to a list of image paths (relative to `data_root` '
                "unless absolute), or to '' to scan the image folder.")
        names = []
        with open(self.ann_file, encoding='utf-8') as f:
            for line in f:
                tokens = line.split()
                if tokens and not tokens[0].startswith('#'):
                    names.append(tokens[0])
        return names

    def _excluded(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.exclude)

    def _folder(self) -> str:
        return osp.abspath(self.data_prefix.get('img_path', '') or '')

    def _nothing_found(self) -> str:
        name = type(self).__name__
        excluded = f' (after excluding {list(self.exclude)})' if self.exclude else ''
        if self.ann_file:
            return (f'{name}: `ann_file` "{osp.abspath(self.ann_file)}" lists no image'
                    f'{excluded}. Write one path per line, relative to the image folder.')
        dicom = ' or DICOM magic' if self.extensionless_dicom else ''
        return (f'{name}: no image with extensions {list(self.extensions)}{dicom} found under '
                f'"{self._folder()}" (searched recursively){excluded}. Check `data_root` and '
                "`data_prefix['img_path']`, or set `extensions`.")
