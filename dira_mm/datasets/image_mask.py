"""Images with binary masks in folders (Montgomery, JSRT, Shenzhen style) or in a list."""
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

from dira_mm.registry import DATASETS
from .image_folder import MedicalImageFolder

__all__ = ['ImageMaskDataset']


@DATASETS.register_module()
class ImageMaskDataset(MedicalImageFolder):
    """Image files paired with mask files, for segmentation fine-tuning.

    **Folders.** Without ``ann_file`` the image folder (``data_prefix['img_path']``) is
    scanned as :class:`MedicalImageFolder` does (recursively, ``extensions``, ``exclude``,
    sorted). Each image ``NAME.EXT`` (path relative to the image folder) finds its mask at
    the same relative path in the mask folder ``data_prefix['seg_map_path']``, or at
    ``NAME + seg_map_suffix`` when ``seg_map_suffix`` is set (e.g. ``'_mask.png'``). Several
    mask folders (a list) give several masks per image, merged by union when loaded: the
    Montgomery set keeps the left and right lungs apart, ``seg_map_path=['ManualMask/leftMask',
    'ManualMask/rightMask']``.

    **List file.** With ``ann_file``, each non-blank line not starting with ``#`` is
    ``image [mask ...]``: the image relative to the image folder, then its masks relative to
    the mask folder (to ``data_root`` when there is none). A line with the image alone finds
    its masks by name as above. Several mask folders and explicit masks do not mix.

    Every image must have all its masks: a missing one raises at construction, naming how
    many are missing and examples (unless ``check_files='none'``), so a wrong folder or
    suffix never pairs images with nothing. Samples carry ``img_path`` and ``seg_map_path``
    (a list of absolute paths); ``LoadSegMask`` reads them.

    Args:
        data_root: the dataset folder.
        data_prefix: ``img_path`` (image folder) and ``seg_map_path`` (mask folder, or a list
            of them), relative to ``data_root`` unless absolute.
        ann_file: optional list file (see above), relative to ``data_root`` unless absolute.
        seg_map_suffix: mask name = image name without its extension + this suffix; None:
            the same file name as the image.
        **kwargs: :class:`MedicalImageFolder` arguments (``extensions``, ``exclude``,
            ``pipeline``, ``seed``, ``on_error``, ``check_files``, ...).
    """

    def __init__(self,
                 data_root: str = '',
                 data_prefix: Optional[dict] = None,
                 ann_file: str = '',
                 seg_map_suffix: Optional[str] = None,
                 **kwargs) -> None:
        prefix = dict(data_prefix or {})
        seg_dirs: Union[str, Sequence[str], None] = prefix.pop('seg_map_path', None)
        if seg_dirs is None:
            seg_dirs = []
        elif isinstance(seg_dirs, str):
            seg_dirs = [seg_dirs]
        self.seg_map_dirs: List[str] = [
            d if osp.isabs(d) or not data_root else osp.join(data_root, d)
            for d in seg_dirs]
        self.seg_map_suffix = seg_map_suffix
        prefix.setdefault('img_path', '')
        super().__init__(data_root=data_root, data_prefix=prefix, ann_file=ann_file, **kwargs)

    # ------------------------------------------------------------------ listing
    def load_data_list(self) -> List[dict]:
        """Pair every image with its masks; raise if any mask is missing."""
        pairs = self._read_pairs() if self.ann_file else [(n, []) for n in self._scan()]
        pairs = [pair for pair in pairs if not self._excluded(pair[0])]
        if not pairs:
            raise FileNotFoundError(self._nothing_found())
        data_list = []
        for name, masks in pairs:
            if masks:
                root = self.seg_map_dirs[0] if self.seg_map_dirs else self.data_root
                paths = [osp.abspath(osp.join(root or '', m)) for m in masks]
            else:
                paths = [osp.abspath(osp.join(d, self._mask_name(name)))
                         for d in self.seg_map_dirs]
            data_list.append(dict(img_path=self._join_img_path(name), seg_map_path=paths))
        if self.check_files != 'none':
            self._check_masks(data_list)
        return data_list

    def _mask_name(self, name: str) -> str:
        if self.seg_map_suffix is None:
            return name
        return osp.splitext(name)[0] + self.seg_map_suffix

    def _read_pairs(self) -> List[Tuple[str, List[str]]]:
        """``(image, [masks])`` per line of ``ann_file``."""
        pairs = []
        with open(self.ann_file, encoding='utf-8') as f:
            for lineno, line in enumerate(f, 1):
                tokens = line.split()
                if not tokens or tokens[0].startswith('#'):
                    continue
                if len(tokens) > 1 and len(self.seg_map_dirs) > 1:
                    raise ValueError(
                        f'{type(self).__name__}: line {lineno} of `ann_file` '
                        f'"{self.ann_file}" names masks, but `data_prefix[\'seg_map_path\']` '
                        'lists several mask folders; use one folder (or none) with explicit '
                        'masks, or list the images alone.')
                if len(tokens) == 1 and not self.seg_map_dirs:
                    raise ValueError(
                        f'{type(self).__name__}: line {lineno} of `ann_file` '
                        f'"{self.ann_file}" names no mask and `data_prefix[\'seg_map_path\']` '
                        'is not set, so its mask cannot be found.')
                pairs.append((tokens[0], tokens[1:]))
        return pairs

    # ------------------------------------------------------------------ checks
    def _check_paths(self) -> None:
        """Also check the list file and that every mask folder exists (naming the keys)."""
        super()._check_paths()
        if self.ann_file and not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'{type(self).__name__}: `ann_file` "{osp.abspath(self.ann_file)}" does not '
                'exist. Set it to a list of "image [mask ...]" lines, or to \'\' to pair the '
                'image and mask folders by file name.')
        if not self.seg_map_dirs and not self.ann_file:
            raise ValueError(f"{type(self).__name__}: `data_prefix['seg_map_path']` (the mask "
                             'folder, or a list of them) is required without `ann_file`.')
        for folder in self.seg_map_dirs:
            if not osp.isdir(folder):
                raise FileNotFoundError(
                    f"{type(self).__name__}: `data_prefix['seg_map_path']` folder \"{folder}\" "
                    'does not exist; it is taken relative to `data_root` unless absolute.')

    def _check_masks(self, data_list: List[dict]) -> None:
        missing = [(info['img_path'], path) for info in data_list
                   for path in info['seg_map_path'] if not osp.isfile(path)]
        if not missing:
            return
        examples = '; '.join(f'"{m}" (for "{osp.basename(i)}")' for i, m in missing[:3])
        raise FileNotFoundError(
            f'{type(self).__name__}: {len(missing)} mask file(s) missing, e.g. {examples}. '
            "Check `data_prefix['seg_map_path']`, `seg_map_suffix` "
            f'({self.seg_map_suffix!r}) and the names in `ann_file`; images and masks are '
            'paired by their path relative to their folders.')
