"""DiRA with two CPU processes (gloo) through tools/dist_train.sh."""
import os.path as osp
import re

import torch
from mmengine.registry import DefaultScope
from torch import nn

from conftest import REPO, tiny_config
from helpers import dist_train


def test_two_process_gloo_dira(demo_data, tmp_path):
    work_dir = str(tmp_path / 'work')
    cfg = tiny_config(demo_data, work_dir, mode='dira', epochs=1, adversarial_begin=0)
    log = dist_train(cfg, tmp_path, 'tiny_dira', timeout=300)
    assert 'world_size: 2' in log and 'GPU number: 0' in log  # CPU printout (DiraRunner)
    # torch's deprecation of the argument mmengine's DDP wrapper passes is silenced (preflight)
    assert '`broadcast_buffers` is deprecated' not in log
    # discriminator steps ran under MMSeparateDistributedDataParallel ('loss_d: ' exactly,
    # not 'loss_dis')
    assert re.search(r'\bloss_d: ', log), log[-4000:]
    ckpt = torch.load(osp.join(work_dir, 'epoch_1.pth'), map_location='cpu', weights_only=True)
    # 17 images over 2 ranks x batch 4 (drop_last): 2 iterations, each enqueues the 8 keys
    # gathered from both ranks
    assert int(ckpt['state_dict']['ssl.queue_ptr']) == 16


def test_two_process_gloo_dira_barlowtwins_global_bn(demo_data, tmp_path):
    """DiRA-Barlow Twins under DDP on CPU: global-batch BN and cross-correlation in a real
    training run (every BatchNorm is a GlobalBatchNorm; the adversary is on)."""
    from conftest import demo_config_at_test_size
    work_dir = str(tmp_path / 'work')
    path = osp.join(REPO, 'configs', 'dira', 'dira_barlow_demo.py')
    cfg = demo_config_at_test_size(path, demo_data, work_dir)
    log = dist_train(cfg, tmp_path, 'tiny_barlow', timeout=300)
    assert 'world_size: 2' in log and re.search(r'\bloss_d: ', log), log[-4000:]
    ckpt = torch.load(osp.join(work_dir, 'epoch_1.pth'), map_location='cpu', weights_only=True)
    state = ckpt['state_dict']
    # BN running statistics are the same on both ranks only because they are global; the
    # saved ones must have moved from their initial values
    key = 'ssl.backbone.encoder.bn1.running_mean'
    assert key in state and state[key].abs().sum() > 0
    # the model of this run's config: Barlow Twins converts every BatchNorm of its backbone
    # (encoder and decoder), neck and head to GlobalBatchNorm when it is built
    from dira_mm.registry import MODELS
    with DefaultScope.overwrite_default_scope('dira_mm'):
        model = MODELS.build(cfg.model)
    norms = [(f'{part}.{name}', type(m).__name__)
             for part in ('backbone', 'neck', 'head')
             if getattr(model.ssl, part, None) is not None
             for name, m in getattr(model.ssl, part).named_modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert any(name.startswith('backbone.encoder.') for name, _ in norms), norms
    assert any(name.startswith('neck.') for name, _ in norms), norms
    assert all(kind == 'GlobalBatchNorm' for _, kind in norms), norms
    assert 'backbone.encoder.bn1' in dict(norms)
