"""Global-batch paths in real 2-process gloo groups on CPU: each distributed result must
equal the one-process computation on the concatenated batch."""
import copy
import os

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp

from helpers import free_port

WORLD = 2


def _inputs():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, 4, 4, generator=g) * 2 + 1  # for BatchNorm2d
    w = torch.randn(8, 3, 4, 4, generator=g)  # a fixed per-sample weighting for the loss
    z1 = torch.randn(8, 6, generator=g) * 3 + 1
    z2 = torch.randn(8, 6, generator=g) + z1
    return x, w, z1, z2


def _global_bn_case(x, w, rank=None):
    """Output, input gradient and running stats of a (Global)BatchNorm2d on ``x``."""
    from dira_mm.models.utils import convert_global_batchnorm
    torch.manual_seed(1)
    bn = convert_global_batchnorm(torch.nn.BatchNorm2d(3))
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-1, 1)
    x = x.clone().requires_grad_(True)
    y = bn(x)
    (y * w).sum().backward()
    return dict(y=y.detach(), gx=x.grad, gw=bn.weight.grad, rm=bn.running_mean.clone(),
                rv=bn.running_var.clone())


def _barlow_case(z1, z2):
    from dira_mm.models import CrossCorrelationHead
    z1 = z1.clone().requires_grad_(True)
    z2 = z2.clone().requires_grad_(True)
    head = CrossCorrelationHead()
    c = head.cross_correlation(z1, z2)
    loss = head.criterion(c)
    loss.backward()
    return dict(c=c.detach(), loss=loss.detach(), g1=z1.grad, g2=z2.grad)


def _moco_case(views):
    """MoCo with global BN instead of shuffle-BN (the SyncBN option)."""
    from dira_mm.models import MoCo
    torch.manual_seed(0)
    model = MoCo(backbone=dict(type='ResNetUNet', encoder_name='resnet18', with_decoder=False),
                 neck=dict(type='MoCoV2Neck', in_channels=512, hid_channels=16,
                           out_channels=8),
                 head=dict(type='ContrastiveHead', temperature=0.2), queue_len=32, feat_dim=8,
                 shuffle_bn=False, global_bn=True)
    model.init_weights()
    model.train()
    loss = model.loss(views, update_state=True)['loss_dis'].detach()
    return dict(loss=loss, queue=model.queue.clone())


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch_dist.init_process_group('gloo', rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    try:
        x, w, z1, z2 = _inputs()
        sl = slice(rank * 4, rank * 4 + 4)
        res = dict(bn=_global_bn_case(x[sl], w[sl]), barlow=_barlow_case(z1[sl], z2[sl]))
        g = torch.Generator().manual_seed(5)
        views = [torch.rand(8, 3, 32, 32, generator=g) for _ in range(2)]
        res['moco'] = _moco_case([v[sl] for v in views])
        gw = res['bn']['gw'].clone()
        torch_dist.all_reduce(gw)  # the parameter gradient summed over processes
        res['bn']['gw_sum'] = gw
        torch.save(res, f'{out}.{rank}')
    finally:
        torch_dist.destroy_process_group()


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('ssl_dist') / 'res')
    mp.spawn(_worker, args=(free_port(), out), nprocs=WORLD, join=True)
    return [torch.load(f'{out}.{r}', weights_only=True) for r in range(WORLD)]


def _cat(results, *keys):
    return torch.cat([r[keys[0]][keys[1]] for r in results])


def test_global_batchnorm_equals_batchnorm_on_the_global_batch(results):
    x, w, _, _ = _inputs()
    ref = _global_bn_case(x, w)
    assert torch.allclose(_cat(results, 'bn', 'y'), ref['y'], atol=1e-5)
    assert torch.allclose(_cat(results, 'bn', 'gx'), ref['gx'], atol=1e-5)
    for r in results:
        assert torch.allclose(r['bn']['rm'], ref['rm'], atol=1e-6)
        assert torch.allclose(r['bn']['rv'], ref['rv'], atol=1e-5)
        assert torch.allclose(r['bn']['gw_sum'], ref['gw'], atol=1e-4)


def test_barlow_cross_correlation_and_gradients_are_global(results):
    _, _, z1, z2 = _inputs()
    ref = _barlow_case(z1, z2)
    for r in results:
        assert torch.allclose(r['barlow']['c'], ref['c'], atol=1e-5)
        assert r['barlow']['loss'].item() == pytest.approx(ref['loss'].item(), rel=1e-5)
    # each process's input gradient is the global loss's gradient for its samples
    assert torch.allclose(_cat(results, 'barlow', 'g1'), ref['g1'], atol=1e-5)
    assert torch.allclose(_cat(results, 'barlow', 'g2'), ref['g2'], atol=1e-5)


def test_moco_with_global_bn_matches_one_process(results):
    g = torch.Generator().manual_seed(5)
    views = [torch.rand(8, 3, 32, 32, generator=g) for _ in range(2)]
    ref = _moco_case(views)
    mean = sum(r['moco']['loss'] for r in results) / WORLD
    assert mean.item() == pytest.approx(ref['loss'].item(), rel=1e-4)
    # the queue receives the keys of the global batch in rank order on every process
    for r in results:
        assert torch.allclose(r['moco']['queue'], ref['queue'], atol=1e-5)
