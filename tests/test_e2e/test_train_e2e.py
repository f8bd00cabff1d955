"""End to end on CPU: di / dir / dira, the stage switch, resume, the two-run flow, bad input."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from dira_mm.models.utils import unwrap
from dira_mm.registry import HOOKS
from conftest import tiny_config
from helpers import read_scalars


def _train(cfg):
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


@pytest.mark.parametrize('mode', ['di', 'dir', 'dira'])
def test_modes_train_end_to_end(demo_data, tmp_path, mode):
    cfg = tiny_config(demo_data, str(tmp_path / mode), mode=mode, epochs=2,
                      adversarial_begin=0)
    # the official rule (not the default): keep the best checkpoint by validation loss
    cfg.default_hooks.checkpoint.save_best = 'loss'
    runner = _train(cfg)
    rows = [r for r in read_scalars(cfg.work_dir) if 'momentum' in r]
    assert len(rows) == 2 * 4  # 16 images / batch 4, 2 epochs
    keys = set().union(*rows)
    expected = {'di': {'loss_dis'}, 'dir': {'loss_dis', 'loss_res'},
                'dira': {'loss_dis', 'loss_res', 'loss_adv', 'loss_d'}}[mode]
    assert expected <= keys
    assert all(torch.isfinite(torch.tensor(r['loss'])) for r in rows)
    assert osp.isfile(osp.join(cfg.work_dir, 'epoch_2.pth'))
    assert glob.glob(osp.join(cfg.work_dir, 'best_loss_epoch_*.pth'))
    val = [r for r in read_scalars(cfg.work_dir) if 'loss' in r and 'momentum' not in r]
    assert len(val) == 2  # validation every epoch
    if mode != 'di':
        pngs = glob.glob(osp.join(cfg.work_dir, 'vis', '*.png'))
        # interval=2: one grid, after the validation of epoch 2
        assert [osp.basename(p) for p in pngs] == ['reconstruction_epoch_2.png']
    model = unwrap(runner.model)
    assert int(model.ssl.queue_ptr) == (2 * 4 * 4) % 32


def test_stage_switch_turns_the_adversary_on(demo_data, tmp_path):
    cfg = tiny_config(demo_data, str(tmp_path / 'staged'), mode='dira', epochs=2,
                      adversarial_begin=1)
    _train(cfg)
    rows = [r for r in read_scalars(cfg.work_dir) if 'momentum' in r]
    first, second = rows[:4], rows[4:]
    assert not any('loss_d' in r or 'loss_adv' in r for r in first)
    assert all('loss_d' in r and 'loss_adv' in r for r in second)


@HOOKS.register_module(force=True)
class KillAfterEpochHook(Hook):
    """Simulates a killed run: stop right after the checkpoint of epoch ``at``."""

    priority = 'LOWEST'

    def __init__(self, at):
        self.at = at

    def after_train_epoch(self, runner):
        if runner.epoch + 1 == self.at:
            raise KeyboardInterrupt('killed')


def test_kill_and_resume_gives_the_same_losses(demo_data, tmp_path):
    full = tiny_config(demo_data, str(tmp_path / 'full'), mode='dira', epochs=4,
                       adversarial_begin=2)
    runner = _train(full)
    ref_state = {k: v.clone() for k, v in unwrap(runner.model).state_dict().items()}
    ref = [r for r in read_scalars(full.work_dir) if 'momentum' in r]

    killed = tiny_config(demo_data, str(tmp_path / 'killed'), mode='dira', epochs=4,
                         adversarial_begin=2)
    killed.custom_hooks = killed.custom_hooks + [dict(type='KillAfterEpochHook', at=3)]
    with pytest.raises(KeyboardInterrupt):
        _train(killed)
    assert osp.isfile(osp.join(killed.work_dir, 'epoch_3.pth'))
    assert not osp.isfile(osp.join(killed.work_dir, 'epoch_4.pth'))

    resumed = tiny_config(demo_data, str(tmp_path / 'killed'), mode='dira', epochs=4,
                          adversarial_begin=2)
    resumed.resume = True  # tools/train.py --resume (auto: latest checkpoint of the work_dir)
    runner = _train(resumed)
    got = [r for r in read_scalars(resumed.work_dir) if 'momentum' in r]
    ref_by_iter = {r['iter']: r for r in ref}
    got_by_iter = {r['iter']: r for r in got}
    assert sorted(got_by_iter) == sorted(ref_by_iter)
    for it in sorted(ref_by_iter):
        for key in ('loss', 'loss_dis', 'loss_res', 'loss_adv', 'loss_d', 'generator.lr'):
            if key in ref_by_iter[it]:
                assert got_by_iter[it][key] == pytest.approx(ref_by_iter[it][key], rel=1e-5,
                                                             abs=1e-6), (it, key)
    state = unwrap(runner.model).state_dict()
    for k, v in ref_state.items():
        assert torch.allclose(state[k].float(), v.float(), atol=1e-5), k


def test_official_two_run_flow_loads_the_warmup_checkpoint(demo_data, tmp_path):
    warm = tiny_config(demo_data, str(tmp_path / 'dir'), mode='dir', epochs=1)
    runner = _train(warm)
    queue = unwrap(runner.model).ssl.queue.clone()
    ckpt = osp.join(warm.work_dir, 'epoch_1.pth')

    full = tiny_config(demo_data, str(tmp_path / 'dira'), mode='dira', epochs=1,
                       adversarial_begin=0)
    full.load_from = ckpt

    class _Probe(Hook):
        def before_train(self, runner):
            model = unwrap(runner.model)
            self.queue = unwrap(model.ssl).queue.clone()
            self.ptr = int(unwrap(model.ssl).queue_ptr)

    probe = _Probe()
    dira_runner = Runner.from_cfg(full)
    dira_runner.register_hook(probe)
    dira_runner.train()
    assert torch.equal(probe.queue, queue)  # the warm-up queue (and pointer) are restored
    assert probe.ptr == int(unwrap(runner.model).ssl.queue_ptr)


def test_corrupt_image_is_skipped_counted_and_logged(demo_data, tmp_path):
    import shutil
    root = tmp_path / 'data'
    shutil.copytree(demo_data, root)
    with open(root / 'broken.png', 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + b'\x00' * 20)  # a truncated PNG
    lines = open(root / 'train.txt').read().splitlines()
    lines.insert(3, 'broken.png ' + ' '.join(['0'] * 14))
    open(root / 'train.txt', 'w').write('\n'.join(lines) + '\n')
    cfg = tiny_config(str(root), str(tmp_path / 'run'), mode='dir', epochs=1)
    runner = _train(cfg)
    assert runner.message_hub.get_scalar('train/skipped_images').current() >= 1
    log = open(glob.glob(osp.join(cfg.work_dir, '*', '*.log'))[0]).read()
    assert 'broken.png' in log
