"""Train and evaluate on some of the label columns of a multi-label dataset."""
import copy
from typing import Any, List, Sequence, Union

import numpy as np
import torch
from mmengine.dataset import BaseDataset

from dira_mm.registry import DATASETS

__all__ = ['ClassSubsetDataset']


@DATASETS.register_module()
class ClassSubsetDataset:
    """Keep the label columns of the named ``classes`` of ``dataset``, in that order.

    For instance the demo phantoms are listed in the ChestX-ray14 format (14 columns) but
    carry findings in three (``Nodule``, ``Cardiomegaly``, ``Effusion``):
    ``ClassSubsetDataset(dataset=dict(type='ChestXray14Dataset', ...), classes=(...))``
    gives 3-class labels and ``metainfo['classes']`` equal to ``classes``, which the
    metric reads its class names from. ``gt_label`` is selected in the annotation
    (:meth:`get_data_info`) and in the packed sample (``data_samples.gt_label`` of
    ``PackClsInputs``/``PackDiRAInputs``, or a top-level ``gt_label``).

    Args:
        dataset (dict | BaseDataset): The dataset, or its config; its
            ``metainfo['classes']`` names the label columns.
        classes (Sequence[str]): Class names to keep.
        lazy_init (bool): Defer loading the wrapped dataset to :meth:`full_init`.
    """

    def __init__(self, dataset: Union[dict, BaseDataset], classes: Sequence[str],
                 lazy_init: bool = False) -> None:
        if isinstance(classes, str) or not classes:
            raise ValueError(f'ClassSubsetDataset: `classes` must be a non-empty sequence '
                             f'of class names, got {classes!r}.')
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        self.classes = tuple(classes)
        available = tuple(self.dataset.metainfo.get('classes') or ())
        unknown = [c for c in self.classes if c not in available]
        if unknown:
            raise ValueError(f'ClassSubsetDataset: `classes` {unknown} are not classes of '
                             f'{type(self.dataset).__name__}: {list(available)}.')
        self.columns: List[int] = [available.index(c) for c in self.classes]
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        """The wrapped dataset's meta information with ``classes`` replaced."""
        meta = copy.deepcopy(self.dataset.metainfo)
        meta['classes'] = self.classes
        return meta

    def full_init(self) -> None:
        """Load the wrapped dataset."""
        if not self._fully_initialized and hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        self._fully_initialized = True

    def _select(self, label: Any) -> Any:
        if isinstance(label, torch.Tensor):
            return label[..., self.columns]  # a list index: no per-sample index tensor
        return np.asarray(label)[..., self.columns]

    def get_data_info(self, idx: int) -> dict:
        """Annotation of sample ``idx`` with the selected ``gt_label`` columns."""
        info = self.dataset.get_data_info(idx)
        if info.get('gt_label') is not None:
            info['gt_label'] = self._select(info['gt_label'])
        return info

    def __getitem__(self, idx: int) -> Any:
        data = self.dataset[idx]
        if isinstance(data, dict):
            sample = data.get('data_samples')
            if sample is not None and 'gt_label' in sample:
                sample.gt_label = self._select(sample.gt_label)
            elif data.get('gt_label') is not None:
                data['gt_label'] = self._select(data['gt_label'])
        return data

    def __len__(self) -> int:
        return len(self.dataset)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(classes={self.classes}, dataset={self.dataset!r})'
