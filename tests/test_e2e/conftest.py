"""Tiny versions of the real configs for end-to-end tests (real code paths, small sizes)."""
import copy
import itertools
import os.path as osp

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
_RUN_IDS = itertools.count()
DEMO_CONFIG = osp.join(REPO, 'configs', 'dira', 'dira_mocov2_demo.py')


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory):
    """A small copy of the embedded demo data (phantoms + the real DICOM radiograph)."""
    from dira_mm.datasets.phantom import make_demo_dataset
    out = tmp_path_factory.mktemp('demo_data')
    make_demo_dataset(str(out), num_train=16, num_val=8, size=96, seed=0)
    return str(out)


def tiny_options(data_root: str, mode: str = 'dira', epochs: int = 2, size: int = 64,
                 adversarial_begin: int = 1) -> dict:
    """--cfg-options that shrink the demo config: ResNet-18 U-Net at 64 x 64, batch 4."""
    opts = {
        'train_dataloader.dataset.data_root': data_root,
        'val_dataloader.dataset.data_root': data_root,
        'test_dataloader.dataset.data_root': data_root,
        'train_dataloader.batch_size': 4,
        'val_dataloader.batch_size': 4,
        'test_dataloader.batch_size': 4,
        'train_dataloader.num_workers': 0,
        'val_dataloader.num_workers': 0,
        'test_dataloader.num_workers': 0,
        'model.discriminative.backbone.decoder_channels': (32, 16, 16, 8, 8),
        'model.discriminative.neck.hid_channels': 32,
        'model.discriminative.neck.out_channels': 16,
        'model.discriminative.feat_dim': 16,
        'model.discriminative.queue_len': 32,
        'model.adversarial.discriminator.channels': (8, 8, 16, 16),
        'train_cfg.max_epochs': epochs,
        'train_cfg.val_interval': 1,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': 1,
        'randomness.seed': 0,
        'randomness.deterministic': False,
    }
    return opts


def tiny_config(data_root: str, work_dir: str, mode: str = 'dira', epochs: int = 2,
                size: int = 64, adversarial_begin: int = 1) -> Config:
    """The demo config at test size; ``mode`` in {'di', 'dir', 'dira'}."""
    cfg = Config.fromfile(DEMO_CONFIG, lazy_import=False)
    cfg.merge_from_dict(tiny_options(data_root, mode, epochs, size, adversarial_begin))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        pipeline = copy.deepcopy(cfg[key].dataset.pipeline)
        pipeline[1]['crop']['size'] = size
        if mode == 'di':
            pipeline[1].update(distortion=None, with_target=False)
        cfg[key].dataset.pipeline = pipeline
    hooks = [dict(type='MomentumUpdateHook')]
    if mode in ('dir', 'dira'):
        hooks.append(dict(type='ReconstructionVisHook', interval=2, num_samples=4))
    if mode == 'dira':
        hooks.append(dict(type='DiRAStageHook', adversarial_begin=adversarial_begin))
    cfg.custom_hooks = hooks
    if mode == 'di':
        cfg.model.discriminative.backbone.with_decoder = False
        cfg.model.restorative = None
        cfg.model.adversarial = None
    if mode in ('di', 'dir'):
        cfg.model.adversarial = None
        cfg.optim_wrapper = dict(type='OptimWrapper',
                                 optimizer=dict(type='SGD', lr=0.03, momentum=0.9,
                                                weight_decay=1e-4))
        cfg.param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0)]
    return isolate_run(cfg, work_dir)


def demo_config_at_test_size(path: str, data_root: str, work_dir: str, size: int = 64) -> Config:
    """Any demo config of the matrix at test size: 1 epoch of 4 iterations, batch 4,
    64 x 64, the adversary on from the start; the method's own widths and hooks."""
    cfg = Config.fromfile(path, lazy_import=False)
    opts = {k: v for k, v in tiny_options(data_root, epochs=1).items()
            if not k.startswith('model.')}
    cfg.merge_from_dict(opts)
    if cfg.model.discriminative.backbone.get('with_decoder', True):
        cfg.model.discriminative.backbone.decoder_channels = (32, 16, 16, 8, 8)
    if cfg.model.get('adversarial'):
        cfg.model.adversarial.discriminator.channels = (8, 8, 16, 16)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        pipeline = copy.deepcopy(cfg[key].dataset.pipeline)
        pipeline[1]['crop']['size'] = size
        cfg[key].dataset.pipeline = pipeline
    # schedules of the 12-epoch demos, cut to the 1-epoch test run (warm-up only)
    def _cut(schedulers):
        kept = [dict(sch) for sch in schedulers if sch.get('begin', 0) < 1]
        for sch in kept:
            sch['end'] = min(sch.get('end', 1), 1)
        return kept
    if isinstance(cfg.param_scheduler, dict):
        cfg.param_scheduler = {k: _cut(v) for k, v in cfg.param_scheduler.items()}
    else:
        cfg.param_scheduler = _cut(cfg.param_scheduler)
    hooks = []
    for hook in cfg.custom_hooks:
        hook = dict(hook)
        if hook['type'] == 'DiRAStageHook':
            hook['adversarial_begin'] = 0
        if hook['type'] == 'ReconstructionVisHook':
            hook['interval'] = 1
        hooks.append(hook)
    cfg.custom_hooks = hooks
    return isolate_run(cfg, work_dir)


def isolate_run(cfg: Config, work_dir: str) -> Config:
    """Work dir, local scalars only, and per-run names of mmengine's singletons."""
    cfg.work_dir = work_dir
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    # mmengine keeps named singletons (visualizer, logger): one name per run in a process
    tag = f'{osp.basename(work_dir)}_{next(_RUN_IDS)}'
    cfg.visualizer.name = f'vis_{tag}'
    cfg.experiment_name = f'exp_{tag}'
    return cfg
