"""Every demo-size config of the method matrix trains on CPU: MoCo-v2, Barlow Twins,
SimSiam and BYOL, each as di / dir / dira (staged), through mmengine's Runner."""
import glob
import math
import os.path as osp

import pytest
from mmengine.hooks import Hook
from mmengine.runner import Runner

from conftest import REPO, demo_config_at_test_size
from helpers import read_scalars

DEMO_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'dira', 'di*_demo.py')))
DEMO_CONFIGS = [p for p in DEMO_CONFIGS if osp.basename(p).split('_')[0].count('-') >= 1]


class _LRProbe(Hook):
    """Records the lr of every param group at each iteration."""

    def __init__(self):
        self.groups = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        wrapper = runner.optim_wrapper
        wrapper = wrapper['generator'] if 'generator' in getattr(wrapper, 'keys', list)() \
            else wrapper
        self.groups.append([(g['lr'], bool(g.get('fix_lr'))) for g in
                            wrapper.optimizer.param_groups])


def test_the_matrix_is_complete():
    names = {osp.basename(p) for p in DEMO_CONFIGS}
    assert len(names) == 12, sorted(names)


@pytest.mark.parametrize('path', DEMO_CONFIGS, ids=[osp.basename(p) for p in DEMO_CONFIGS])
def test_demo_config_trains(path, demo_data, tmp_path):
    name = osp.basename(path)
    mode = name.split('-')[0]
    cfg = demo_config_at_test_size(path, demo_data, str(tmp_path / 'run'))
    runner = Runner.from_cfg(cfg)
    probe = _LRProbe()
    runner.register_hook(probe, 'LOWEST')
    runner.train()
    rows = read_scalars(cfg.work_dir)
    train = [r for r in rows if 'loss_dis' in r and 'iter' in r and 'lr' in str(r.keys())]
    assert len(train) == 4, rows  # 16 images / batch 4, one epoch
    expected = {'di': {'loss_dis'}, 'dir': {'loss_dis', 'loss_res'},
                'dira': {'loss_dis', 'loss_res', 'loss_adv', 'loss_d'}}[mode]
    assert expected <= set().union(*train)
    assert all(math.isfinite(r['loss']) for r in rows if 'loss' in r)
    assert osp.isfile(osp.join(cfg.work_dir, 'epoch_1.pth'))
    if mode != 'di':
        assert osp.isfile(osp.join(cfg.work_dir, 'vis', 'reconstruction_epoch_1.png'))
    if 'simsiam' in name:  # the predictor's lr stays at the base lr under the schedule
        fixed = [lr for it in probe.groups for lr, fix in it if fix]
        assert fixed and all(lr == pytest.approx(0.05) for lr in fixed)
    if 'byol' in name or 'mocov2' in name:
        assert any('momentum' in r for r in train)
