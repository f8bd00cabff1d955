"""MoCo-v2 and the DiRA composition: values, state updates, gradient isolation."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper, OptimWrapperDict

from dira_mm.engine.hooks.momentum_update_hook import MomentumUpdateHook
from dira_mm.models import DiRA, MoCo, MomentumEncoder
from dira_mm.structures import DiRADataSample

TINY_BACKBONE = dict(type='ResNetUNet', encoder_name='resnet18',
                     decoder_channels=(32, 16, 16, 8, 8))
TINY_NECK = dict(type='MoCoV2Neck', in_channels=512, hid_channels=32, out_channels=8)


def tiny_moco(queue_len=16, **kw):
    torch.manual_seed(0)
    return MoCo(backbone=TINY_BACKBONE, neck=TINY_NECK,
                head=dict(type='ContrastiveHead', temperature=0.2),
                queue_len=queue_len, feat_dim=8, **kw)


def tiny_dira(**kw):
    torch.manual_seed(0)
    cfg = dict(discriminative=dict(type='MoCo', backbone=TINY_BACKBONE, neck=TINY_NECK,
                                   head=dict(type='ContrastiveHead', temperature=0.2),
                                   queue_len=16, feat_dim=8),
               restorative=dict(type='RestorativeHead'),
               adversarial=dict(discriminator=dict(type='PatchDiscriminator',
                                                   channels=(4, 8, 8, 8))))
    cfg.update(kw)
    return DiRA(**cfg)


def batch(n=4, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    views = [torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=g)
             for _ in range(2)]
    ds = [DiRADataSample(target=torch.randint(0, 256, (1, size, size), dtype=torch.uint8,
                                              generator=g)) for _ in range(n)]
    return dict(inputs=views, data_samples=ds)


def test_moco_infonce_with_queue_matches_hand_computation():
    model = tiny_moco()
    model.train()
    data = model.data_preprocessor(batch(), True)
    views = data['inputs']
    queue0 = model.queue.clone()
    # Hand computation with copies of the same modules (same BN mode, same inputs).
    q_net = copy.deepcopy(model)
    q = F.normalize(q_net.neck(q_net.backbone.encoder(views[0])), dim=1)
    k_net = copy.deepcopy(model.momentum_encoder.module)
    with torch.no_grad():
        k = F.normalize(k_net['neck'](k_net['encoder'](views[1])), dim=1)
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue0], dim=1) / 0.2
    expected = -torch.log_softmax(logits, dim=1)[:, 0].mean()
    loss = model(views, data['data_samples'], mode='loss')['loss_dis']
    assert torch.allclose(loss, expected, atol=1e-5)
    # the 4 keys were enqueued at the pointer; the rest of the queue is untouched
    assert torch.allclose(model.queue[:, :4], k.T, atol=1e-6)
    assert torch.equal(model.queue[:, 4:], queue0[:, 4:])
    assert int(model.queue_ptr) == 4


def test_moco_queue_wraps_around_and_validation_leaves_it():
    model = tiny_moco(queue_len=6)
    keys = F.normalize(torch.randn(4, 8), dim=1)
    model._dequeue_and_enqueue(keys)
    model._dequeue_and_enqueue(keys * 2)
    # 8 keys into a queue of 6: positions 4, 5, 0, 1 hold the second batch
    assert int(model.queue_ptr) == 2
    assert torch.allclose(model.queue[:, [4, 5, 0, 1]], (keys * 2).T)
    assert torch.allclose(model.queue[:, [2, 3]], keys[2:].T)
    queue = model.queue.clone()
    data = model.data_preprocessor(batch(), False)
    model.eval()
    model(data['inputs'], mode='predict')
    assert torch.equal(model.queue, queue) and int(model.queue_ptr) == 2


def test_momentum_encoder_ema_math():
    src = torch.nn.Linear(3, 2)
    ema = MomentumEncoder(src, momentum=0.9)
    assert not any(p.requires_grad for p in ema.parameters())
    k0 = ema.module.weight.clone()
    with torch.no_grad():
        src.weight.add_(1.0)
    ema.update(src)
    assert torch.allclose(ema.module.weight, 0.9 * k0 + 0.1 * src.weight)
    ema.update(src, momentum=0.0)
    assert torch.allclose(ema.module.weight, src.weight)


def test_momentum_hook_constant_and_cosine_schedule():
    hook = MomentumUpdateHook(end_momentum=1.0)
    hook._base = 0.99
    assert math.isclose(hook.current_momentum(0, 100), 0.99)
    assert math.isclose(hook.current_momentum(50, 100), 0.995)
    assert math.isclose(hook.current_momentum(100, 100), 1.0)
    const = MomentumUpdateHook()
    const._base = 0.999
    assert const.current_momentum(37, 100) == 0.999


def test_key_branch_runs_no_decoder_and_copies_only_encoder_and_neck():
    model = tiny_dira()
    keys = model.ssl.momentum_encoder.module.state_dict().keys()
    assert not any('decoder' in k or 'segmentation_head' in k for k in keys)
    calls = []
    model.ssl.backbone.decoder.register_forward_hook(lambda *a: calls.append(1))
    model.train_step(batch(), _optims(model))
    assert len(calls) == 1  # the query view only


def _optims(model):
    return OptimWrapperDict(
        generator=OptimWrapper(torch.optim.SGD(model.ssl.parameters(), lr=0.03, momentum=0.9,
                                               weight_decay=1e-4)),
        discriminator=OptimWrapper(torch.optim.Adam(model.discriminator.parameters(), lr=2e-4,
                                                    betas=(0.5, 0.999))))


def test_dira_generator_loss_is_the_weighted_sum_and_d_is_isolated():
    model = tiny_dira()
    model.train()
    data = batch()
    ref = copy.deepcopy(model)
    # generator losses computed once by the model ...
    proc = ref.data_preprocessor(copy.deepcopy(data), True)
    losses = ref.loss(proc['inputs'], proc['data_samples'])
    # ... equal the hand-weighted components
    rec = ref.ssl.backbone(proc['inputs'][0])
    target = torch.stack([d.target for d in proc['data_samples']])
    assert torch.allclose(losses['loss_res'], 10 * F.mse_loss(rec, target), atol=1e-6)
    d_out = ref.discriminator(rec)
    assert torch.allclose(losses['loss_adv'], 0.001 * ((d_out - 1) ** 2).mean(), atol=1e-7)
    # a generator step alone leaves no gradient in the discriminator
    g_only = OptimWrapper(torch.optim.SGD(model.ssl.parameters(), lr=0.03))
    model.adversarial_enabled = True
    d_before = [p.clone() for p in model.discriminator.parameters()]
    with pytest.raises(KeyError, match='discriminator'):
        model.train_step(copy.deepcopy(data), g_only)
    assert all(p.grad is None for p in model.discriminator.parameters())
    # with both optimizers: D steps once, on real targets vs detached restorations
    optims = _optims(model)
    out = model.train_step(copy.deepcopy(data), optims)
    assert {'loss', 'loss_dis', 'loss_res', 'loss_adv', 'loss_d'} <= set(out)
    assert any(not torch.equal(a, b) for a, b in zip(d_before, model.discriminator.parameters()))
    assert all(p.requires_grad for p in model.discriminator.parameters())


def test_dira_stage_off_has_no_adversarial_term_and_no_d_step():
    model = tiny_dira(adversarial_enabled=False)
    d_before = [p.clone() for p in model.discriminator.parameters()]
    out = model.train_step(batch(), _optims(model))
    assert 'loss_adv' not in out and 'loss_d' not in out
    assert all(torch.equal(a, b) for a, b in zip(d_before, model.discriminator.parameters()))


def test_dira_modes_are_configs():
    di = tiny_dira(restorative=None, adversarial=None)
    out = di.train_step(batch(), OptimWrapper(torch.optim.SGD(di.parameters(), lr=0.01)))
    assert set(out) == {'loss', 'loss_dis'}
    dir_ = tiny_dira(adversarial=None)
    out = dir_.train_step(batch(), OptimWrapper(torch.optim.SGD(dir_.parameters(), lr=0.01)))
    assert set(out) == {'loss', 'loss_dis', 'loss_res'}
    with pytest.raises(ValueError, match='restorative'):
        tiny_dira(restorative=None)
    with pytest.raises(KeyError, match='loss_weights'):
        tiny_dira(loss_weights=dict(foo=1))


def test_dira_validation_is_pure_unless_official():
    model = tiny_dira()
    queue, k = model.ssl.queue.clone(), copy.deepcopy(model.ssl.momentum_encoder.state_dict())
    model.eval()
    a = model.val_step(batch())[0]
    b = model.val_step(batch())[0]
    assert a['loss'] == b['loss']  # deterministic
    assert torch.equal(model.ssl.queue, queue)
    after = model.ssl.momentum_encoder.state_dict()
    assert all(torch.equal(after[name], value) for name, value in k.items())
    official = tiny_dira(official_val=True)
    official.eval()
    q0 = official.ssl.queue.clone()
    official.val_step(batch())
    assert not torch.equal(official.ssl.queue, q0) and int(official.ssl.queue_ptr) == 4
