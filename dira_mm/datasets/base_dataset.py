"""The base class of the 2-D datasets of dira_mm (ChestX-ray14, phantoms, later CheXpert...)."""
import os.path as osp
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import MMLogger

from dira_mm.registry import TRANSFORMS
from .readers import ImageReadError

__all__ = ['MedicalImageDataset']

_ON_ERROR = ('skip', 'raise')
_CHECK_FILES = ('sample', 'all', 'none')


class MedicalImageDataset(BaseDataset):
    """mmengine ``BaseDataset`` with the data policies shared by every 2-D dataset here.

    What it adds (see ``docs/architecture.md``):

    - **Per-sample seeds.** With ``seed`` set, ``results['rng']`` is
      ``np.random.default_rng([seed, epoch, idx])`` before the pipeline runs, so the
      augmentations are a pure function of ``(seed, epoch, idx)`` whatever the number of
      workers. ``idx`` is the index the sampler asked for, also when an unreadable file made
      the dataset return the next one. ``set_epoch`` is called by ``DatasetEpochHook``.
    - **Unreadable files.** Only :class:`~dira_mm.datasets.readers.ImageReadError` is handled
      (any other exception is a bug and propagates). With ``on_error='skip'`` a warning names
      the file and the reason (once per file and process) and the next samples ``idx + 1``,
      ``idx + 2``, ... (wrapping) are tried; ``results['skipped']`` says how many were skipped
      (0 normally) and travels to the data sample. With ``on_error='raise'`` the error
      propagates. mmengine's random re-fetch (``max_refetch``) is not used.
    - **Early path checks.** At ``full_init`` (construction, unless ``lazy_init``) a missing
      ``data_root``, ``ann_file`` or image folder (``data_prefix['img_path']``) raises one
      error that names the config key and the path, before any training starts; then the
      first images of the list (``check_files='sample'``) or all of them (``'all'``) are
      checked to exist.

    Subclasses implement ``load_data_list`` (returning dicts with an absolute ``img_path``
    and, with labels, a float32 ``gt_label``). Datasets without files (e.g. the phantoms)
    override :meth:`load_sample` to put ``img`` into the results.

    Args:
        ann_file (str): List/annotation file, relative to ``data_root`` unless absolute.
        metainfo (dict, optional): Extra meta information (e.g. ``classes``).
        data_root (str): Root folder of ``ann_file`` and ``data_prefix``. Defaults to ''.
        data_prefix (dict): ``img_path``: the image folder, relative to ``data_root`` unless
            absolute. Defaults to ``dict(img_path='')``.
        pipeline (Sequence[dict | Callable]): The data transforms; dicts are built from
            ``dira_mm.registry.TRANSFORMS`` (whatever the default scope).
        seed (int, optional): Seed of the per-sample generators; None leaves
            ``results['rng']`` unset (transforms then draw from numpy's global state).
            Defaults to None.
        on_error (str): ``'skip'`` or ``'raise'`` for unreadable images. Defaults to 'skip'.
        max_consecutive_skips (int): Give up (``RuntimeError``) after this many unreadable
            files in a row for one sample. Defaults to 50.
        check_files (str): ``'sample'`` (the first ``num_checked_files`` images), ``'all'`` or
            ``'none'`` (no check at all, not even of the folders: for non-local storage).
            Defaults to 'sample'.
        **kwargs: Other arguments of ``mmengine.dataset.BaseDataset`` (``indices``,
            ``serialize_data``, ``lazy_init``, ``test_mode``, ...).
    """

    #: Whether the dataset needs an ``ann_file`` (a list file) to exist.
    requires_ann_file: bool = False
    #: How many images ``check_files='sample'`` looks for.
    num_checked_files: int = 10

    def __init__(self,
                 ann_file: str = '',
                 metainfo: Optional[dict] = None,
                 data_root: Optional[str] = '',
                 data_prefix: Optional[dict] = None,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 seed: Optional[int] = None,
                 on_error: str = 'skip',
                 max_consecutive_skips: int = 50,
                 check_files: str = 'sample',
                 **kwargs) -> None:
        if on_error not in _ON_ERROR:
            raise ValueError(f'`on_error` must be one of {_ON_ERROR}, got {on_error!r}.')
        if check_files not in _CHECK_FILES:
            raise ValueError(
                f'`check_files` must be one of {_CHECK_FILES}, got {check_files!r}.')
        valid_seed = isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
        if seed is not None and not (valid_seed and seed >= 0):
            raise ValueError(f'`seed` must be a non-negative int or None, got {seed!r}.')
        if int(max_consecutive_skips) < 0:
            raise ValueError('`max_consecutive_skips` must be >= 0, '
                             f'got {max_consecutive_skips!r}.')
        self.seed = None if seed is None else int(seed)
        self.epoch = 0
        self.on_error = on_error
        self.max_consecutive_skips = int(max_consecutive_skips)
        self.check_files = check_files
        self._reported_paths: set = set()
        super().__init__(
            ann_file=ann_file or '',
            metainfo=metainfo,
            data_root=data_root or '',
            data_prefix=dict(img_path='') if data_prefix is None else dict(data_prefix),
            pipeline=[TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline],
            **kwargs)

    # ------------------------------------------------------------------ randomness
    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that enters the per-sample seeds (called by ``DatasetEpochHook``)."""
        self.epoch = int(epoch)

    def sample_rng(self, idx: int, epoch: Optional[int] = None) -> np.random.Generator:
        """The generator of sample ``idx`` at ``epoch`` (default: the current epoch).

        Raises:
            RuntimeError: The dataset has no ``seed``.
        """
        if self.seed is None:
            raise RuntimeError(f'{type(self).__name__} has no `seed`: per-sample generators '
                               'exist only when `seed` is set.')
        epoch = self.epoch if epoch is None else int(epoch)
        return np.random.default_rng([self.seed, epoch, int(idx)])

    # ------------------------------------------------------------------ checks
    def full_init(self) -> None:
        """Check the paths, load the data list (mmengine), then check the image files."""
        if self._fully_initialized:
            return
        if self.check_files != 'none':
            self._check_paths()
        super().full_init()
        if self.check_files != 'none':
            self._check_image_files()

    def _check_paths(self) -> None:
        """Raise one error naming the config key of the first missing path."""
        name = type(self).__name__
        if self.data_root and not osp.isdir(self.data_root):
            raise FileNotFoundError(
                f'{name}: `data_root` "{self.data_root}" (absolute: '
                f'"{osp.abspath(self.data_root)}") is not an existing folder. Set `data_root` '
                'to the folder that holds the dataset (for the demo data run '
                '`python tools/misc/make_demo_data.py --out data/demo`).')
        if self.requires_ann_file:
            if not self.ann_file:
                raise ValueError(f'{name}: `ann_file` (the list file) is required but not set.')
            if not osp.isfile(self.ann_file):
                where = (f' (joined to `data_root` "{self.data_root}")'
                         if self.data_root else '')
                raise FileNotFoundError(
                    f'{name}: `ann_file` "{self.ann_file}"{where} does not exist. Set '
                    '`ann_file` to the list file, relative to `data_root` or absolute.')
        img_dir = self.data_prefix.get('img_path')
        if img_dir and not osp.isdir(img_dir):
            raise FileNotFoundError(
                f"{name}: `data_prefix['img_path']` \"{img_dir}\" is not an existing folder. "
                "Set `data_prefix=dict(img_path=...)` to the image folder, relative to "
                '`data_root` or absolute.')

    def _check_image_files(self) -> None:
        """Check that the first (or all) images of the list exist."""
        num = len(self)
        if num == 0:
            return
        if self.check_files == 'sample':
            num = min(num, self.num_checked_files)
        checked, missing = 0, []
        for idx in range(num):
            path = self.get_data_info(idx).get('img_path')
            if not path:
                continue
            checked += 1
            if not osp.isfile(path):
                missing.append(path)
        if not missing:
            return
        name = type(self).__name__
        examples = ', '.join(f'"{p}"' for p in missing[:3])
        if len(missing) == checked:
            raise FileNotFoundError(
                f'{name}: none of the {checked} images checked exists, e.g. {examples}. '
                f'`data_root` ("{self.data_root}") or `data_prefix` ("'
                f"{self.data_prefix.get('img_path', '')}\") is probably wrong: the names in "
                f'`ann_file` ("{self.ann_file}") are taken relative to '
                "`data_prefix['img_path']`.")
        message = (f'{name}: {len(missing)} of the {checked} images checked do not exist, '
                   f'e.g. {examples}.')
        if self.on_error == 'raise':
            raise FileNotFoundError(
                message + ' Fix the list file, or set on_error="skip" to skip them.')
        MMLogger.get_current_instance().warning(
            message + ' They will be skipped (on_error="skip").')

    # ------------------------------------------------------------------ loading
    def load_sample(self, results: dict) -> dict:
        """Hook before the pipeline; datasets without files put ``img`` here."""
        return results

    def __getitem__(self, idx: int) -> Any:
        """The ``idx``-th sample after the pipeline (see :meth:`prepare_data`)."""
        if not self._fully_initialized:
            MMLogger.get_current_instance().warning(
                'Call `full_init()` before using the dataset in a DataLoader, so that the '
                'workers share the loaded list instead of each parsing it again.')
            self.full_init()
        return self.prepare_data(idx)

    def prepare_data(self, idx: int) -> Any:
        """Run the pipeline on sample ``idx``, skipping unreadable files per ``on_error``."""
        num = len(self)
        idx = int(idx)
        if idx < 0:
            idx += num
        if not 0 <= idx < num:
            raise IndexError(f'{type(self).__name__}: index {idx} out of range [0, {num}).')
        current, skipped = idx, 0
        while True:
            results = self.get_data_info(current)
            results['skipped'] = skipped
            if self.seed is not None:
                results['rng'] = self.sample_rng(idx)
            try:
                data = self.pipeline(self.load_sample(results))
            except ImageReadError as err:
                if self.on_error == 'raise':
                    err.add_note(f'{type(self).__name__}: while loading sample {current} '
                                 '(on_error="raise"; on_error="skip" skips such files).')
                    raise
                skipped += 1
                self._report_skip(err, current, skipped, idx)
                current = (current + 1) % num
                continue
            if data is None:
                raise RuntimeError(
                    f'{type(self).__name__}: the pipeline returned None for sample {current} '
                    f'({results.get("img_path", "no path")}). dira_mm datasets do not drop '
                    'samples: a transform must return the results or raise.')
            return data

    def _report_skip(self, err: ImageReadError, current: int, skipped: int, idx: int) -> None:
        """Warn once per file; give up after ``max_consecutive_skips`` files in a row."""
        if skipped > self.max_consecutive_skips or skipped >= len(self):
            raise RuntimeError(
                f'{type(self).__name__}: {skipped} images in a row could not be read, from '
                f'sample {idx} on (the last: {err}). The data is probably not where '
                '`data_root`/`data_prefix` say, or is mostly corrupt; raise '
                '`max_consecutive_skips` if this many bad files is expected.') from err
        path = getattr(err, 'path', None) or str(current)
        if path in self._reported_paths:
            return
        self._reported_paths.add(path)
        MMLogger.get_current_instance().warning(
            f'{type(self).__name__}: skipping sample {current} (on_error="skip"): {err} '
            f'Trying sample {(current + 1) % len(self)} instead.')

    def _join_img_path(self, name: str) -> str:
        """Absolute path of an image named in the list (relative to the image folder)."""
        return osp.abspath(osp.join(self.data_prefix.get('img_path', '') or '', name))

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_samples='
                f'{len(self) if self._fully_initialized else "?"}, data_root='
                f'{self.data_root!r}, ann_file={self.ann_file!r}, seed={self.seed}, '
                f'on_error={self.on_error!r})')
