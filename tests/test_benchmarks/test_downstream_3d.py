"""The 3-D downstream configs (nodule segmentation and classification) through the real Runner
for 2 iterations on tiny CT phantoms, validation on whole volumes by sliding window; the
published Models Genesis NCS / NCC settings; the 3-D transfer demo in --quick mode."""
import glob
import json
import os
import os.path as osp
import shutil

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from dira_mm.datasets.ct_phantom_data import make_ct_demo_dataset
from dira_mm.utils import isolate_run, iter_dataset_cfgs, leaf_dataset_cfg
from helpers import REPO, load_module

SEG = osp.join(REPO, 'configs', 'benchmarks', 'segmentation', 'nodule3d')
CLS = osp.join(REPO, 'configs', 'benchmarks', 'classification', 'nodule3d')
SEG_CONFIGS = sorted(glob.glob(osp.join(SEG, '*.py')))
CLS_CONFIGS = sorted(glob.glob(osp.join(CLS, '*.py')))


@pytest.fixture(scope='module')
def phantoms(tmp_path_factory):
    """10 phantoms of 32^3 voxels (5 train / 2 val / 3 test) with LUNA16-style MetaImage
    subsets and candidates.csv."""
    out = str(tmp_path_factory.mktemp('demo3d') / 'data')
    make_ct_demo_dataset(out, num=10, size=(32, 32, 32), spacing=(1.5, 1.5, 1.5), seed=0,
                         metaimage=True, include_mri=False)
    os.makedirs(osp.join(out, 'folds'))
    for split in ('train', 'val', 'test'):  # the LUNA16 configs' series lists
        shutil.copy(osp.join(out, f'{split}.txt'), osp.join(out, 'folds', f'{split}.txt'))
    return out + '/'


def _run_two_iterations(path, data_root, work_dir, overrides):
    cfg = Config.fromfile(path, lazy_import=False)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for dataset in iter_dataset_cfgs(cfg[key].dataset):
            if 'data_root' in dataset:
                dataset.data_root = data_root
    cfg.work_dir = work_dir
    cfg.train_cfg.max_epochs = 1
    cfg.train_cfg.val_begin = 2  # the caller validates once, after training
    cfg.train_dataloader.num_workers = cfg.val_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = cfg.val_dataloader.persistent_workers = False
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.update(interval=1, max_keep_ckpts=1)
    cfg.merge_from_dict(overrides)
    isolate_run(cfg, osp.basename(path))
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_published_ncs_ncc_settings():
    """Models Genesis' keras downstream config: NCS / NCC at 64x64x32, Adam 1e-3, batch 16 /
    24, plateau 0.5 / 6, early stop 50 / 10; soft Dice over the batch (smooth 1) / BCE."""
    seg = Config.fromfile(osp.join(
        SEG, 'genesis-unet3d_finetune_1xb16-adam-plateau_luna16-nodule-64x64x32.py'))
    assert seg.model.backbone.type == 'GenesisUNet3D' and seg.model.backbone.base_channels == 32
    assert (seg.model.loss_dice.smooth, seg.model.loss_dice.per_sample, seg.model.bce_weight) \
        == (1.0, False, 0.0)
    assert leaf_dataset_cfg(seg.train_dataloader.dataset).pipeline[0].size == (64, 64, 32)
    assert seg.model.test_cfg == dict(mode='slide', roi_size=(64, 64, 32), overlap=0.5,
                                      sw_batch_size=4, blend_mode='gaussian')
    assert seg.train_dataloader.batch_size == 16 and seg.val_dataloader.batch_size == 1
    assert seg.custom_hooks[0].patience == 50
    res = Config.fromfile(osp.join(
        SEG, 'resnet50-unet3d_finetune_1xb16-adam-plateau_luna16-nodule-64x64x32.py'))
    assert res.model.backbone.backbone == 'resnet50'
    ncc = Config.fromfile(osp.join(
        CLS, 'genesis-unet3d_finetune_1xb24-adam-plateau_luna16-ncc-64x64x32.py'))
    assert ncc.model.loss.type == 'MaskedBCEWithLogitsLoss' and ncc.model.num_classes == 1
    assert leaf_dataset_cfg(ncc.train_dataloader.dataset).cube_size == (64, 64, 32)
    assert ncc.train_dataloader.batch_size == 24 and ncc.custom_hooks[0].patience == 10
    for cfg in (seg, ncc):
        assert cfg.optim_wrapper.optimizer == dict(type='Adam', lr=1e-3, weight_decay=0.0)
        sched = cfg.param_scheduler
        assert (sched.type, sched.factor, sched.patience, sched.min_value) == \
            ('ReduceOnPlateauLR', 0.5, 6, 1e-6)
    # the Genesis fold split of LUNA16 (subsets 0-4 / 5-6 / 7-9) as series lists
    assert leaf_dataset_cfg(ncc.train_dataloader.dataset).split_file == 'folds/train.txt'
    assert ncc.test_dataloader.dataset.split_file == 'folds/test.txt'


def _demo_seg(name):
    return osp.join(SEG, name)


def test_genesis_demo_segmentation_runs_and_validates_whole_volumes(phantoms, tmp_path):
    """2 iterations of 1 crop, then sliding-window validation of the 2 whole val volumes;
    the last checkpoint loads back as a pre-training checkpoint (plain `backbone.*`)."""
    runner = _run_two_iterations(
        _demo_seg('genesis-unet3d-slim_finetune_1xb4-adam-20e_demo3d.py'), phantoms,
        str(tmp_path / 'seg'), {'train_dataloader.batch_size': 1,
                                'train_dataloader.dataset.fraction': 0.4})
    assert runner.iter == 2
    metrics = runner.val_loop.run()
    assert set(metrics) >= {'dice', 'dice_global', 'dice/nodule', 'dice_global/nodule'}
    assert 0.0 <= metrics['dice/nodule'] <= 100.0
    seg = runner.model
    assert seg.test_cfg['mode'] == 'slide' and seg.test_cfg['roi_size'] == (64, 64, 32)
    ckpt = osp.join(str(tmp_path / 'seg'), 'epoch_1.pth')
    state = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']
    assert 'backbone.down_tr64.ops.0.conv1.weight' in state
    # a fine-tuned segmentor is itself a valid initialisation (report: all but the head)
    report = seg.load_pretrained(ckpt)
    assert len(report['matched']) == 104


@pytest.mark.slow
@pytest.mark.parametrize('path', SEG_CONFIGS, ids=osp.basename)
def test_every_segmentation_config_runs(path, phantoms, tmp_path):
    """Each 3-D segmentation config (full widths too) for 2 iterations at batch 1 on the
    32^3 phantoms; ResNet configs crop 32^3 (stride 32) at batch 2 (BatchNorm needs more than
    one value at the 1^3 bottleneck), Genesis ones 32x32x16 at batch 1."""
    resnet = 'resnet' in osp.basename(path)
    crop = (32, 32, 32) if resnet else (32, 32, 16)
    overrides = {'train_dataloader.batch_size': 2 if resnet else 1,
                 'train_dataloader.dataset.fraction': 0.8 if resnet else 0.4,
                 'model.test_cfg.roi_size': crop}
    cfg = Config.fromfile(path, lazy_import=False)
    pipeline = leaf_dataset_cfg(cfg.train_dataloader.dataset).pipeline
    pipeline[0]['size'] = crop
    overrides['train_dataloader.dataset.dataset.pipeline'] = pipeline
    runner = _run_two_iterations(path, phantoms, str(tmp_path / 'w'), overrides)
    assert runner.iter == 2 and 'dice/nodule' in runner.val_loop.run()


@pytest.mark.parametrize('name', ['genesis-unet3d-slim_finetune_1xb8-adam-10e_demo3d-ncc.py'])
def test_demo_nodule_classification_runs(name, phantoms, tmp_path):
    runner = _run_two_iterations(osp.join(CLS, name), phantoms, str(tmp_path / 'cls'),
                                 {'train_dataloader.batch_size': 2,
                                  'train_dataloader.dataset.fraction': 0.1})
    assert runner.iter == 2
    metrics = runner.val_loop.run()
    assert 0.0 <= metrics['auc'] <= 100.0 and metrics['loss'] > 0


@pytest.mark.slow
@pytest.mark.parametrize('path', CLS_CONFIGS, ids=osp.basename)
def test_every_classification_config_runs(path, phantoms, tmp_path):
    """The LUNA16 NCC configs read the phantoms' MetaImage subsets and candidates.csv as
    LUNA16's; 32x32x32 cubes at batch 2 for 2 iterations."""
    overrides = {'train_dataloader.batch_size': 2, 'train_dataloader.dataset.fraction': 0.12,
                 'train_dataloader.drop_last': True,
                 'train_dataloader.dataset.dataset.cube_size': (32, 32, 32),
                 'val_dataloader.dataset.cube_size': (32, 32, 32)}
    runner = _run_two_iterations(path, phantoms, str(tmp_path / 'w'), overrides)
    assert runner.iter == 2 and 'auc' in runner.val_loop.run()


@pytest.mark.slow
def test_transfer_demo_3d_quick(tmp_path):
    bench = load_module('benchmarks/transfer_demo_3d.py')
    work_dir = str(tmp_path / 'transfer3d')
    results = bench.main(['--quick', '--work-dir', work_dir, '--seeds', '3'])
    assert list(results['rows']) == ['random', 'Models Genesis', 'DiRA-TransVW']
    assert results['num_labelled'] == 10 and results['num_test'] == 6
    for name, row in results['rows'].items():
        (trial, ) = row['finetune']
        assert 0 <= trial['dice'] <= 100 and 0 <= trial['dice/nodule'] <= 100
        assert trial['loaded_tensors'] == (0 if name == 'random' else 104)
        if name == 'random':
            assert row['checkpoint'] is None
            continue
        state = torch.load(row['checkpoint'], map_location='cpu', weights_only=False)
        has_adversary = any(k.startswith('discriminator.') for k in state['state_dict'])
        assert has_adversary == (name == 'DiRA-TransVW')
    assert osp.isfile(osp.join(work_dir, 'transvw_words', 'train.csv'))
    table = results['table']
    assert table.count('\n| ') == 4 and '`python benchmarks/transfer_demo_3d.py --quick' in table
    assert json.load(open(osp.join(work_dir, 'results.json')))['table'] == table


def test_transfer_demo_3d_configs_and_table(tmp_path):
    """The fast part of the 3-D transfer demo: the configs it builds (no validation, the
    seed in the crops and the init, the pre-training's data roots) and its table."""
    bench = load_module('benchmarks/transfer_demo_3d.py')
    args = bench.parse_args(['--work-dir', str(tmp_path), '--seeds', '4', '5'])
    assert (args.pretrain_epochs, args.finetune_epochs, args.size) == (10, 60, (96, 96, 48))
    cfg = bench.finetune_config(args, '/data/', 5, '/ckpt.pth', 'Models Genesis')
    assert cfg.model.pretrained == '/ckpt.pth' and cfg.randomness == dict(seed=5)
    assert cfg.val_dataloader is None and cfg.train_cfg.max_epochs == 60
    assert leaf_dataset_cfg(cfg.train_dataloader.dataset).seed == 5
    assert cfg.test_dataloader.dataset.data_root == '/data/'
    assert cfg.model.test_cfg.roi_size == (64, 64, 32)
    pre = bench.pretrain_config(args, 'DiRA-TransVW', '/data/', '/words/')
    assert pre.train_dataloader.dataset.data_root == '/words/'
    assert pre.train_cfg.max_epochs == pre.train_cfg.val_interval == 10
    pre = bench.pretrain_config(args, 'Models Genesis', '/data/', None)
    assert pre.train_dataloader.dataset.data_root == '/data/'
    run = dict(dice=40.0, dice_global=50.0, loaded_tensors=104.0, seconds=60.0)
    results = dict(seeds=[4, 5], size=[96, 96, 48], num_test=6, num_labelled=10,
                   finetune_epochs=60, pretrain_epochs=10,
                   rows={'random': dict(pretrain_s=None, finetune=[dict(run, dice=30.0), run]),
                         'Models Genesis': dict(pretrain_s=90.0, finetune=[run, run])})
    table = bench.markdown_table(results, 'python x')
    assert '| random | — | 104 | 35.00 ± 7.07 | 50.00 ± 0.00 | 1.0 min/run |' in table
    assert '| Models Genesis | 1.5 min | 104 | 40.00 ± 0.00 |' in table
    assert table.endswith('`python x`')
