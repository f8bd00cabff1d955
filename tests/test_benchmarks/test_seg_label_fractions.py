"""The segmentation benchmark configs take the label fractions (1/25/50/100 %) the way the
classification ones do: ``train_dataloader.dataset.fraction``, subsets drawn with seed 99."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from dira_mm.datasets import make_phantom_lung_dataset
from dira_mm.datasets.label_fraction import select_fraction
from dira_mm.registry import DATASETS
from helpers import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SEG_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'benchmarks', 'segmentation', '*.py')))


@pytest.mark.parametrize('path', SEG_CONFIGS, ids=osp.basename)
def test_training_set_is_a_label_fraction(path):
    cfg = Config.fromfile(path, lazy_import=False)
    wrapper = cfg.train_dataloader.dataset
    assert wrapper.type == 'LabelFractionDataset'
    assert wrapper.fraction == 1.0 and wrapper.seed == 99
    leaf = wrapper.dataset
    assert leaf.type in ('ImageMaskDataset', 'SIIMPneumothoraxDataset')
    assert leaf.seed == 0 and leaf.pipeline[-1]['type'] == 'PackSegInputs'
    # validation and test read the full splits, without the wrapper
    for split in ('val_dataloader', 'test_dataloader'):
        assert cfg[split].dataset.type == leaf.type


def test_phantom_lung_fractions_are_fixed_and_nested(tmp_path):
    data = make_phantom_lung_dataset(str(tmp_path / 'lungs'), num_train=40, num_val=2,
                                     num_test=0, size=32, seed=0)
    path = [p for p in SEG_CONFIGS if p.endswith('_demo.py')][0]
    chosen = {}
    for fraction in (0.01, 0.25, 0.5, 1.0):
        cfg = Config.fromfile(path, lazy_import=False)
        cfg.merge_from_dict({'train_dataloader.dataset.fraction': fraction,
                             'train_dataloader.dataset.dataset.data_root': data['out_dir']})
        with DefaultScope.overwrite_default_scope('dira_mm'):
            dataset = DATASETS.build(cfg.train_dataloader.dataset)
        names = [osp.basename(dataset.get_data_info(i)['img_path'])
                 for i in range(len(dataset))]
        assert names == [f'phantom_lung_train_{i:05d}.png'
                         for i in select_fraction(40, fraction, 99)]
        chosen[fraction] = set(names)
        sample = dataset[0]
        assert sample['inputs'].shape[-2:] == sample['data_samples'].gt_mask.shape[-2:]
    assert [len(chosen[f]) for f in (0.01, 0.25, 0.5, 1.0)] == [1, 10, 20, 40]
    assert chosen[0.01] <= chosen[0.25] <= chosen[0.5] <= chosen[1.0]


def test_trials_tool_runs_a_segmentation_config(tmp_path):
    """tools/benchmarks/classification_trials.py on the segmentation demo: 50 % of the labels,
    one epoch, the best checkpoint (by validation Dice) tested, --metric dice."""
    data = make_phantom_lung_dataset(str(tmp_path / 'lungs'), num_train=8, num_val=2,
                                     num_test=2, size=32, seed=0)
    tool = load_tool('benchmarks', 'classification_trials')
    path = [p for p in SEG_CONFIGS if p.endswith('_demo.py')][0]
    config = str(tmp_path / 'seg_demo_local.py')  # local scalars only
    with open(config, 'w') as f:
        f.write(f'_base_ = [{path!r}]\n'
                "visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])\n")
    root = data['out_dir']
    options = ['model.pretrained=None', 'train_cfg.max_epochs=1',
               'train_dataloader.batch_size=2', 'train_dataloader.dataset.fraction=0.5',
               f'train_dataloader.dataset.dataset.data_root={root}',
               f'val_dataloader.dataset.data_root={root}',
               f'test_dataloader.dataset.data_root={root}',
               'model.backbone.decoder_channels=[16,16,8,8,8]']
    for split in ('train', 'val', 'test'):
        options.append(f'{split}_dataloader.num_workers=0')
    summary = tool.main([config, '--seeds', '5', '--metric', 'dice', '--work-dir',
                         str(tmp_path / 'trials'), '--cfg-options'] + options)
    (trial, ) = summary['trials']
    assert osp.basename(trial['checkpoint']) == 'best_dice_epoch_1.pth'
    assert 0 <= trial['test']['dice'] <= 100 and summary['mean'] == trial['test']['dice']
    assert '| mean ± std (1) |' in summary['table']
