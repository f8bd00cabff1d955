"""projects/byol_from_scratch: an SSL method added from outside dira_mm (custom_imports),
with DiRA on top by config. The tutorial docs/tutorials/add_an_ssl_method.md walks
through it; these tests keep the tutorial true."""
import math
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.runner import Runner

from dira_mm.registry import MODELS
from helpers import e2e_helpers, read_scalars

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PROJECT = osp.join(REPO, 'projects', 'byol_from_scratch')
DIRA_CFG = osp.join(PROJECT, 'configs', 'dira-mybyol_resnet18-unet_1xb16-staged-coslr-12e_demo.py')
DI_CFG = osp.join(PROJECT, 'configs', 'di-mybyol_resnet18_1xb16-coslr-12e_demo.py')


@pytest.fixture(autouse=True)
def project_on_path(monkeypatch):
    """What ``PYTHONPATH=projects/byol_from_scratch`` does for tools/train.py."""
    monkeypatch.syspath_prepend(PROJECT)


@pytest.fixture(scope='module')
def tiny_demo_data(tmp_path_factory):
    from dira_mm.datasets.phantom import make_demo_dataset
    out = tmp_path_factory.mktemp('mybyol_data')
    make_demo_dataset(str(out), num_train=16, num_val=8, size=96, seed=0)
    return str(out)


# tiny widths: ResNet-18 encoder, projector 512-32-16, predictor 16-32-16
_BACKBONE = dict(type='ResNetUNet', encoder_name='resnet18', decoder_channels=(32, 16, 16, 8, 8))
_NECK = dict(type='NonLinearNeck', in_channels=512, hid_channels=32, out_channels=16,
             num_layers=2, with_bias=True)


def _my_byol(**kwargs):
    cfg = dict(type='MyBYOL', backbone=_BACKBONE, neck=_NECK, predictor_channels=(16, 32, 16),
               base_momentum=0.99)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _shipped_byol():
    return MODELS.build(dict(
        type='BYOL', backbone=_BACKBONE, neck=_NECK, base_momentum=0.99,
        head=dict(type='LatentPredictHead',
                  predictor=dict(type='NonLinearNeck', in_channels=16, hid_channels=32,
                                 out_channels=16, num_layers=2, with_bias=True,
                                 with_avg_pool=False),
                  loss=dict(type='CosineSimilarityLoss', shift=2.0, scale=2.0))))


# shipped BYOL's state-dict names -> MyBYOL's
_RENAMES = (('head.predictor.mlp.', 'predictor.'),
            ('momentum_encoder.module.encoder.', 'momentum_encoder.module.0.'),
            ('momentum_encoder.module.neck.', 'momentum_encoder.module.1.'))


def _to_mine(name: str) -> str:
    for old, new in _RENAMES:
        if name.startswith(old):
            return new + name[len(old):]
    return name


def _views(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(4, 3, 32, 32, generator=g) for _ in range(2)]


@pytest.mark.parametrize('path', [DIRA_CFG, DI_CFG], ids=['dira', 'di'])
def test_project_configs_load_and_build(path):
    from byol_from_scratch import MyBYOL
    cfg = Config.fromfile(path)  # imports byol_from_scratch (custom_imports)
    assert cfg.model.type == 'DiRA' and cfg.model.discriminative.type == 'MyBYOL'
    # _delete_ dropped every key of the shipped BYOL that MyBYOL does not take
    assert 'head' not in cfg.model.discriminative
    model = MODELS.build(cfg.model)
    assert isinstance(model.ssl, MyBYOL)
    assert model.ssl.predictor[0].in_features == 128 and model.ssl.momentum == 0.99
    hooks = {h['type']: h for h in cfg.custom_hooks}
    assert hooks['MomentumUpdateHook']['end_momentum'] == 1.0
    if path == DIRA_CFG:
        assert model.with_restorative and model.with_adversarial
        assert hooks['DiRAStageHook']['adversarial_begin'] == 6
    else:
        assert not model.with_restorative and not model.with_adversarial
        assert not model.ssl.backbone.with_decoder


def test_loss_equals_shipped_byol():
    torch.manual_seed(0)
    shipped, mine = _shipped_byol(), _my_byol()
    with torch.no_grad():  # a target different from the online network
        for p in shipped.momentum_encoder.parameters():
            p.add_(0.05 * torch.randn_like(p))
    mine.load_state_dict({_to_mine(k): v for k, v in shipped.state_dict().items()},
                         strict=True)
    shipped.train(), mine.train()
    inputs = _views()
    ref = shipped.loss(inputs)['loss_dis']
    out = mine.loss(inputs)['loss_dis']
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    ref.backward()
    out.backward()
    grads = dict(mine.named_parameters())
    checked = 0
    for name, p in shipped.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(grads[_to_mine(name)].grad, p.grad,
                                       rtol=1e-4, atol=1e-6)
            checked += 1
    assert checked > 60  # encoder, projector and predictor
    assert all(p.grad is None for p in mine.momentum_encoder.parameters())


def test_loss_by_hand():
    from byol_from_scratch import MyBYOL
    q = torch.tensor([[1., 0.], [3., 4.], [1., 0.]])
    t = torch.tensor([[0., 2.], [6., 8.], [-5., 0.]])
    # cos = 0, 1, -1 -> 2 - 2 cos = 2, 0, 4
    assert MyBYOL.regression_loss(q, t).item() == pytest.approx(2.0)

    torch.manual_seed(0)
    model = _my_byol()
    model.init_weights()  # target == online: t_v is the online projection z_v
    model.train()
    inputs = _views(1)
    with torch.no_grad():
        z = [model.neck(model.extract_feat(x)) for x in inputs]
        p = [model.predictor(zi) for zi in z]
        expected = sum((2 - 2 * F.cosine_similarity(p[i], z[1 - i], dim=1)).mean()
                       for i in (0, 1))
        out = model.loss(inputs)['loss_dis']
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


def test_momentum_update_is_ema():
    torch.manual_seed(0)
    model = _my_byol()
    model.init_weights()
    online = list(model.online_network().parameters())
    target = list(model.momentum_encoder.parameters())
    assert len(online) == len(target) and all(torch.equal(o, t) for o, t in zip(online, target))
    assert not any(t.requires_grad for t in target)
    with torch.no_grad():
        for o in online:
            o.copy_(torch.randn_like(o))
    before = [t.clone() for t in target]
    buffers = [b.clone() for b in model.momentum_encoder.buffers()]
    model.momentum_update(0.9)
    for t, t0, o in zip(target, before, online):
        torch.testing.assert_close(t, 0.9 * t0 + 0.1 * o)
    # BN running statistics are the target's own, not averaged
    assert all(torch.equal(b, b0) for b, b0 in zip(model.momentum_encoder.buffers(), buffers))
    model.momentum_update()  # no argument: the configured momentum 0.99
    torch.testing.assert_close(target[0], 0.99 * (0.9 * before[0] + 0.1 * online[0])
                               + 0.01 * online[0])


def test_staged_project_config_trains(tiny_demo_data, tmp_path):
    cfg = e2e_helpers().demo_config_at_test_size(DIRA_CFG, tiny_demo_data,
                                                 str(tmp_path / 'mybyol_dira_run'))
    runner = Runner.from_cfg(cfg)
    runner.train()
    rows = read_scalars(cfg.work_dir)
    train = [r for r in rows if 'loss_dis' in r and 'lr' in str(r.keys())]
    assert len(train) == 4, rows  # 16 images / batch 4, one epoch
    assert {'loss_dis', 'loss_res', 'loss_adv', 'loss_d', 'momentum'} <= set().union(*train)
    assert all(math.isfinite(r['loss']) for r in rows if 'loss' in r)
    assert osp.isfile(osp.join(cfg.work_dir, 'epoch_1.pth'))
    assert type(runner.model.ssl).__name__ == 'MyBYOL'


def test_train_tool_with_project_config(tiny_demo_data, tmp_path):
    opts = []
    for loader in ('train_dataloader', 'val_dataloader'):
        opts += [f'{loader}.dataset.data_root={tiny_demo_data}', f'{loader}.batch_size=4',
                 f'{loader}.num_workers=0', f'{loader}.dataset.pipeline.1.crop.size=64']
    opts += ['model.discriminative.backbone.decoder_channels=(32,16,16,8,8)',
             'model.adversarial.discriminator.channels=(8,8,16,16)',
             'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
             'custom_hooks.1.adversarial_begin=0', 'default_hooks.logger.interval=1',
             'default_hooks.checkpoint.interval=1']
    work_dir = tmp_path / 'w'
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=f'{PROJECT}{os.pathsep}{REPO}')
    result = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'train.py'), DIRA_CFG,
         '--work-dir', str(work_dir), '--cfg-options'] + opts,
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    # 'loss_d: ' exactly (a bare 'loss_d' would also match 'loss_dis')
    assert 'loss_adv' in log and re.search(r'\bloss_d: ', log), log[-4000:]
    assert (work_dir / 'epoch_1.pth').is_file()
