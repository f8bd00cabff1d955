"""TransVW and Models Genesis as DiRA compositions: head, losses by value, configs."""
import glob
import os.path as osp

import pytest
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
    x = torch.rand(n, 1, 8, 8, 4, generator=g)
    target = torch.rand(n, 1, 8, 8, 4, generator=g)
    labels = torch.randint(0, classes, (n, ), generator=g).tolist()
    return x, target, labels


_PRE = dict(type='DiRADataPreprocessor', num_channels=1)
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
def test_models_genesis_loss_is_lambda_res_mse():
    torch.manual_seed(3)
    model = DiRA(discriminative=dict(type='RestorationOnly', backbone=_BACKBONE),
                 restorative=dict(type='RestorativeHead', criterion='mse'),
                 loss_weights=dict(res=2.5), data_preprocessor=_PRE)
    x, target, _ = _batch()
    losses = model.loss([x], _samples(target))
    assert set(losses) == {'loss_res'}
    rec = model.ssl.backbone(x)
    torch.testing.assert_close(losses['loss_res'], 2.5 * ((rec - target) ** 2).mean())
    # `di` on RestorationOnly has nothing to train: a clear error
    di = DiRA(discriminative=dict(type='RestorationOnly', backbone=_BACKBONE),
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
