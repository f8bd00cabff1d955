"""Every config in configs/ loads and builds: model, pipeline transforms, optimizer wrappers."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from dira_mm.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS, TRANSFORMS

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)


def test_there_are_configs():
    names = {osp.basename(p) for p in CONFIGS}
    assert {'dira_mocov2_cxr14.py', 'dira_mocov2_demo.py'} <= names


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_builds(path):
    cfg = Config.fromfile(path, lazy_import=False)
    init_default_scope(cfg.get('default_scope', 'dira_mm'))
    model = MODELS.build(cfg.model)
    # the registered pipeline builds
    for key in ('train_dataloader', 'val_dataloader'):
        for t in cfg[key].dataset.pipeline:
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
    # the official numbers hold in every ChestX-ray14 config
    if 'chestxray14' in path or 'cxr14' in path:
        ssl = model.ssl
        assert ssl.queue_len == 65536 and ssl.momentum == 0.999
        assert ssl.head.temperature == 0.2 and model.loss_weights == dict(dis=1., res=10., adv=0.001)
        assert ssl.backbone.encoder_name == 'resnet50'
        bs = cfg.train_dataloader.batch_size
        assert bs in (64, 4)  # 4 x 64 = 256 (dir, staged) or 4 x 4 = 16 (official dira stage)
    del model
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
