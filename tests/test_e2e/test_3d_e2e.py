"""3-D end to end through the real Runner (issue 9, section 5): the 3-D DiRA-MoCo-v2 demo config
via tools/train.py, a 2-process gloo run, kill-and-resume, any 2-D method on 3-D crops, and
the Genesis / DiRA-TransVW demo configs, all on a tiny phantom tree (48x48x36 HU volumes,
32x32x32 cubes: the 3-D ResNet U-Net needs multiples of 32; resnet10 with slim widths)."""
import copy
import glob
import math
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.hooks import Hook
from mmengine.registry import DefaultScope

from dira_mm.registry import HOOKS
from conftest import REPO, isolate_run
from helpers import dist_train, load_tool, read_scalars

DEMO3D = osp.join(REPO, 'configs', 'dira3d', 'dira_mocov2_demo3d.py')
PHANTOM_SIZE = (48, 48, 36)


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """These tensors are tiny: with two intra-op threads on two cores that other processes
    share, a training step measured 0.2-4 s against 0.08 s with one thread. The runs compared
    with each other (kill-and-resume) run under the same setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
    """6 phantoms in 3 subsets (train 2, val 2, test 2) + the MNI152 MRI, as data/demo3d."""
    from dira_mm.datasets.ct_phantom_data import make_ct_demo_dataset
    out = str(tmp_path_factory.mktemp('demo3d'))
    summary = make_ct_demo_dataset(out, num=6, size=PHANTOM_SIZE, num_subsets=3,
                                   negatives_per_scan=1)
    assert (summary['num_train'], summary['num_val']) == (2, 2)
    return out


def tiny_options(root: str, epochs: int = 2, adversarial_begin: int = 1) -> dict:
    """Overrides of the 3-D demo config: resnet10 with slim widths, batch 2, one cube per
    phantom + two from the MRI (4 cubes: 2 iterations per epoch), validation every epoch."""
    opts = {
        'model.discriminative.backbone.backbone': 'resnet10',
        'model.discriminative.backbone.decoder_channels': [8, 8, 8, 8, 8],
        'model.discriminative.neck.hid_channels': 16,
        'model.discriminative.neck.out_channels': 8,
        'model.discriminative.feat_dim': 8,
        'model.discriminative.queue_len': 16,
        'model.adversarial.discriminator.channels': [4, 4, 8, 8],
        'train_dataloader.dataset.datasets.0.data_root': root,
        'train_dataloader.dataset.datasets.0.cubes_per_volume': 1,
        'train_dataloader.dataset.datasets.1.data_root': root,
        'train_dataloader.dataset.datasets.1.cubes_per_volume': 2,
        'val_dataloader.dataset.data_root': root,
        'val_dataloader.dataset.cubes_per_volume': 1,
        'test_dataloader.dataset.data_root': root,
        'test_dataloader.dataset.cubes_per_volume': 1,
        'train_cfg.max_epochs': epochs,
        'train_cfg.val_interval': 1,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': 1,
        # the demo's custom hooks: MomentumUpdateHook, DiRAStageHook, ReconstructionVisHook
        'custom_hooks.1.adversarial_begin': adversarial_begin,
        'custom_hooks.2.interval': 1,
        'custom_hooks.2.num_samples': 2,
        'randomness.seed': 0,
    }
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts[f'{key}.batch_size'] = 2
        opts[f'{key}.num_workers'] = 0
    return opts


def tiny_config(root: str, work_dir: str, **kwargs) -> Config:
    cfg = Config.fromfile(DEMO3D, lazy_import=False)
    cfg.merge_from_dict(tiny_options(root, **kwargs))
    return isolate_run(cfg, work_dir)


SLIM_CUBE = (32, 32, 16)


def slim_genesis(cfg: Config, base_channels: int = 2) -> Config:
    """The same DiRA-MoCo-v2 config on a slim GenesisUNet3D (base_channels 2: 32 channels at
    the bottom) and 32x32x16 cubes: checkpoints of about 1 MB instead of 175 MB."""
    disc = cfg.model.discriminative
    disc.backbone = dict(type='GenesisUNet3D', in_channels=1, out_channels=1,
                         base_channels=base_channels, activation='sigmoid')
    disc.neck.in_channels = 16 * base_channels
    leaves = list(cfg.train_dataloader.dataset.datasets) + [cfg.val_dataloader.dataset,
                                                             cfg.test_dataloader.dataset]
    for leaf in leaves:
        for step in leaf.pipeline:
            if step['type'] == 'RandomCubes':
                step['size'] = SLIM_CUBE
            if step['type'] == 'DiRAViews':
                step['crop']['transforms'][1]['spatial_size'] = SLIM_CUBE
    return cfg


def ct_only(cfg: Config, cubes_per_volume: int = 1, validate: bool = True) -> Config:
    """Train on the CT phantoms only (no ConcatDataset with the MRI), no test loop, and
    optionally no validation: a shorter config text and run for the multi-run tests."""
    cfg.train_dataloader.dataset = dict(cfg.train_dataloader.dataset.datasets[0],
                                        cubes_per_volume=cubes_per_volume)
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    if not validate:
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    return cfg


def _train_rows(work_dir):
    return [r for r in read_scalars(work_dir) if 'momentum' in r]


def _state(path):
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


# --------------------------------------------------------------------- (a) the demo config
@pytest.mark.parametrize('staged', [
    False, pytest.param(True, marks=pytest.mark.slow)], ids=['1-epoch', 'staged-2-epochs'])
def test_demo3d_config_trains_through_the_train_tool(tree, tmp_path, staged):
    """tools/train.py on the real demo config (3-D ResNet U-Net, resnet10 with slim widths)
    with --cfg-options: losses, validation, the checkpoint and the three-slice
    reconstruction grid. Fast: one epoch with the adversary on; slow: both stages."""
    work_dir = str(tmp_path / 'demo3d')
    epochs = 2 if staged else 1
    opts = tiny_options(tree, epochs=epochs, adversarial_begin=1 if staged else 0)
    opts.update({'train_cfg.val_interval': epochs, 'default_hooks.checkpoint.interval': epochs,
                 'custom_hooks.2.interval': epochs})
    if not staged:  # 2 phantom cubes + 1 MRI cube, batch 2 (drop_last): one iteration
        opts['train_dataloader.dataset.datasets.1.cubes_per_volume'] = 1
    per_epoch = 2 if staged else 1
    opts = [f'{k}={v}'.replace(' ', '') for k, v in opts.items()]
    tag = 'staged' if staged else 'fast'
    load_tool('train').main([DEMO3D, '--work-dir', work_dir, '--cfg-options', *opts,
                             f'visualizer.name=vis_3d_a_{tag}', f'experiment_name=exp_3d_a_{tag}'])
    rows = _train_rows(work_dir)
    assert [r['iter'] for r in rows] == list(range(1, per_epoch * epochs + 1))
    if staged:  # 4 cubes / batch 2 per epoch; `dir` warm-up, then `dira`
        assert not any('loss_adv' in r or 'loss_d' in r for r in rows[:2])
    assert all({'loss_dis', 'loss_res', 'loss_adv', 'loss_d'} <= set(r)
               for r in rows[-per_epoch:])
    for r in rows:
        assert all(math.isfinite(r[k]) for k in r if k.startswith('loss'))
    # the logged losses are means over the iterations so far (mmengine's window): the total
    # is the sum of the terms when every term was there from the first iteration
    for r in rows[:per_epoch]:
        assert r['loss'] == pytest.approx(
            r['loss_dis'] + r['loss_res'] + r.get('loss_adv', 0.0), rel=1e-5)
    # MoCo's cross-entropy over 1 + 16 logits, each a cosine / 0.2 in [-5, 5]
    assert 0 < rows[0]['loss_dis'] < math.log(17) + 2 / 0.2
    val = [r for r in read_scalars(work_dir) if 'loss' in r and 'momentum' not in r]
    assert len(val) == 1 and all(math.isfinite(r['loss']) for r in val)
    state = _state(osp.join(work_dir, f'epoch_{epochs}.pth'))
    # batch 2 keys per iteration through a queue of 16
    assert int(state['ssl.queue_ptr']) == 2 * per_epoch * epochs
    assert state['ssl.backbone.encoder.conv1.weight'].dim() == 5  # Conv3d
    assert state['discriminator.model.0.weight'].dim() == 5
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    # reconstruction grid: 2 samples x 4 columns, each cell three orthogonal 32x32 slices
    import cv2
    png = osp.join(work_dir, 'vis', f'reconstruction_epoch_{epochs}.png')
    assert osp.isfile(png)
    grid = cv2.imread(png, cv2.IMREAD_UNCHANGED)
    assert grid.shape[1] >= 4 * 3 * 32 and grid.shape[0] >= 2 * 32, grid.shape


# ------------------------------------------------------------------- (b) two processes
@pytest.mark.parametrize('backbone', [
    'genesis-slim', pytest.param('resnet10', marks=pytest.mark.slow)])
def test_two_process_gloo_3d(tree, tmp_path, backbone):
    """tools/dist_train.sh, 2 CPU processes (gloo): both ranks train, keys of both ranks
    reach the queue, the adversary runs under MMSeparateDistributedDataParallel, and the
    checkpoint loads into the model of the config."""
    work_dir = str(tmp_path / 'work')
    cfg = tiny_config(tree, work_dir, epochs=1, adversarial_begin=0)
    if backbone == 'genesis-slim':
        slim_genesis(cfg)
    ct_only(cfg, cubes_per_volume=2)  # 2 phantoms x 2 cubes: one iteration on 2 ranks
    log = dist_train(cfg, tmp_path, 'tiny_3d', timeout=600)
    assert 'world_size: 2' in log and re.search(r'\bloss_d: ', log), log[-4000:]
    state = _state(osp.join(work_dir, 'epoch_1.pth'))
    # 4 cubes over 2 ranks x batch 2: one iteration, which enqueues the 4 keys gathered
    # from both ranks
    assert int(state['ssl.queue_ptr']) == 4
    from dira_mm.registry import MODELS
    with DefaultScope.overwrite_default_scope('dira_mm'):
        model = MODELS.build(cfg.model)
    missing, unexpected = model.load_state_dict(state, strict=True)
    assert not missing and not unexpected
    assert model.ssl.backbone.spatial_dims == 3
    # one iteration per rank (the sampler gave each rank 2 of the 4 cubes)
    assert 'Epoch(train) [1][1/1]' in log


# --------------------------------------------------------------------- (c) kill and resume
@HOOKS.register_module(force=True)
class Kill3DAfterEpochHook(Hook):
    """Simulates a killed run: stop right after the checkpoint of epoch ``at``."""

    priority = 'LOWEST'

    def __init__(self, at):
        self.at = at

    def after_train_epoch(self, runner):
        if runner.epoch + 1 == self.at:
            raise KeyboardInterrupt('killed')


def _run_tool(cfg: Config, path: str, *args):
    cfg.dump(path)
    load_tool('train').main([path, '--work-dir', cfg.work_dir, *args])


@pytest.mark.parametrize('backbone', [
    'genesis-slim', pytest.param('resnet10', marks=pytest.mark.slow)])
def test_kill_and_resume_3d_is_bit_exact(tree, tmp_path, backbone):
    """2 epochs straight vs 1 epoch, killed, then tools/train.py --resume: the same losses,
    learning rates and weights bit for bit (the adversary starts in epoch 2, after the
    resume, so the stage switch is restored too)."""
    full = tiny_config(tree, str(tmp_path / 'full'), epochs=2, adversarial_begin=1)
    full.custom_hooks = [h for h in full.custom_hooks if h['type'] != 'ReconstructionVisHook']
    if backbone == 'genesis-slim':
        slim_genesis(full)
    ct_only(full, validate=False)  # 2 cubes per epoch: one iteration
    _run_tool(full, str(tmp_path / 'full.py'))
    ref = _train_rows(full.work_dir)

    killed = tiny_config(tree, str(tmp_path / 'killed'), epochs=2, adversarial_begin=1)
    killed.custom_hooks = [h for h in killed.custom_hooks
                           if h['type'] != 'ReconstructionVisHook']
    if backbone == 'genesis-slim':
        slim_genesis(killed)
    ct_only(killed, validate=False)
    resumed = copy.deepcopy(killed)
    killed.custom_hooks = killed.custom_hooks + [dict(type='Kill3DAfterEpochHook', at=1)]
    with pytest.raises(KeyboardInterrupt):
        _run_tool(killed, str(tmp_path / 'killed.py'))
    assert osp.isfile(osp.join(killed.work_dir, 'epoch_1.pth'))
    assert not osp.isfile(osp.join(killed.work_dir, 'epoch_2.pth'))
    resumed.experiment_name += '_resumed'
    resumed.visualizer.name += '_resumed'
    _run_tool(resumed, str(tmp_path / 'resumed.py'), '--resume')

    got = _train_rows(resumed.work_dir)
    assert [r['iter'] for r in got] == [r['iter'] for r in ref] == [1, 2]
    for a, b in zip(ref, got):
        keys = [k for k in a if k.startswith('loss') or k.endswith('lr')]
        assert keys and {k: a[k] for k in keys} == {k: b[k] for k in keys}, a['iter']
    assert 'loss_d' in got[-1] and 'loss_d' not in got[0]
    want = _state(osp.join(full.work_dir, 'epoch_2.pth'))
    have = _state(osp.join(resumed.work_dir, 'epoch_2.pth'))
    assert want.keys() == have.keys()
    different = [k for k in want if not torch.equal(want[k], have[k])]
    assert not different, different[:10]


# ------------------------------------------------------- any 2-D method on 3-D crops
TWO_D_DEMOS = {
    'barlowtwins': 'dira_barlow_demo.py',
    'simsiam': 'dira_simsiam_demo.py',
    'byol': 'dira_byol_demo.py',
}


@pytest.fixture(scope='module')
def cube_batch(tree):
    """Two samples of the 3-D demo pipeline at 32x32x32 (two views + target each)."""
    from dira_mm.registry import DATASETS
    cfg = Config.fromfile(DEMO3D, lazy_import=False)
    ds = copy.deepcopy(cfg.train_dataloader.dataset.datasets[0])
    ds.data_root = tree
    with DefaultScope.overwrite_default_scope('dira_mm'):
        data = DATASETS.build(ds)
    return default_collate([data[0], data[1]])


@pytest.mark.parametrize('method', sorted(TWO_D_DEMOS))
def test_2d_method_config_trains_on_3d_crops(method, cube_batch):
    """A 2-D DiRA demo config (Barlow Twins / SimSiam / BYOL) becomes 3-D by overriding the
    backbone (a slim GenesisUNet3D: any backbone of the protocol), neck, preprocessor,
    restorative head and discriminator only; one training step of its own optimizers
    (LARS / SGD with a fixed-lr predictor, and the discriminator's Adam) runs on cubes of
    the 3-D demo pipeline and changes the 3-D encoder."""
    from mmengine.optim import build_optim_wrapper
    from dira_mm.models.utils import unwrap
    from dira_mm.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'dira', TWO_D_DEMOS[method]),
                          lazy_import=False)
    model_cfg = cfg.model
    disc = model_cfg.discriminative
    disc.backbone = dict(type='GenesisUNet3D', in_channels=1, out_channels=1,
                         base_channels=2, activation='sigmoid')
    disc.neck.update(in_channels=32, hid_channels=32, out_channels=16, spatial_dims=3)
    if disc.head.get('predictor'):
        disc.head.predictor.update(in_channels=16, hid_channels=8, out_channels=16)
    model_cfg.data_preprocessor = dict(type='DiRADataPreprocessor', num_channels=1,
                                       spatial_dims=3)
    model_cfg.restorative.spatial_dims = 3
    model_cfg.adversarial.discriminator.update(in_channels=1, spatial_dims=3,
                                               channels=(4, 4, 8, 8))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('dira_mm'):
        model = MODELS.build(model_cfg)
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    first_conv = [n for n, p in model.ssl.backbone.named_parameters() if p.dim() == 5][0]
    before = dict(model.ssl.backbone.named_parameters())[first_conv].detach().clone()
    assert before.dim() == 5
    losses = {k: float(v.detach()) for k, v in
              model.train_step(copy.deepcopy(cube_batch), wrapper).items()}
    assert {'loss', 'loss_dis', 'loss_res', 'loss_adv', 'loss_d'} <= set(losses)
    assert all(math.isfinite(v) for v in losses.values())
    assert losses['loss'] == pytest.approx(
        losses['loss_dis'] + losses['loss_res'] + losses['loss_adv'], rel=1e-5)
    # restoration: 10 x the MSE of a sigmoid output against a [0, 1] target
    assert 0 < losses['loss_res'] < 10
    if method == 'simsiam':  # -cos, the mean of both directions: in [-1, 1]
        assert -1.0 <= losses['loss_dis'] <= 1.0
    if method == 'byol':  # 2 - 2 cos, summed over both directions: in [0, 8]
        assert 0.0 <= losses['loss_dis'] <= 8.0
    if method == 'barlowtwins':  # a sum of squares
        assert losses['loss_dis'] > 0
    after = dict(unwrap(model).ssl.backbone.named_parameters())[first_conv]
    assert not torch.equal(before, after)


# ------------------------------------------------ Genesis / DiRA-TransVW demo configs
# (the plain TransVW demo config trains through the Runner in
# tests/test_models/test_transvw_genesis.py)
def test_genesis_demo_config_trains_through_the_train_tool(tree, tmp_path):
    """The Models Genesis demo config (slim Genesis U-Net, 32x32x16 cubes) on the tiny tree,
    2 iterations and a validation, via tools/train.py."""
    work_dir = str(tmp_path / 'genesis')
    path = osp.join(REPO, 'configs', 'genesis', 'genesis_unet3d-slim_1xb6-sgd-steplr-10e_demo.py')
    opts = ['model.discriminative.backbone.base_channels=4', 'train_cfg.max_epochs=1',
            'train_cfg.val_interval=1', 'default_hooks.logger.interval=1',
            'default_hooks.checkpoint.interval=1', 'custom_hooks.0.interval=1',
            'visualizer.name=vis_3d_genesis', 'experiment_name=exp_3d_genesis']
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{key}.dataset.data_root={tree}', f'{key}.batch_size=2',
                 f'{key}.num_workers=0', f'{key}.dataset.cubes_per_volume=2']
    load_tool('train').main([path, '--work-dir', work_dir, '--cfg-options', *opts])
    rows = [r for r in read_scalars(work_dir) if 'lr' in r]
    assert len(rows) == 2  # 2 phantoms x 2 cubes / batch 2
    # restoration only: the loss is the MSE (weight 1) of a sigmoid output against [0, 1]
    for r in rows:
        assert r['loss'] == pytest.approx(r['loss_res']) and 0 < r['loss'] < 1
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    assert osp.isfile(osp.join(work_dir, 'vis', 'reconstruction_epoch_1.png'))


def test_dira_transvw_demo_config_trains_through_the_train_tool(tree, tmp_path):
    """transvw_discover.py on the tiny tree, then the DiRA-TransVW demo config (TransVW +
    the 3-D adversary) via tools/train.py: the three DiRA losses and the discriminator's."""
    discover = load_tool('misc', 'transvw_discover')
    vw = str(tmp_path / 'vw')
    discover.main([osp.join(tree, 'train.txt'), '--val', osp.join(tree, 'val.txt'),
                   '--prefix', osp.join(tree, 'ct'), '--out', vw, '--num-classes', '2',
                   '--top-k', '2', '--top-k-val', '1', '--crop-size', '32', '32', '16',
                   '--border', '2', '2', '1', '--no-air-filter', '--feature-source',
                   'intensity', '--feature-size', '8', '8', '4', '--quiet'])
    work_dir = str(tmp_path / 'dira_transvw')
    path = osp.join(REPO, 'configs', 'transvw',
                    'dira-transvw_unet3d-slim_1xb8-adam-adam-steplr-10e_demo.py')
    opts = ['model.discriminative.backbone.base_channels=4',
            'model.discriminative.head.in_channels=64',
            'model.discriminative.head.mid_channels=16',
            'model.discriminative.head.num_classes=2',
            'model.adversarial.discriminator.channels=[4,4,8,8]',
            'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
            'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=1',
            'custom_hooks=[]', 'visualizer.name=vis_3d_transvw',
            'experiment_name=exp_3d_transvw']
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{key}.dataset.data_root={vw}', f'{key}.batch_size=2',
                 f'{key}.num_workers=0', f'{key}.dataset.num_classes=2']
    load_tool('train').main([path, '--work-dir', work_dir, '--cfg-options', *opts])
    rows = [r for r in read_scalars(work_dir) if 'loss_d' in r]
    assert len(rows) == 2  # 2 classes x 2 instances / batch 2
    for r in rows:
        assert {'loss_cls', 'loss_res', 'loss_adv'} <= set(r)
        assert r['loss'] == pytest.approx(r['loss_cls'] + r['loss_res'] + r['loss_adv'],
                                          rel=1e-4)
        # lambda_cls 0.01 of a 2-class cross-entropy near log(2) at initialisation
        assert 0.002 < r['loss_cls'] < 0.02
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    assert glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))


# ------------------------------------------- full-size LUNA16 configs, one short epoch
LUNA16_CONFIGS = sorted(osp.basename(p) for p in glob.glob(
    osp.join(REPO, 'configs', 'dira3d', '*_luna16.py')))


@pytest.fixture(scope='module')
def luna16_tree(tmp_path_factory):
    """A LUNA16 layout (subset0..9 of MetaImage .mhd + .raw) of 10 phantoms, one per
    subset, large enough for Genesis' 64x64x32 cubes."""
    from dira_mm.datasets.ct_phantom_data import make_ct_demo_dataset
    out = str(tmp_path_factory.mktemp('luna16'))
    make_ct_demo_dataset(out, num=10, size=(72, 72, 40), metaimage=True, include_mri=False,
                         negatives_per_scan=1)
    return out


def test_luna16_config_list_is_complete():
    assert LUNA16_CONFIGS == [
        'di-mocov2_resnet50-3d_4xb16-coslr-400e_luna16.py',
        'dir-mocov2_resnet50-unet3d_4xb16-coslr-400e_luna16.py',
        'dira-mocov2_resnet50-unet3d_4xb16-staged-coslr-400e_luna16.py']


@pytest.mark.slow
@pytest.mark.parametrize('config', LUNA16_CONFIGS)
def test_luna16_config_one_short_epoch_at_full_model_size(config, luna16_tree, tmp_path):
    """The README's smoke-test recipe on the full-size 3-D configs: the 3-D ResNet-50 U-Net,
    64x64x32 Genesis cubes of LUNA16 MetaImage subsets, one epoch of one iteration (batch 2)
    and a validation; the staged config's adversary is moved to epoch 0 to run it too."""
    work_dir = str(tmp_path / 'run')
    tag = config.split('_')[0]
    opts = [f'{key}.{opt}' for key in ('train_dataloader', 'val_dataloader', 'test_dataloader')
            for opt in (f'dataset.data_root={luna16_tree}', 'batch_size=2', 'num_workers=0',
                        'dataset.cubes_per_volume=1')]
    opts += ['train_dataloader.dataset.subsets=[0,1]', 'val_dataloader.dataset.subsets=[5]',
             'test_dataloader.dataset.subsets=[7]', 'train_cfg.max_epochs=1',
             'default_hooks.logger.interval=1', f'visualizer.name=vis_luna_{tag}',
             f'experiment_name=exp_luna_{tag}']
    if config.startswith('dira-'):
        opts.append('custom_hooks.1.adversarial_begin=0')
    load_tool('train').main([osp.join(REPO, 'configs', 'dira3d', config), '--work-dir',
                             work_dir, '--cfg-options', *opts])
    rows = _train_rows(work_dir)
    assert len(rows) == 1
    expected = {'di': {'loss_dis'}, 'dir': {'loss_dis', 'loss_res'},
                'dira': {'loss_dis', 'loss_res', 'loss_adv', 'loss_d'}}
    assert expected[config.split('-')[0]] <= set(rows[0])
    assert all(math.isfinite(v) for k, v in rows[0].items() if k.startswith('loss'))
    state = _state(osp.join(work_dir, 'epoch_1.pth'))
    assert state['ssl.backbone.encoder.layer4.2.conv3.weight'].shape == (2048, 512, 1, 1, 1)
    assert int(state['ssl.queue_ptr']) == 2
