"""LUNA16 CT scans (``subset0`` .. ``subset9`` of MetaImage files), by fold."""
import glob
import os.path as osp
from typing import List, Sequence

from dira_mm.registry import DATASETS
from .volume_dataset import VolumeDataset

__all__ = ['LUNA16Dataset', 'LUNA16_GENESIS_FOLDS']

#: Models Genesis' split of the ten LUNA16 subsets (``config.py``): train / val / test.
LUNA16_GENESIS_FOLDS = dict(train=(0, 1, 2, 3, 4), val=(5, 6), test=(7, 8, 9))


@DATASETS.register_module()
class LUNA16Dataset(VolumeDataset):
    """The LUNA16 scans of the chosen subsets, one volume per ``.mhd``.

    Layout (as the LUNA16 archives unpack): ``data_root/subset<i>/<seriesuid>.mhd`` (+ its
    ``.raw``). The subsets are a config value, so the Genesis fold split (train 0-4, val 5-6,
    test 7-9; :data:`LUNA16_GENESIS_FOLDS`) is three datasets with different ``subsets``.
    Scans are sorted by subset, then series UID (Genesis globs without sorting).

    Samples: ``img_path``, ``seriesuid``, ``subset``, and what :class:`VolumeDataset` adds.

    Args:
        data_root (str): The folder holding ``subset0`` .. ``subset9``.
        subsets (Sequence[int]): The subsets to use, each in 0..9. Defaults to (0, 1, 2, 3, 4).
        **kwargs: Arguments of :class:`VolumeDataset` (``cubes_per_volume``, ``pipeline``,
            ``seed``, ``on_error``, ...).
    """

    def __init__(self, data_root: str = '', subsets: Sequence[int] = (0, 1, 2, 3, 4),
                 **kwargs) -> None:
        if isinstance(subsets, int):
            subsets = (subsets, )
        subsets = tuple(subsets)
        if not subsets or not all(isinstance(s, int) and not isinstance(s, bool) and
                                  0 <= s <= 9 for s in subsets) or len(set(subsets)) != \
                len(subsets):
            raise ValueError(f'LUNA16Dataset: `subsets` must be distinct ints in 0..9 (LUNA16 '
                             f'has subset0..subset9), got {subsets!r}.')
        self.subsets = subsets
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        """The ``.mhd`` scans of ``subsets``, sorted."""
        out = []
        for s in self.subsets:
            folder = osp.join(self.data_root, f'subset{s}')
            if not osp.isdir(folder):
                raise FileNotFoundError(
                    f'LUNA16Dataset: `subsets` includes {s} but "{osp.abspath(folder)}" is not '
                    f'a folder. `data_root` must hold subset0 .. subset9 (the unpacked LUNA16 '
                    f'archives), or remove {s} from `subsets`.')
            files = sorted(glob.glob(osp.join(glob.escape(folder), '*.mhd')))
            if not files:
                raise FileNotFoundError(
                    f'LUNA16Dataset: "{osp.abspath(folder)}" holds no .mhd scan (subset {s}).')
            for f in files:
                out.append(dict(img_path=osp.abspath(f), subset=s,
                                seriesuid=osp.basename(f)[:-len('.mhd')]))
        return out
