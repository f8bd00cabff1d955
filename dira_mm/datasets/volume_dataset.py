"""The base class of the 3-D volume datasets: one volume per entry, k cube samples per volume."""
import os.path as osp
from typing import List

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import MMLogger

from .base_dataset import MedicalImageDataset

__all__ = ['VolumeDataset']


class VolumeDataset(MedicalImageDataset):
    """:class:`MedicalImageDataset` whose entries are volumes (files or DICOM series folders).

    Everything of the 2-D base is kept: per-sample generators from ``(seed, epoch, index)``,
    unreadable volumes (:class:`~dira_mm.datasets.readers.ImageReadError` from
    :class:`~dira_mm.datasets.transforms.LoadVolume` or ``RandomCubes``) skipped and counted
    in ``skipped`` exactly as corrupt images, early path checks (a volume may be a folder).

    **Several cubes per volume** (``cubes_per_volume = k``): the dataset has ``k`` samples per
    volume, ``len = k * num_volumes``. Sample ``i`` is volume ``i % num_volumes`` (repeat
    ``i // num_volumes``), so neighbouring indices are different volumes: an unreadable volume
    is skipped to the *next volume*, and a shuffled batch mixes volumes as Models Genesis'
    pooled cubes do. Each sample has its own generator ``(seed, epoch, i)``, so its cube
    position and augmentations are a pure function of ``(seed, epoch, i)`` whatever the number
    of workers; one sample is one cube, so ``batch_size`` counts cubes (Genesis' batch 6) and
    ``default_collate`` is unchanged. The volume is read once per sample; with
    ``LoadVolume(cache_dir=...)`` that read is a memory map touching only the cube's pages,
    which is what makes k cubes per volume cheap (Genesis instead extracts its 32 cubes per
    scan once, offline, and trains on that fixed set; here the positions are redrawn every
    epoch by default, and ``fixed_cubes=True`` restores the fixed set: each sample then gets
    ``results['cube_rng']``, seeded by ``(seed, index)`` only, which ``RandomCubes`` draws the
    positions from, while the distortions still change with the epoch, as in Genesis).

    Samples carry ``img_path``, ``sample_idx`` (= ``i``), ``volume_idx`` and ``cube_index``.

    Args:
        cubes_per_volume (int): Samples (cubes) per volume and epoch. Defaults to 1.
        fixed_cubes (bool): The same cube positions every epoch (Models Genesis' offline
            cubes; needs ``seed``). Defaults to False (new positions every epoch).
        **kwargs: Arguments of :class:`MedicalImageDataset`.
    """

    #: The stream of the epoch-independent cube generators (apart from the per-sample ones).
    CUBE_STREAM = 0x6375626573

    def __init__(self, cubes_per_volume: int = 1, fixed_cubes: bool = False,
                 **kwargs) -> None:
        if isinstance(cubes_per_volume, bool) or int(cubes_per_volume) != cubes_per_volume \
                or int(cubes_per_volume) < 1:
            raise ValueError(f'`cubes_per_volume` must be a positive int, got '
                             f'{cubes_per_volume!r}.')
        self.cubes_per_volume = int(cubes_per_volume)
        self.fixed_cubes = bool(fixed_cubes)
        super().__init__(**kwargs)
        if self.fixed_cubes and self.seed is None:
            raise ValueError(f'{type(self).__name__}: fixed_cubes=True needs a `seed` (the '
                             'cube positions are drawn from (seed, index)).')

    @property
    def num_volumes(self) -> int:
        """The number of volumes (entries of the data list)."""
        return BaseDataset.__len__(self)

    def __len__(self) -> int:
        return self.num_volumes * self.cubes_per_volume

    def get_data_info(self, idx: int) -> dict:
        """The entry of sample ``idx``: volume ``idx % num_volumes``."""
        num = self.num_volumes
        idx = int(idx)
        if idx < 0:
            idx += len(self)
        info = super().get_data_info(idx % num)
        info.update(sample_idx=idx, volume_idx=idx % num, cube_index=idx // num)
        if self.fixed_cubes:
            info['cube_rng'] = np.random.default_rng([self.seed, self.CUBE_STREAM, idx])
        return info

    def volume_paths(self) -> List[str]:
        """The volumes' paths, in order."""
        return [super(VolumeDataset, self).get_data_info(v)['img_path']
                for v in range(self.num_volumes)]

    def _check_image_files(self) -> None:
        """The first ``num_checked_files`` volumes (or all) must exist (file or folder)."""
        num = self.num_volumes
        if self.check_files == 'sample':
            num = min(num, self.num_checked_files)
        paths = [super(VolumeDataset, self).get_data_info(v)['img_path'] for v in range(num)]
        missing = [p for p in paths if not osp.exists(p)]
        if not missing:
            return
        name = type(self).__name__
        examples = ', '.join(f'"{p}"' for p in missing[:3])
        if len(missing) == len(paths):
            raise FileNotFoundError(
                f'{name}: none of the {len(paths)} volumes checked exists, e.g. {examples}. '
                f'`data_root` ("{self.data_root}") or `data_prefix` is probably wrong.')
        message = (f'{name}: {len(missing)} of the {len(paths)} volumes checked do not exist, '
                   f'e.g. {examples}.')
        if self.on_error == 'raise':
            raise FileNotFoundError(message + ' Fix the list, or set on_error="skip".')
        MMLogger.get_current_instance().warning(message + ' They will be skipped.')

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_volumes='
                f'{self.num_volumes if self._fully_initialized else "?"}, cubes_per_volume='
                f'{self.cubes_per_volume}, data_root={self.data_root!r}, seed={self.seed}, '
                f'on_error={self.on_error!r})')
