"""Barlow Twins, SimSiam and BYOL: losses against hand-computed values, published
shapes, EMA maths, and each method under DiRA by configuration only."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import nn

from dira_mm.models import (BYOL, BarlowTwins, CosineSimilarityLoss, CrossCorrelationHead,
                            CrossCorrelationLoss, DiRA, GlobalBatchNorm, LatentPredictHead,
                            NonLinearNeck, SimSiam, convert_global_batchnorm)
from dira_mm.structures import DiRADataSample

TINY_BACKBONE = dict(type='ResNetUNet', encoder_name='resnet18',
                     decoder_channels=(32, 16, 16, 8, 8))


def tiny_cfg(method: str) -> dict:
    """A tiny algorithm config with the published layer structure, narrow widths."""
    if method == 'BarlowTwins':
        return dict(type='BarlowTwins', backbone=TINY_BACKBONE,
                    neck=dict(type='NonLinearNeck', in_channels=512, hid_channels=32,
                              out_channels=32, num_layers=3, with_bias=False,
                              with_last_bias=False),
                    head=dict(type='CrossCorrelationHead',
                              loss=dict(type='CrossCorrelationLoss', lambd=5.1e-3)))
    if method == 'SimSiam':
        return dict(type='SimSiam', backbone=TINY_BACKBONE,
                    neck=dict(type='NonLinearNeck', in_channels=512, hid_channels=32,
                              out_channels=32, num_layers=3, with_bias=False,
                              with_last_bias=False, with_last_bn=True, last_bn_affine=False),
                    head=dict(type='LatentPredictHead',
                              predictor=dict(type='NonLinearNeck', in_channels=32,
                                             hid_channels=8, out_channels=32,
                                             with_avg_pool=False),
                              loss=dict(type='CosineSimilarityLoss')))
    return dict(type='BYOL', backbone=TINY_BACKBONE, base_momentum=0.99,
                neck=dict(type='NonLinearNeck', in_channels=512, hid_channels=32,
                          out_channels=16, with_bias=True),
                head=dict(type='LatentPredictHead',
                          predictor=dict(type='NonLinearNeck', in_channels=16, hid_channels=32,
                                         out_channels=16, with_bias=True,
                                         with_avg_pool=False),
                          loss=dict(type='CosineSimilarityLoss', shift=2.0, scale=2.0)))


def build(method: str, **kw):
    from dira_mm.registry import MODELS
    torch.manual_seed(0)
    cfg = tiny_cfg(method)
    cfg.update(kw)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def batch(n=4, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    views = [torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=g)
             for _ in range(2)]
    ds = [DiRADataSample(target=torch.randint(0, 256, (1, size, size), dtype=torch.uint8,
                                              generator=g)) for _ in range(n)]
    return dict(inputs=views, data_samples=ds)


# ----------------------------------------------------------------------------- losses
def test_cross_correlation_loss_hand_computed():
    c = torch.tensor([[0.5, 0.2], [0.1, 0.9]])
    # on-diagonal (1-.5)^2 + (1-.9)^2 = .26; off-diagonal .2^2 + .1^2 = .05
    assert CrossCorrelationLoss(lambd=0.5)(c).item() == pytest.approx(0.26 + 0.5 * 0.05)
    assert CrossCorrelationLoss()(torch.eye(3)).item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match='square'):
        CrossCorrelationLoss()(torch.zeros(2, 3))
    with pytest.raises(ValueError, match='lambd'):
        CrossCorrelationLoss(lambd=-1)


def test_cross_correlation_head_matches_hand_computation():
    z1 = torch.tensor([[1., 2.], [3., 0.], [5., 1.]])
    z2 = torch.tensor([[0., 1.], [2., 2.], [1., 6.]])
    head = CrossCorrelationHead(loss=dict(type='CrossCorrelationLoss', lambd=0.1), eps=0.0)
    # by hand: per-column standardisation with the biased std
    def std(z):
        m = z.mean(0)
        return (z - m) / ((z - m).pow(2).mean(0)).sqrt()
    a, b = std(z1), std(z2)
    c = torch.stack([torch.stack([(a[:, i] * b[:, j]).sum() / 3 for j in range(2)])
                     for i in range(2)])
    assert torch.allclose(head.cross_correlation(z1, z2), c, atol=1e-6)
    expected = (1 - c[0, 0])**2 + (1 - c[1, 1])**2 + 0.1 * (c[0, 1]**2 + c[1, 0]**2)
    assert head.loss(z1, z2).item() == pytest.approx(expected.item(), rel=1e-5)
    # identical, decorrelated views: C is the identity and the loss is 0
    z = torch.tensor([[1., 1.], [1., -1.], [-1., 1.], [-1., -1.]])
    assert CrossCorrelationHead(eps=0.0).loss(z, z).item() == pytest.approx(0.0, abs=1e-10)
    with pytest.raises(ValueError, match='at least 2'):
        head.loss(z1[:1], z2[:1])


def test_cosine_similarity_loss_simsiam_and_byol_values_and_stop_gradient():
    pred = torch.tensor([[1., 0.], [1., 1.]], requires_grad=True)
    target = torch.tensor([[0., 3.], [2., 2.]], requires_grad=True)
    # cosines 0 and 1
    assert CosineSimilarityLoss()(pred, target).item() == pytest.approx(-0.5)
    loss = CosineSimilarityLoss(shift=2, scale=2)(pred, target)
    assert loss.item() == pytest.approx(1.0)
    loss.backward()
    assert target.grad is None and pred.grad is not None
    # d/dp (2 - 2 cos(p, t)) for p=(1,0), t=(0,1): -2 * (t/|t| - cos p/|p|) / |p| / 2 (mean)
    assert torch.allclose(pred.grad[0], torch.tensor([0., -1.]))


# ----------------------------------------------------------------------------- necks
def test_nonlinear_neck_published_structures():
    barlow = NonLinearNeck(2048, 8192, 8192, num_layers=3, with_bias=False,
                           with_last_bias=False)
    kinds = [type(m).__name__ for m in barlow.mlp]
    assert kinds == ['Linear', 'BatchNorm1d', 'ReLU'] * 2 + ['Linear']
    assert all(m.bias is None for m in barlow.mlp if isinstance(m, nn.Linear))
    assert [m.out_features for m in barlow.mlp if isinstance(m, nn.Linear)] == [8192] * 3
    simsiam = NonLinearNeck(2048, 2048, 2048, num_layers=3, with_bias=False,
                            with_last_bias=False, with_last_bn=True, last_bn_affine=False)
    assert type(simsiam.mlp[-1]).__name__ == 'BatchNorm1d' and not simsiam.mlp[-1].affine
    pred = NonLinearNeck(2048, 512, 2048, num_layers=2, with_bias=False, with_avg_pool=False)
    linears = [m for m in pred.mlp if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(2048, 512), (512, 2048)]
    assert linears[0].bias is None and linears[1].bias is not None
    x = torch.randn(3, 2048, 2, 2)
    neck = NonLinearNeck(2048, 4, 4, num_layers=1)
    assert torch.allclose(neck([x]), neck(x.mean((2, 3))), atol=1e-6)
    with pytest.raises(ValueError, match='num_layers'):
        NonLinearNeck(num_layers=0)


def test_global_batchnorm_is_batchnorm_in_one_process():
    torch.manual_seed(0)
    bn = nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3), nn.Sequential(nn.BatchNorm1d(4)))
    ref = copy.deepcopy(bn)
    conv = convert_global_batchnorm(bn)
    assert isinstance(conv[1], GlobalBatchNorm) and isinstance(conv[2][0], GlobalBatchNorm)
    assert conv[1].weight is ref[1].weight or torch.equal(conv[1].weight, ref[1].weight)
    x = torch.randn(5, 2, 3, 3)
    assert torch.allclose(conv[1](conv[0](x)), ref[1](ref[0](x)), atol=1e-6)
    assert torch.allclose(conv[1].running_var, ref[1].running_var)
    conv.eval(), ref.eval()
    assert torch.allclose(conv[1](conv[0](x)), ref[1](ref[0](x)), atol=1e-6)
    assert isinstance(convert_global_batchnorm(nn.BatchNorm1d(3)), GlobalBatchNorm)


# ----------------------------------------------------------------------------- methods
def test_barlowtwins_loss_is_the_head_on_projections_and_bn_is_global():
    model = build('BarlowTwins')
    assert any(isinstance(m, GlobalBatchNorm) for m in model.backbone.modules())
    assert not any(type(m) is nn.BatchNorm1d for m in model.neck.modules())
    model.train()
    data = model.data_preprocessor(batch(), True)
    ref = copy.deepcopy(model)
    loss = model.loss(data['inputs'])['loss_dis']
    z1 = ref.neck(ref.backbone.forward_encoder(data['inputs'][0]))
    z2 = ref.neck(ref.backbone.forward_encoder(data['inputs'][1]))
    bn = lambda z: F.batch_norm(z, None, None, training=True)  # noqa: E731
    c = bn(z1).T @ bn(z2) / z1.shape[0]
    off = c.pow(2).sum() - c.diagonal().pow(2).sum()
    assert loss.item() == pytest.approx(((c.diagonal() - 1)**2).sum().item()
                                        + 5.1e-3 * off.item(), rel=1e-5)


def test_simsiam_symmetric_loss_with_stop_gradient():
    model = build('SimSiam')
    model.train()
    data = model.data_preprocessor(batch(), True)
    ref = copy.deepcopy(model)
    loss = model.loss(data['inputs'])['loss_dis']
    z1 = ref.neck(ref.backbone.forward_encoder(data['inputs'][0]))
    z2 = ref.neck(ref.backbone.forward_encoder(data['inputs'][1]))
    p1, p2 = ref.head.predictor(z1), ref.head.predictor(z2)
    expected = -0.5 * (F.cosine_similarity(p1, z2).mean() + F.cosine_similarity(p2, z1).mean())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert -1.0 <= loss.item() <= 1.0


def test_byol_target_is_an_ema_of_encoder_and_projector_only():
    model = build('BYOL')
    target = model.momentum_encoder.module
    assert set(dict(target.named_children())) == {'encoder', 'neck'}
    assert all(torch.equal(a, b) for a, b in zip(target.parameters(),
                                                  model.momentum_source().parameters()))
    assert all(not p.requires_grad for p in target.parameters())
    model.train()
    out = model.train_step(batch(), OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5)))
    assert set(out) == {'loss', 'loss_dis'} and 0.0 <= out['loss'].item() <= 8.0
    before = [p.clone() for p in target.parameters()]
    online = [p.clone() for p in model.momentum_source().parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(before, online))
    model.momentum_update(0.9)
    for t0, o, t1 in zip(before, online, target.parameters()):
        assert torch.allclose(t1, 0.9 * t0 + 0.1 * o, atol=1e-6)


def test_byol_loss_matches_hand_computation():
    model = build('BYOL')
    model.train()
    data = model.data_preprocessor(batch(), True)
    ref = copy.deepcopy(model)
    loss = model.loss(data['inputs'])['loss_dis']
    online = [ref.head.predictor(ref.neck(ref.backbone.forward_encoder(v)))
              for v in data['inputs']]
    tnet = ref.momentum_encoder.module
    with torch.no_grad():
        tgt = [tnet['neck'](tnet['encoder'](v)) for v in data['inputs']]
    expected = sum((2 - 2 * F.cosine_similarity(q, t)).mean()
                   for q, t in ((online[0], tgt[1]), (online[1], tgt[0])))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert BYOL.online_views == (0, 1)
    with pytest.raises(ValueError, match='base_momentum'):
        build('BYOL', base_momentum=1.5)


@pytest.mark.parametrize('method', ['BarlowTwins', 'SimSiam', 'BYOL'])
def test_each_method_runs_under_dira_by_configuration(method):
    torch.manual_seed(0)
    model = DiRA(discriminative=tiny_cfg(method),
                 restorative=dict(type='RestorativeHead'),
                 adversarial=dict(discriminator=dict(type='PatchDiscriminator',
                                                     channels=(4, 8, 8, 8))))
    model.init_weights()
    model.train()
    optims = OptimWrapperDict(
        generator=OptimWrapper(torch.optim.SGD(model.ssl.parameters(), lr=0.01)),
        discriminator=OptimWrapper(torch.optim.Adam(model.discriminator.parameters(),
                                                    lr=2e-4)))
    enc = [p.clone() for p in model.ssl.backbone.parameters()]
    disc = [p.clone() for p in model.discriminator.parameters()]
    out = model.train_step(batch(), optims)
    assert {'loss', 'loss_dis', 'loss_res', 'loss_adv', 'loss_d'} <= set(out)
    assert all(math.isfinite(float(v.detach())) for v in out.values())
    assert any(not torch.equal(a, b) for a, b in zip(enc, model.ssl.backbone.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(disc, model.discriminator.parameters()))
    # validation: deterministic, and restores view 0 from the same encoder pass
    model.eval()
    assert model.val_step(batch())[0]['loss'] == model.val_step(batch())[0]['loss']
