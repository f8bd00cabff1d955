"""Unlabelled 3-D volumes found in a folder tree (or listed in a file), for pre-training."""
import fnmatch
import os
import os.path as osp
from typing import List, Optional, Sequence, Union

from dira_mm.registry import DATASETS
from .image_folder import _has_dicom_magic, _walk, read_list_file
from .volume_dataset import VolumeDataset

__all__ = ['VolumeFolderDataset']

_DEFAULT_EXTENSIONS = ('.nii', '.nii.gz', '.mhd', '.mha')


@DATASETS.register_module()
class VolumeFolderDataset(VolumeDataset):
    """Every volume under a folder, recursively, or the volumes named in a list file.

    A volume is a file whose name ends with one of ``extensions`` (NIfTI, MetaImage headers;
    the ``.raw`` data files of ``.mhd`` headers are not volumes) or, with ``dicom_series=True``,
    a **folder holding a DICOM series**: a folder with at least one ``.dcm`` file (or, with
    ``extensionless_dicom=True``, a file with the DICOM magic) is one volume, read by
    :func:`~dira_mm.datasets.volume_readers.read_dicom_series` (its sub-folders are scanned
    on their own). Links to folders are followed, each real folder once; hidden files and
    folders are left out; the relative paths are sorted, so indices (and seeds) do not depend
    on the file system. With ``ann_file`` the list decides: one path per line (a file or a
    series folder) relative to the image folder, the first token of a line, ``#`` lines and
    blank lines skipped, the order kept.

    Samples: ``img_path`` (absolute), and what :class:`VolumeDataset` adds
    (``cubes_per_volume``).

    Args:
        data_root (str): The dataset folder. Defaults to ''.
        data_prefix (dict, optional): ``dict(img_path=...)``, the volume folder relative to
            ``data_root``. Defaults to ``dict(img_path='')``.
        ann_file (str): Optional list file; '' scans the folder. Defaults to ''.
        extensions (Sequence[str]): Volume file endings. Defaults to
            ``('.nii', '.nii.gz', '.mhd', '.mha')``.
        dicom_series (bool): Also take folders of DICOM files as volumes. Defaults to True.
        extensionless_dicom (bool): Recognise DICOM files without ``.dcm`` by their magic
            (reads 132 bytes of each such file). Defaults to False.
        exclude (str | Sequence[str], optional): ``fnmatch`` patterns on the relative path;
            matches are left out. Defaults to None.
        **kwargs: Arguments of :class:`VolumeDataset` (``cubes_per_volume``, ``pipeline``,
            ``seed``, ``on_error``, ...).
    """

    def __init__(self,
                 data_root: str = '',
                 data_prefix: Optional[dict] = None,
                 ann_file: str = '',
                 extensions: Sequence[str] = _DEFAULT_EXTENSIONS,
                 dicom_series: bool = True,
                 extensionless_dicom: bool = False,
                 exclude: Optional[Union[str, Sequence[str]]] = None,
                 **kwargs) -> None:
        if isinstance(extensions, str):
            extensions = (extensions, )
        if not all(isinstance(e, str) and e.strip('.') for e in extensions) or \
                not (extensions or dicom_series):
            raise ValueError(f'`extensions` must be file endings such as ".nii.gz" (or empty '
                             f'with dicom_series=True), got {extensions!r}.')
        self.extensions = tuple('.' + e.lower().lstrip('.') for e in extensions)
        self.dicom_series = bool(dicom_series)
        self.extensionless_dicom = bool(extensionless_dicom)
        self.exclude = (exclude, ) if isinstance(exclude, str) else tuple(exclude or ())
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=data_prefix,
                         **kwargs)

    def _folder(self) -> str:
        return osp.abspath(self.data_prefix.get('img_path', '') or '')

    def _is_dicom(self, path: str) -> bool:
        name = osp.basename(path).lower()
        return name.endswith('.dcm') or (self.extensionless_dicom and
                                         not name.endswith(self.extensions) and
                                         _has_dicom_magic(path))

    def _scan(self) -> List[str]:
        root = self._folder()
        names = []
        for dirpath, files in _walk(root, lambda p: True):
            rel_dir = osp.relpath(dirpath, root)
            for f in files:
                if f.lower().endswith(self.extensions):
                    names.append(f if rel_dir == '.' else osp.join(rel_dir, f))
            if self.dicom_series and any(self._is_dicom(osp.join(dirpath, f)) for f in files):
                names.append(rel_dir)
        return sorted(n.replace(os.sep, '/') for n in names)

    def _read_list(self) -> List[str]:
        return read_list_file(
            self.ann_file, type(self).__name__,
            'Set `ann_file` to a list of volume paths (files or DICOM series folders, '
            "relative to the volume folder), or to '' to scan the folder.")

    def load_data_list(self) -> List[dict]:
        """Scan the volume folder (or read the list) and return the volumes' paths."""
        names = self._read_list() if self.ann_file else self._scan()
        names = [n for n in names
                 if not any(fnmatch.fnmatchcase(n, p) for p in self.exclude)]
        if not names:
            where = (f'`ann_file` "{osp.abspath(self.ann_file)}" lists no volume'
                     if self.ann_file else
                     f'no volume ({list(self.extensions)} files'
                     f'{" or DICOM series folders" if self.dicom_series else ""}) found under '
                     f'"{self._folder()}" (searched recursively)')
            raise FileNotFoundError(
                f'{type(self).__name__}: {where}'
                f'{f" after excluding {list(self.exclude)}" if self.exclude else ""}. Check '
                "`data_root` and `data_prefix['img_path']`, or set `extensions`.")
        return [dict(img_path=osp.normpath(self._join_img_path(n))) for n in names]
