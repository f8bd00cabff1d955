"""A fixed random fraction of a labelled dataset: the low-label regimes of the benchmark."""
import copy
import math
import random
from typing import Any, List, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from dira_mm.registry import DATASETS

__all__ = ['LabelFractionDataset', 'select_fraction']


def select_fraction(num_samples: int, fraction: float, seed: int = 99) -> List[int]:
    """Indices of a ``fraction`` of ``num_samples`` samples, chosen by ``seed``.

    The indices are shuffled with ``random.Random(seed)`` (the benchmark's subset draw
    uses ``random.Random(99)``) and the first ``floor(num_samples * fraction)`` (at least
    one) are kept, in ascending order. Same arguments, same subset; and since every
    fraction is a prefix of the same permutation, the subsets are nested
    (1 % of the data is inside the 25 %, which is inside the 50 %, ...).
    """
    if num_samples < 1:
        raise ValueError('select_fraction: the dataset is empty.')
    order = list(range(num_samples))
    random.Random(seed).shuffle(order)
    keep = max(1, int(math.floor(num_samples * fraction + 1e-9)))
    return sorted(order[:keep])


@DATASETS.register_module()
class LabelFractionDataset:
    """Keep a deterministic ``fraction`` of ``dataset`` (e.g. 0.01, 0.25, 0.5, 1.0).

    The label-efficiency experiments of DiRA fine-tune on 1 %, 25 % and 50 % of the
    training labels. The subset depends on ``(len(dataset), fraction, seed)`` only (see
    :func:`select_fraction`): every run, trial and process sees the same images, and the
    smaller fractions are subsets of the larger ones. ``fraction=1.0`` keeps everything
    in the original order. Per-sample augmentation seeds stay those of the wrapped
    dataset (``DatasetEpochHook`` finds it through ``.dataset``).

    Config: ``train_dataloader.dataset = dict(type='LabelFractionDataset', fraction=0.25,
    seed=99, dataset=dict(type='ChestXray14Dataset', ...))``; the benchmark configs wrap
    their training set with ``fraction=1.0``, so ``--cfg-options
    train_dataloader.dataset.fraction=0.01`` is all a 1 % run needs.

    Args:
        dataset (dict | BaseDataset): The dataset, or its config.
        fraction (float): Fraction of the samples to keep, in ``(0, 1]``.
        seed (int): Seed of the subset draw (99 as the benchmark).
        lazy_init (bool): Defer loading the wrapped dataset to :meth:`full_init`.
    """

    def __init__(self, dataset: Union[dict, BaseDataset], fraction: float = 1.0,
                 seed: int = 99, lazy_init: bool = False) -> None:
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or \
                not 0.0 < fraction <= 1.0:
            raise ValueError(f'LabelFractionDataset: `fraction` must be in (0, 1] (0.01 for '
                             f'1 % of the labels), got {fraction!r}.')
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f'LabelFractionDataset: `seed` must be an int, got {seed!r}.')
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        self.fraction = float(fraction)
        self.seed = int(seed)
        self._indices: List[int] = []
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        """The wrapped dataset's meta information (``classes``, ...)."""
        return copy.deepcopy(self.dataset.metainfo)

    @property
    def indices(self) -> List[int]:
        """Indices of the kept samples in the wrapped dataset."""
        self.full_init()
        return list(self._indices)

    def full_init(self) -> None:
        """Load the wrapped dataset and draw the subset."""
        if self._fully_initialized:
            return
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        total = len(self.dataset)
        self._indices = select_fraction(total, self.fraction, self.seed)
        self._fully_initialized = True
        if self.fraction < 1.0:
            print_log(f'LabelFractionDataset: {len(self._indices)} of {total} samples '
                      f'({self.fraction:.2%}, seed {self.seed}) of '
                      f'{type(self.dataset).__name__}.', logger='current')

    def get_data_info(self, idx: int) -> dict:
        """Annotation of the ``idx``-th kept sample."""
        self.full_init()
        return self.dataset.get_data_info(self._indices[idx])

    def __getitem__(self, idx: int) -> Any:
        self.full_init()
        return self.dataset[self._indices[idx]]

    def __len__(self) -> int:
        self.full_init()
        return len(self._indices)

    def __repr__(self) -> str:
        size = len(self._indices) if self._fully_initialized else '?'
        return (f'{type(self).__name__}(fraction={self.fraction}, seed={self.seed}, '
                f'num_samples={size}, dataset={self.dataset!r})')
