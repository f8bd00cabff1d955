"""Every config in configs/ loads and builds: model, pipeline transforms, optimizer wrappers."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from dira_mm.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS, TRANSFORMS
from dira_mm.utils import leaf_dataset_cfg

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)


def _linear_dims(module):
    return [(m.in_features, m.out_features) for m in module.modules()
            if isinstance(m, torch.nn.Linear)]


def check_published_settings(cfg, model):
    """DiRA's official settings, and each discriminative method's published ones."""
    ssl = model.ssl
    assert model.loss_weights == dict(dis=1., res=10., adv=0.001)
    assert ssl.backbone.encoder_name == 'resnet50'
    assert cfg.train_dataloader.batch_size in (64, 4)  # 4 x 64 = 256, or 4 x 4 = 16 (dira)
    ow = cfg.optim_wrapper.get('generator', cfg.optim_wrapper)
    opt = ow.optimizer
    name = type(ssl).__name__
    if name == 'MoCo':
        assert ssl.queue_len == 65536 and ssl.momentum == 0.999 and ssl.shuffle_bn
        assert ssl.head.temperature == 0.2
        assert _linear_dims(ssl.neck) == [(2048, 2048), (2048, 128)]
        assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == ('SGD', 0.03, 0.9, 1e-4)
    elif name == 'BarlowTwins':
        assert _linear_dims(ssl.neck) == [(2048, 8192), (8192, 8192), (8192, 8192)]
        assert ssl.head.criterion.lambd == 5.1e-3 and ssl.global_bn
        assert (opt.type, opt.lr, opt.weight_decay) == ('LARS', 0.2, 1.5e-6)
        assert opt.lr * opt.lr_1d_mult == pytest.approx(0.0048)
    elif name == 'SimSiam':
        assert _linear_dims(ssl.neck) == [(2048, 2048)] * 3
        assert _linear_dims(ssl.head.predictor) == [(2048, 512), (512, 2048)]
        assert (ssl.head.criterion.shift, ssl.head.criterion.scale) == (0.0, 1.0)
        assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == ('SGD', 0.05, 0.9, 1e-4)
        assert ow.paramwise_cfg.custom_keys.predictor.fix_lr
        assert any(h.type == 'FixedLRHook' for h in cfg.custom_hooks)
    elif name == 'BYOL':
        assert _linear_dims(ssl.neck) == [(2048, 4096), (4096, 256)]
        assert _linear_dims(ssl.head.predictor) == [(256, 4096), (4096, 256)]
        assert ssl.momentum == 0.996
        assert any(h.type == 'MomentumUpdateHook' and h.end_momentum == 1.0
                   for h in cfg.custom_hooks)
        assert (opt.type, opt.lr, opt.weight_decay, opt.lr_1d_mult) == ('LARS', 0.2, 1.5e-6, 1.)
    else:
        raise AssertionError(f'no published settings to check for {name}')


def test_there_are_configs():
    names = {osp.basename(p) for p in CONFIGS}
    for method in ('mocov2', 'barlow', 'simsiam', 'byol'):
        assert {f'dira_{method}_cxr14.py', f'dira_{method}_demo.py'} <= names
    # the full matrix: each method plain (di), + restoration (dir), full DiRA (dira)
    for method in ('mocov2', 'barlowtwins', 'simsiam', 'byol'):
        for mode in ('di', 'dir', 'dira'):
            assert any(n.startswith(f'{mode}-{method}_') and n.endswith('_chestxray14.py')
                       for n in names), (mode, method)
            assert any(n.startswith(f'{mode}-{method}_') and n.endswith('_demo.py')
                       for n in names), (mode, method)


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_builds(path):
    cfg = Config.fromfile(path, lazy_import=False)
    init_default_scope(cfg.get('default_scope', 'dira_mm'))
    model = MODELS.build(cfg.model)
    # the registered pipeline builds
    for key in ('train_dataloader', 'val_dataloader'):
        dataset = cfg[key].dataset  # a ConcatDataset: each of its datasets
        for leaf in [leaf_dataset_cfg(d) for d in dataset.get('datasets', [dataset])]:
            for t in leaf.pipeline:  # through dataset wrappers
                TRANSFORMS.build(t)
    # optimizers: one wrapper, or generator + discriminator over the model's children
    ow_cfg = cfg.optim_wrapper.to_dict() if hasattr(cfg.optim_wrapper, 'to_dict') else \
        dict(cfg.optim_wrapper)
    constructor = ow_cfg.pop('constructor', 'DefaultOptimWrapperConstructor')
    paramwise = ow_cfg.pop('paramwise_cfg', None)
    ow = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(type=constructor, optim_wrapper_cfg=ow_cfg, paramwise_cfg=paramwise))(model)
    if constructor == 'MultiOptimWrapperConstructor':
        assert set(ow.keys()) == set(cfg.param_scheduler.keys()) == {'generator', 'discriminator'}
        assert model.with_adversarial
    # the official / published numbers hold in every ChestX-ray14 pre-training config
    # (the downstream benchmarks are checked in tests/test_benchmarks)
    if ('chestxray14' in path or 'cxr14' in path) and \
            osp.join('configs', 'benchmarks') not in path:
        check_published_settings(cfg, model)
    del model
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
