"""LabelFractionDataset: deterministic, nested subsets; ClassSubsetDataset: label columns."""
import numpy as np
import pytest
import torch

from dira_mm.datasets import ClassSubsetDataset, LabelFractionDataset, select_fraction
from dira_mm.registry import DATASETS


class ToyDataset:
    """A labelled dataset of ``n`` samples; item ``i`` is packed like PackClsInputs."""

    metainfo = dict(classes=('a', 'b', 'c', 'd'))

    def __init__(self, n=200):
        self.labels = np.arange(4 * n, dtype=np.float32).reshape(n, 4)
        self.initialised = False

    def full_init(self):
        self.initialised = True

    def get_data_info(self, idx):
        return dict(sample_idx=idx, gt_label=self.labels[idx].copy())

    def __getitem__(self, idx):
        from dira_mm.structures import DiRADataSample
        sample = DiRADataSample(gt_label=torch.as_tensor(self.labels[idx]))
        return dict(inputs=torch.full((1, 2, 2), idx), data_samples=sample)

    def __len__(self):
        return len(self.labels)


def test_same_seed_same_subset_and_sizes():
    for fraction, size in ((0.01, 2), (0.25, 50), (0.5, 100), (1.0, 200)):
        first = LabelFractionDataset(ToyDataset(), fraction=fraction, seed=99)
        again = LabelFractionDataset(ToyDataset(), fraction=fraction, seed=99)
        assert len(first) == size and first.indices == again.indices
        assert first.indices == sorted(set(first.indices))
    assert LabelFractionDataset(ToyDataset(), 1.0).indices == list(range(200))
    # another seed, another subset
    assert select_fraction(200, 0.25, 99) != select_fraction(200, 0.25, 100)
    # at least one sample; floor otherwise (29 % of 100 is 29, not 28)
    assert len(select_fraction(50, 0.01)) == 1 and len(select_fraction(100, 0.29)) == 29


def test_fractions_are_nested():
    subsets = [set(select_fraction(1000, f, seed=7)) for f in (0.01, 0.25, 0.5, 1.0)]
    assert all(small < large for small, large in zip(subsets, subsets[1:]))


def test_items_metainfo_and_data_info_follow_the_subset():
    inner = ToyDataset()
    subset = LabelFractionDataset(inner, fraction=0.25, seed=3)
    assert inner.initialised and subset.metainfo == inner.metainfo
    for i in (0, 17, len(subset) - 1):
        original = subset.indices[i]
        assert int(subset[i]['inputs'][0, 0, 0]) == original
        assert subset.get_data_info(i)['sample_idx'] == original


def test_built_from_config_and_bad_fractions():
    DATASETS.register_module(name='ToyFractionDataset', module=ToyDataset, force=True)
    built = DATASETS.build(dict(type='LabelFractionDataset', fraction=0.5,
                                dataset=dict(type='ToyFractionDataset', n=10)))
    assert len(built) == 5 and built.seed == 99
    for bad in (0, 1.5, -0.1, '0.5', True):
        with pytest.raises(ValueError, match='`fraction` must be in'):
            LabelFractionDataset(ToyDataset(), fraction=bad)


def test_class_subset_selects_label_columns():
    inner = ToyDataset(n=3)
    subset = ClassSubsetDataset(inner, classes=('c', 'a'))
    assert subset.metainfo['classes'] == ('c', 'a') and inner.metainfo['classes'][0] == 'a'
    assert subset[1]['data_samples'].gt_label.tolist() == [6.0, 4.0]
    assert subset.get_data_info(2)['gt_label'].tolist() == [10.0, 8.0]
    assert len(subset) == 3
    with pytest.raises(ValueError, match=r"\['z'\] are not classes"):
        ClassSubsetDataset(inner, classes=('a', 'z'))
