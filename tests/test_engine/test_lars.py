"""LARS: hand-computed updates, exclusions, argument checks, and the two LARS schedules."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from torch import nn
from torch.testing import assert_close

from dira_mm.engine import LARS
from dira_mm.registry import OPTIMIZERS, PARAM_SCHEDULERS

SCHEDULES = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                     'configs', '_base_', 'schedules')


def _param(values, grad=None):
    p = nn.Parameter(torch.tensor(values))
    if grad is not None:
        p.grad = torch.tensor(grad)
    return p


def test_single_step_trust_ratio_and_weight_decay():
    # g + wd * p = [0.6, 0.8] (norm 1); q = 0.1 * ||p|| / 1 = 0.5; p -= 1 * 0.5 * [0.6, 0.8]
    p = _param([[3., 4.]], [[0.3, 0.4]])
    LARS([p], lr=1.0, weight_decay=0.1, eta=0.1).step()
    assert_close(p.data, torch.tensor([[2.7, 3.6]]))

    # no weight decay: q = 0.1 * 5 / 1; p -= 0.5 * 0.5 * [0.6, 0.8]
    p = _param([[3., 4.]], [[0.6, 0.8]])
    LARS([p], lr=0.5, eta=0.1).step()
    assert_close(p.data, torch.tensor([[2.85, 3.8]]))


def test_two_steps_with_momentum():
    p = _param([[3., 4.]], [[0.3, 0.4]])
    opt = LARS([p], lr=1.0, momentum=0.9, weight_decay=0.1, eta=0.1)
    opt.step()  # mu = [0.3, 0.4], p = [2.7, 3.6] (see above)
    opt.step()  # g + wd p = [0.57, 0.76] (norm 0.95), q = 0.45 / 0.95 -> [0.27, 0.36]
    assert_close(opt.state[p]['momentum_buffer'], torch.tensor([[0.54, 0.72]]))
    assert_close(p.data, torch.tensor([[2.16, 2.88]]))


def test_1d_params_excluded():
    # no weight decay, no trust ratio, lr * lr_1d_mult; the 2-D weight is unaffected
    b = _param([1., -2.], [0.5, 0.5])
    w = _param([[3., 4.]], [[0.6, 0.8]])
    opt = LARS([b, w], lr=1.0, momentum=0.9, weight_decay=0.1, eta=0.1, lr_1d_mult=0.5)
    opt.step()
    assert_close(b.data, torch.tensor([0.75, -2.25]))
    opt.step()  # mu = 0.9 * 0.5 + 0.5 = 0.95; b -= 0.5 * 0.95
    assert_close(b.data, torch.tensor([0.275, -2.725]))
    # w after step 1: g + wd p = [0.9, 1.2] (norm 1.5), q = 0.5 / 1.5 -> [0.3, 0.4]
    w2 = _param([[3., 4.]], [[0.6, 0.8]])
    LARS([w2], lr=1.0, weight_decay=0.1, eta=0.1).step()
    assert_close(w2.data, torch.tensor([[2.7, 3.6]]))

    # exclude_1d=False: a 1-D param is a LARS param like any other, lr_1d_mult unused
    b = _param([3., 4.], [0.6, 0.8])
    LARS([b], lr=0.5, eta=0.1, exclude_1d=False, lr_1d_mult=0.5).step()
    assert_close(b.data, torch.tensor([2.85, 3.8]))


def test_lars_exclude_group_override():
    w = _param([[3., 4.]], [[0.6, 0.8]])
    b = _param([3., 4.], [0.6, 0.8])
    LARS([dict(params=[w], lars_exclude=True), dict(params=[b], lars_exclude=False)],
         lr=0.5, weight_decay=0.1, eta=0.1, lr_1d_mult=0.5).step()
    # forced out: plain momentum SGD at the group lr (lr_1d_mult is for the 1-D rule only)
    assert_close(w.data, torch.tensor([[2.7, 3.6]]))
    # forced in: g + wd p = [0.9, 1.2] (norm 1.5), q = 0.5 / 1.5; p -= 0.5 * [0.3, 0.4]
    assert_close(b.data, torch.tensor([2.85, 3.8]))


def test_zero_norms_and_missing_grads():
    zero_p = _param([[0., 0.]], [[1., 2.]])  # ||p|| = 0 -> q = 1
    zero_g = _param([[3., 4.]], [[0., 0.]])  # ||g|| = 0 -> q = 1, no update
    no_grad = _param([[1., 1.]])
    opt = LARS([zero_p, zero_g, no_grad], lr=0.5)
    opt.step()
    assert_close(zero_p.data, torch.tensor([[-0.5, -1.]]))
    assert_close(zero_g.data, torch.tensor([[3., 4.]]))
    assert_close(no_grad.data, torch.tensor([[1., 1.]]))
    assert no_grad not in opt.state
    assert torch.isfinite(opt.state[zero_g]['momentum_buffer']).all()


def test_closure_returns_loss():
    p = _param([[3., 4.]])

    def closure():
        loss = (p ** 2).sum()
        loss.backward()
        return loss

    assert LARS([p], lr=0.1).step(closure).item() == 25.


@pytest.mark.parametrize('kwargs', [
    dict(lr=-0.1), dict(lr='0.1'), dict(momentum=1.0), dict(momentum=-0.1),
    dict(weight_decay=-1e-6), dict(eta=0.), dict(lr_1d_mult=-1.),
    dict(exclude_1d=None), dict(lars_exclude='yes')
])
def test_bad_args(kwargs):
    args = dict(lr=0.1)
    args.update(kwargs)
    with pytest.raises(ValueError, match='LARS'):
        LARS([_param([1.])], **args)


def test_bad_group_arg():
    with pytest.raises(ValueError, match='eta'):
        LARS([dict(params=[_param([1.])], eta=-1.)], lr=0.1)


def test_registry_build():
    p = _param([[3., 4.]], [[0.6, 0.8]])
    opt = OPTIMIZERS.build(dict(type='LARS', params=[p], lr=0.5, eta=0.1))
    assert isinstance(opt, LARS)
    opt.step()
    assert_close(p.data, torch.tensor([[2.85, 3.8]]))


class _Encoder(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        self.bn = nn.BatchNorm2d(2)


class _Adversarial(nn.Module):

    def __init__(self):
        super().__init__()
        self.ssl = _Encoder()
        self.discriminator = nn.Linear(2, 1)


def _check_barlow_rates(encoder: nn.Module, opt: LARS):
    """One step with unit gradients: 1-D params move by 0.0048, the weight by LARS."""
    assert isinstance(opt, LARS) and len(opt.param_groups) == 1
    group = opt.param_groups[0]
    assert group['lr'] == 0.2 and group['weight_decay'] == 1.5e-6
    assert group['momentum'] == 0.9 and group['eta'] == 0.001
    before = {n: p.detach().clone() for n, p in encoder.named_parameters()}
    for p in encoder.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    for name in ('conv.bias', 'bn.weight', 'bn.bias'):  # lr 0.0048, no weight decay
        p = dict(encoder.named_parameters())[name]
        assert_close(p.detach(), before[name] - 0.0048)
    w0, w = before['conv.weight'], encoder.conv.weight.detach()
    d = torch.ones_like(w0) + 1.5e-6 * w0
    assert_close(w, w0 - 0.2 * 0.001 * w0.norm() / d.norm() * d)


def _check_barlow_schedule(cfgs, wrapper, max_epochs, epoch_length=2):
    """Warm-up to the base lr, then cosine to 0.001 x base lr, stepped per iteration."""
    # the runner gives schedulers without an `end` the train loop's max_epochs
    schedulers = [PARAM_SCHEDULERS.build(dict(dict(end=max_epochs), **c, optimizer=wrapper,
                                              epoch_length=epoch_length))
                  for c in cfgs]
    assert all(not s.by_epoch for s in schedulers)  # converted to iterations
    lrs = []
    for _ in range(max_epochs * epoch_length):
        lrs.append(wrapper.param_groups[0]['lr'])
        for s in schedulers:
            s.step()
    assert lrs[0] == pytest.approx(0.2 * 1e-4)
    assert lrs[10 * epoch_length] == pytest.approx(0.2)
    assert max(lrs) == pytest.approx(0.2)
    assert lrs[-1] == pytest.approx(0.2 * 0.001, rel=1e-2)


def test_lars_schedule_config():
    cfg = Config.fromfile(osp.join(SCHEDULES, 'lars_coslr-1200e.py'))
    encoder = _Encoder()
    with DefaultScope.overwrite_default_scope('dira_mm'):
        wrapper = build_optim_wrapper(encoder, cfg.optim_wrapper)
        _check_barlow_rates(encoder, wrapper.optimizer)
        _check_barlow_schedule(cfg.param_scheduler, wrapper, cfg.train_cfg.max_epochs)
    assert cfg.train_cfg.max_epochs == 1200


def test_lars_adam_schedule_config():
    cfg = Config.fromfile(osp.join(SCHEDULES, 'lars-adam_coslr-400e.py'))
    model = _Adversarial()
    with DefaultScope.overwrite_default_scope('dira_mm'):
        wrappers = build_optim_wrapper(model, cfg.optim_wrapper)
        assert set(wrappers.keys()) == set(cfg.param_scheduler.keys())
        gen, dis = wrappers['generator'], wrappers['discriminator']
        _check_barlow_rates(model.ssl, gen.optimizer)
        _check_barlow_schedule(cfg.param_scheduler.generator, gen, cfg.train_cfg.max_epochs)
        assert isinstance(dis.optimizer, torch.optim.Adam)
        group = dis.param_groups[0]
        assert group['lr'] == 2e-4 and tuple(group['betas']) == (0.5, 0.999)
        assert {id(p) for p in group['params']} == {id(p) for p in model.discriminator.parameters()}
        scheds = [PARAM_SCHEDULERS.build(dict(dict(end=400), **c, optimizer=dis))
                  for c in cfg.param_scheduler.discriminator]
        for _ in range(3):
            for s in scheds:
                s.step()
        assert group['lr'] == 2e-4
    assert cfg.train_cfg.max_epochs == 400


def test_lars_exclude_from_paramwise_cfg():
    encoder = _Encoder()
    cfg = dict(optimizer=dict(type='LARS', lr=0.2, lr_1d_mult=0.5),
               paramwise_cfg=dict(custom_keys={'bn': dict(lars_exclude=False)}))
    with DefaultScope.overwrite_default_scope('dira_mm'):
        opt = build_optim_wrapper(encoder, cfg).optimizer
    flags = {id(p): g['lars_exclude'] for g in opt.param_groups for p in g['params']}
    assert flags[id(encoder.bn.weight)] is False and flags[id(encoder.conv.bias)] is None
    for p in encoder.parameters():
        p.grad = torch.ones_like(p)
    bias0, bn0 = encoder.conv.bias.detach().clone(), encoder.bn.weight.detach().clone()
    opt.step()
    assert_close(encoder.conv.bias.detach(), bias0 - 0.2 * 0.5)  # the 1-D rule
    # forced in: trust ratio 0.001 * ||1, 1|| / ||1, 1|| at the full lr
    assert_close(encoder.bn.weight.detach(), bn0 - 0.2 * 0.001)
