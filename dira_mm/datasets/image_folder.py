"""Unlabelled images found in a folder tree (or listed in a file), for pre-training."""
import fnmatch
import os
import os.path as osp
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

from dira_mm.registry import DATASETS
from .base_dataset import MedicalImageDataset
from .readers import detect_format

__all__ = ['MedicalImageFolder', 'iter_files', 'scan_files']

_DEFAULT_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.dcm')
# bytes 128-131 of a DICOM file hold the magic ``DICM`` (after the 128-byte preamble)
_DICOM_HEAD_SIZE = 132


def _has_dicom_magic(path: str) -> bool:
    """Whether ``path`` has the DICOM preamble + ``DICM`` magic (reads 132 bytes)."""
    try:
        with open(path, 'rb') as f:
            head = f.read(_DICOM_HEAD_SIZE)
    except OSError:
        return False
    # only the magic decides: the preamble is blanked so that a preamble that happens to
    # start like a PNG/JPEG signature does not hide the magic
    return detect_format(bytes(128) + head[128:]) == 'dicom'


KeepFiles = Union[str, Sequence[str], Callable[[str], bool]]


def _file_test(keep: KeepFiles) -> Callable[[str, str], bool]:
    """``(dirpath, filename) -> bool`` from file endings or a predicate on the path."""
    if callable(keep):
        return lambda dirpath, filename: bool(keep(osp.join(dirpath, filename)))
    endings = tuple(e.lower() for e in ((keep, ) if isinstance(keep, str) else keep))
    return lambda dirpath, filename: filename.lower().endswith(endings)


def _walk(root: str, keep: KeepFiles,
          skip_hidden: bool = True) -> Iterator[Tuple[str, List[str]]]:
    """``(dirpath, kept file names)`` per folder under ``root``, folders and files sorted,
    links to folders followed, each real folder once (the first reached): symlink loops
    end."""
    test = _file_test(keep)
    seen = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = osp.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not (skip_hidden and d.startswith('.')))
        yield dirpath, [f for f in sorted(filenames)
                        if not (skip_hidden and f.startswith('.')) and test(dirpath, f)]


def iter_files(root: str, keep: KeepFiles, skip_hidden: bool = True) -> Iterator[str]:
    """Paths (``root`` joined) of the files under ``root`` that ``keep`` accepts, in walk
    order: a folder's files (sorted) before its sub-folders (sorted).

    Args:
        root: the folder, searched recursively; links to folders are followed, each real
            folder once, so symlink loops end.
        keep: file endings (case-insensitive; one str or several), or a predicate on the
            file's path.
        skip_hidden: leave out files and folders whose names start with ``.``.
    """
    for dirpath, filenames in _walk(root, keep, skip_hidden):
        for filename in filenames:
            yield osp.join(dirpath, filename)


def read_list_file(ann_file: str, owner: str, hint: str) -> List[str]:
    """The first token of each non-blank line of a list file that is not a ``#`` comment.

    Raises ``FileNotFoundError`` naming ``owner``'s ``ann_file`` and ``hint`` (what to set)
    when the file does not exist.
    """
    if not osp.isfile(ann_file):
        raise FileNotFoundError(
            f'{owner}: `ann_file` "{osp.abspath(ann_file)}" does not exist. {hint}')
    names = []
    with open(ann_file, encoding='utf-8') as f:
        for line in f:
            tokens = line.split()
            if tokens and not tokens[0].startswith('#'):
                names.append(tokens[0])
    return names


def scan_files(root: str, keep: KeepFiles, skip_hidden: bool = True) -> List[str]:
    """The files of :func:`iter_files`, as sorted ``/``-separated paths relative to
    ``root``."""
    names = []
    for dirpath, filenames in _walk(root, keep, skip_hidden):
        rel_dir = osp.relpath(dirpath, root)
        for filename in filenames:
            rel = filename if rel_dir == '.' else osp.join(rel_dir, filename)
            names.append(rel.replace(os.sep, '/'))
    return sorted(names)


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
        return scan_files(self._folder(), self._keep)

    def _keep(self, path: str) -> bool:
        """Whether the scan keeps ``path``: by its ending, or by the DICOM magic."""
        return osp.basename(path).lower().endswith(self.extensions) or (
            self.extensionless_dicom and _has_dicom_magic(path))

    def _read_list(self) -> List[str]:
        """The first token of each non-blank, non-comment line of ``ann_file``."""
        return read_list_file(
            self.ann_file, type(self).__name__,
            'Set `ann_file` to a list of image paths (relative to `data_root` unless '
            "absolute), or to '' to scan the image folder.")

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
