"""TransVW and Models Genesis as DiRA compositions: head, losses by value, configs."""
import glob
import os.path as osp

import pytest
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dira_mm.models.algorithms import DiRA, RestorationOnly
from dira_mm.models.backbones.base_backbone import BaseEncoderDecoder
from dira_mm.models.heads import TransVWClsHead
from dira_mm.registry import MODELS
from dira_mm.structures import DiRADataSample

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@MODELS.register_module(force=True)
class ToyUNet3D(BaseEncoderDecoder):
    """Two-level 3-D encoder-decoder (tests only): 1 -> c -> 2c, sigmoid output."""

    spatial_dims = 3
    encoder_prefixes = ('enc.', )
    decoder_prefixes = ('dec.', 'out.')

    def __init__(self, in_channels: int = 1, width: int = 4) -> None:
        super().__init__()
        self.width = width
        self.enc = nn.ModuleList([nn.Conv3d(in_channels, width, 3, padding=1),
                                  nn.Conv3d(width, 2 * width, 3, stride=2, padding=1)])
        self.dec = nn.ConvTranspose3d(2 * width, width, 2, stride=2)
        self.out = nn.Conv3d(2 * width, 1, 1)

    @property
    def out_channels(self):
        return [self.width, 2 * self.width]

    def encoder_module(self):
        enc = self.enc

        class _Enc(nn.Module):
            def forward(self, x):
                a = torch.relu(enc[0](x))
                return [a, torch.relu(enc[1](a))]

        return _Enc()

    def forward_decoder(self, features):
        a, b = features
        return torch.sigmoid(self.out(torch.cat([a, self.dec(b)], dim=1)))


def _samples(targets, labels=None):
    out = []
    for i, t in enumerate(targets):
        ds = DiRADataSample()
        ds.set_field(t, 'target')
        if labels is not None:
            ds.gt_label = torch.tensor(labels[i])
        out.append(ds)
    return out


def _batch(n=4, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 16, 16, 8, generator=g)
    target = torch.rand(n, 1, 16, 16, 8, generator=g)
    labels = torch.randint(0, classes, (n, ), generator=g).tolist()
    return x, target, labels


_PRE = dict(type='DiRADataPreprocessor', num_channels=1, spatial_dims=3)
_BACKBONE = dict(type='ToyUNet3D', width=4)


# ----------------------------------------------------------------------------- head
def test_cls_head_matches_hand_computation():
    torch.manual_seed(0)
    head = TransVWClsHead(in_channels=3, num_classes=5, mid_channels=6, spatial_dims=3).eval()
    x = torch.randn(2, 3, 4, 4, 2)
    bn = head.bn
    h = F.conv3d(x, head.conv.weight, head.conv.bias, padding=1)
    h = (h - bn.running_mean.view(1, -1, 1, 1, 1)) / torch.sqrt(
        bn.running_var.view(1, -1, 1, 1, 1) + bn.eps)
    h = h * bn.weight.view(1, -1, 1, 1, 1) + bn.bias.view(1, -1, 1, 1, 1)
    pooled = h.clamp_min(0).mean(dim=(2, 3, 4))
    expected = pooled @ head.fc.weight.T + head.fc.bias
    torch.testing.assert_close(head(x), expected)
    # 2-D: Conv2d layout, same maths
    head2 = TransVWClsHead(in_channels=3, num_classes=5, mid_channels=6, spatial_dims=2)
    assert isinstance(head2.conv, nn.Conv2d) and head2(torch.randn(2, 3, 4, 4)).shape == (2, 5)
    with pytest.raises(ValueError, match='spatial axes'):
        head(torch.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match='in_channels'):
        head(torch.randn(2, 4, 4, 4, 2))


def test_cls_head_official_layout_and_batch_stats():
    head = TransVWClsHead()  # official 512 -> 1024 -> 44
    assert (head.conv.in_channels, head.conv.out_channels, head.conv.kernel_size) == \
        (512, 1024, (3, 3, 3))
    assert (head.fc.in_features, head.fc.out_features) == (1024, 44)
    # ContBatchNorm3d: batch statistics also in eval mode
    torch.manual_seed(1)
    a = TransVWClsHead(3, 4, 5, official_batchnorm=True)
    x = torch.randn(3, 3, 4, 4, 2) * 3 + 2
    a.train()
    y_train = a(x)
    a.eval()
    torch.testing.assert_close(a(x), y_train)
    assert int(a.bn.num_batches_tracked) == 1  # running stats kept updated in training


def test_cross_entropy_equals_official_nll_of_log_softmax():
    torch.manual_seed(2)
    head = TransVWClsHead(3, 7, 4)
    logits = torch.randn(6, 7) * 4
    labels = torch.tensor([0, 3, 6, 2, 2, 5])
    ours = head.loss(logits, labels)
    official = F.cross_entropy(torch.log(torch.softmax(logits, 1)), labels)  # train.py
    nll = F.nll_loss(F.log_softmax(logits, 1), labels)
    hand = -torch.log_softmax(logits, 1)[torch.arange(6), labels].mean()
    torch.testing.assert_close(ours, official)
    torch.testing.assert_close(ours, nll)
    torch.testing.assert_close(ours, hand)
    with pytest.raises(ValueError, match='num_classes'):
        head.loss(logits, torch.tensor([0, 1, 2, 3, 4, 7]))


# ----------------------------------------------------------------------- algorithms
@pytest.mark.parametrize('backbone', [_BACKBONE, dict(type='GenesisUNet3D', base_channels=2)],
                         ids=['toy', 'genesis-slim'])
def test_models_genesis_loss_is_lambda_res_mse(backbone):
    torch.manual_seed(3)
    model = DiRA(discriminative=dict(type='RestorationOnly', backbone=backbone),
                 restorative=dict(type='RestorativeHead', criterion='mse'),
                 loss_weights=dict(res=2.5), data_preprocessor=_PRE)
    x, target, _ = _batch()
    model.eval()  # BatchNorm on running statistics: the rerun below is the same function
    losses = model.loss([x], _samples(target))
    assert set(losses) == {'loss_res'}
    rec = model.ssl.backbone(x)
    torch.testing.assert_close(losses['loss_res'], 2.5 * ((rec - target) ** 2).mean())
    # `di` on RestorationOnly has nothing to train: a clear error
    di = DiRA(discriminative=dict(type='RestorationOnly', backbone=backbone),
              data_preprocessor=_PRE)
    with pytest.raises(RuntimeError, match='model.restorative'):
        di.loss([x], _samples(target))


def test_transvw_total_is_weighted_ce_plus_mse():
    torch.manual_seed(4)
    model = DiRA(
        discriminative=dict(type='SelfClassification', backbone=_BACKBONE,
                            head=dict(type='TransVWClsHead', in_channels=8, num_classes=3,
                                      mid_channels=6)),
        restorative=dict(type='RestorativeHead'),
        loss_weights=dict(dis=0.01, res=1.0), data_preprocessor=_PRE)
    x, target, labels = _batch()
    model.train()
    losses = model.loss([x], _samples(target, labels))
    assert set(losses) == {'loss_cls', 'acc_cls', 'loss_res'}
    ssl = model.ssl  # train mode: BatchNorm uses the batch statistics, so a rerun is equal
    feats = ssl.backbone.forward_encoder(x)
    logits = ssl.head(feats[-1])
    ce = F.nll_loss(F.log_softmax(logits, 1), torch.tensor(labels))
    mse = ((ssl.backbone.forward_decoder(feats) - target) ** 2).mean()
    torch.testing.assert_close(losses['loss_cls'], 0.01 * ce)
    torch.testing.assert_close(losses['loss_res'], mse)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    torch.testing.assert_close(total, 0.01 * ce + mse)
    acc = (logits.argmax(1) == torch.tensor(labels)).float().mean()
    torch.testing.assert_close(losses['acc_cls'], acc)
    # `di`: classification alone, weight 1 by default
    di = DiRA(discriminative=dict(type='SelfClassification', backbone=_BACKBONE,
                                  head=dict(type='TransVWClsHead', in_channels=8,
                                            num_classes=3, mid_channels=6)),
              data_preprocessor=_PRE)
    assert set(di.loss([x], _samples(target, labels))) == {'loss_cls', 'acc_cls'}
    with pytest.raises(ValueError, match='gt_label'):
        di.loss([x], _samples(target))


def test_dira_transvw_train_step_runs_generator_and_discriminator():
    from mmengine.optim import OptimWrapper, OptimWrapperDict
    torch.manual_seed(5)
    model = DiRA(
        discriminative=dict(type='SelfClassification', backbone=_BACKBONE,
                            head=dict(type='TransVWClsHead', in_channels=8, num_classes=3,
                                      mid_channels=6)),
        restorative=dict(type='RestorativeHead'),
        adversarial=dict(discriminator=dict(type='ToyDisc3D')),
        loss_weights=dict(dis=0.01, res=1.0, adv=0.001), data_preprocessor=_PRE)
    x, target, labels = _batch()
    ow = OptimWrapperDict(
        generator=OptimWrapper(torch.optim.SGD(model.ssl.parameters(), lr=0.1)),
        discriminator=OptimWrapper(torch.optim.SGD(model.discriminator.parameters(), lr=0.1)))
    before = [p.detach().clone() for p in model.discriminator.parameters()]
    log = model.train_step(dict(inputs=[x], data_samples=_samples(target, labels)), ow)
    assert {'loss_cls', 'loss_res', 'loss_adv', 'loss_d'} <= set(log)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.discriminator.parameters()))


@MODELS.register_module(force=True)
class ToyDisc3D(nn.Module):
    """A one-layer 3-D patch critic (until the n-D PatchDiscriminator lands)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 1, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


def test_restoration_only_runs_encoder_once():
    model = RestorationOnly(backbone=_BACKBONE)
    enc = model.backbone.encoder_module
    counter = []

    def counted():
        counter.append(1)
        return enc()
    model.backbone.encoder_module = counted
    x, _, _ = _batch()
    losses, rec = model.loss_and_restore([x])
    assert losses == {} and rec.shape == x.shape and len(counter) == 1
    torch.testing.assert_close(rec, model.backbone(x))


# --------------------------------------------------------------------------- configs
GENESIS_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'genesis', '*.py')))
TRANSVW_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'transvw', '*.py')))


def _build(path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(path)
    init_default_scope('dira_mm')
    return cfg, MODELS.build(cfg.model)


def test_there_are_genesis_and_transvw_configs():
    names = {osp.basename(p) for p in GENESIS_CONFIGS + TRANSVW_CONFIGS}
    assert {'genesis_unet3d_1xb6-sgd-steplr_luna16.py',
            'transvw_unet3d_1xb64-adam-steplr_luna16.py',
            'dira-transvw_unet3d_1xb64-adam-adam-steplr_luna16.py'} <= names
    assert sum(n.endswith('_demo.py') for n in names) == 3


def test_published_settings_of_the_luna16_configs():
    cfg, model = _build(osp.join(REPO, 'configs', 'genesis',
                                 'genesis_unet3d_1xb6-sgd-steplr_luna16.py'))
    assert type(model.ssl).__name__ == 'RestorationOnly' and model.discriminator is None
    assert model.loss_weights['res'] == 1.0 and model.restorative.criterion == 'mse'
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(19.07e6, rel=1e-3)
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == ('SGD', 1.0, 0.9, 0.0)
    assert [(s.type, s.step_size, s.gamma, s.by_epoch) for s in cfg.param_scheduler] == \
        [('StepLR', 40, 0.5, True)]
    assert cfg.train_dataloader.batch_size == 6
    assert cfg.default_hooks.checkpoint.save_best == 'loss'
    assert any(h.type == 'EarlyStoppingHook' and h.patience == 50 for h in cfg.custom_hooks)
    del model

    cfg, model = _build(osp.join(REPO, 'configs', 'transvw',
                                 'transvw_unet3d_1xb64-adam-steplr_luna16.py'))
    head = model.ssl.head
    assert type(model.ssl).__name__ == 'SelfClassification'
    assert (head.in_channels, head.mid_channels, head.num_classes) == (512, 1024, 44)
    assert model.loss_weights == dict(dis=0.01, res=1.0, adv=0.0)
    assert (cfg.optim_wrapper.optimizer.type, cfg.optim_wrapper.optimizer.lr) == ('Adam', 1e-3)
    assert cfg.param_scheduler[0].step_size == 40 and cfg.train_dataloader.batch_size == 64
    del model

    cfg, model = _build(osp.join(REPO, 'configs', 'transvw',
                                 'dira-transvw_unet3d_1xb64-adam-adam-steplr_luna16.py'))
    assert model.loss_weights == dict(dis=0.01, res=1.0, adv=0.001)
    assert model.discriminator.spatial_dims == 3
    assert model.discriminator(torch.zeros(1, 1, 64, 64, 32)).shape == (1, 1, 8, 8, 4)
    assert set(cfg.optim_wrapper.keys()) >= {'generator', 'discriminator'}


@pytest.mark.parametrize('path', [p for p in GENESIS_CONFIGS + TRANSVW_CONFIGS
                                  if p.endswith('_demo.py')],
                         ids=lambda p: osp.basename(p))
def test_demo_configs_build(path):
    cfg, model = _build(path)
    assert model.ssl.backbone.spatial_dims == 3
    x = torch.rand(2, 1, 32, 32, 16)
    model.eval()
    assert model(x, mode='predict').shape == x.shape


# ----------------------------------------------------------------------- Runner run
def _tiny_transvw_data(root):
    """8 tiny HU volumes -> transvw_discover.py (3 classes x 4, 16x16x8 crops)."""
    import sys
    sys.path.insert(0, osp.join(REPO, 'tools', 'misc'))
    import transvw_discover as td
    import numpy as np
    rng = np.random.default_rng(0)
    vols = root / 'vols'
    vols.mkdir()
    for i in range(8):
        np.save(vols / f'p{i}.npy', (rng.random((28, 28, 14)) * 2000 - 1000).astype('float32'))
    td.main([str(vols), '--val', str(vols), '--out', str(root / 'vw'), '--num-classes', '3',
             '--top-k', '4', '--top-k-val', '2', '--crop-size', '16', '16', '8', '--border',
             '2', '2', '1', '--no-air-filter', '--feature-source', 'intensity',
             '--feature-size', '8', '8', '4', '--quiet'])
    return root / 'vw'


def test_tiny_transvw_trains_through_the_runner(tmp_path):
    """The TransVW demo config at test size: 12 instances, batch 4, one epoch + validation."""
    import json
    from mmengine.config import Config
    from mmengine.runner import Runner
    from dira_mm.utils import isolate_run
    data = _tiny_transvw_data(tmp_path)
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'transvw',
                                   'transvw_unet3d-slim_1xb8-adam-steplr-10e_demo.py'))
    cfg.merge_from_dict({
        'model.discriminative.backbone.base_channels': 4,
        'model.discriminative.head.in_channels': 64,
        'model.discriminative.head.mid_channels': 16,
        'model.discriminative.head.num_classes': 3,
    })
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].batch_size = 4
        cfg[key].num_workers = 0
        cfg[key].dataset.data_root = str(data)
        cfg[key].dataset.num_classes = 3
    cfg.train_cfg.max_epochs = 1
    cfg.train_cfg.val_interval = 1
    cfg.work_dir = str(tmp_path / 'run')
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    cfg.custom_hooks = []
    cfg.default_hooks.logger.interval = 1
    isolate_run(cfg, 'transvw_tiny')  # own logger/visualizer: later runs must not share them
    runner = Runner.from_cfg(cfg)
    runner.train()
    scalars = [json.loads(line) for line in open(
        osp.join(runner.log_dir, 'vis_data', 'scalars.json'))]
    train = [r for r in scalars if 'loss_cls' in r and 'lr' in r]
    assert len(train) == 3  # 12 instances / batch 4
    for r in train:
        assert r['loss'] == pytest.approx(r['loss_cls'] + r['loss_res'], rel=1e-4)
        assert 0 <= r['acc_cls'] <= 1
        # lambda_cls 0.01 of a 3-class cross-entropy near log(3) at initialisation
        assert 0.005 < r['loss_cls'] < 0.03
    val = [r for r in scalars if 'loss' in r and 'lr' not in r]
    assert val and all(np.isfinite(r['loss']) for r in val)
    assert osp.isfile(osp.join(cfg.work_dir, 'epoch_1.pth'))
