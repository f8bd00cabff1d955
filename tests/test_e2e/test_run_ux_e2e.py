"""What a run leaves behind, on one 3-epoch tiny DiRA run (adversary from epoch 2, grids
every 2 epochs): each validation's own loss in scalars.json, the last epoch's grid with
column titles, no best-by-loss checkpoint, the stage of a warm-up checkpoint in
tools/test.py, and the run summary."""
import glob
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.runner import Runner

from dira_mm.registry import HOOKS
from dira_mm.visualization import title_band
from conftest import REPO, tiny_config
from helpers import load_tool, read_scalars


@HOOKS.register_module(force=True)
class RecordValMetricsHook(Hook):
    """Keeps the metrics of every validation (what the best-checkpoint choice sees)."""

    priority = 'LOWEST'

    def __init__(self):
        self.metrics = []

    def after_val_epoch(self, runner, metrics=None):
        self.metrics.append(dict(metrics))


def _log_text(work_dir):
    (path, ) = glob.glob(osp.join(work_dir, '*', '*.log'))
    with open(path) as f:
        return f.read()


@pytest.fixture(scope='module')
def run3(demo_data, tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('ux') / 'run')
    cfg = tiny_config(demo_data, work_dir, mode='dira', epochs=3, adversarial_begin=1)
    cfg.custom_hooks = cfg.custom_hooks + [dict(type='RecordValMetricsHook')]
    runner = Runner.from_cfg(cfg)
    runner.train()
    (recorder, ) = [h for h in runner.hooks if isinstance(h, RecordValMetricsHook)]
    return runner, recorder.metrics


def test_logged_val_loss_is_each_validations_own(run3):
    runner, metrics = run3
    val = [r for r in read_scalars(runner.work_dir, single=True) if 'iter' not in r]
    assert [r['step'] for r in val] == [1, 2, 3]
    losses = [m['loss'] for m in metrics]
    for row, m in zip(val, metrics):
        for key in ('loss', 'loss_dis', 'loss_res'):
            assert row[key] == pytest.approx(m[key], rel=1e-6), (row['step'], key)
    # the test can tell: mmengine's running mean of the validations differs here
    assert abs(np.mean(losses[:2]) - losses[1]) > 1e-4
    assert abs(np.mean(losses) - losses[2]) > 1e-4
    # the epoch-3 validation line of the log shows the epoch-3 value
    line = next(x for x in _log_text(runner.work_dir).splitlines()
                if 'Epoch(val) [3]' in x and 'loss' in x)
    assert f'loss: {losses[2]:.4f}' in line


def test_last_epoch_grid_with_column_titles(run3):
    runner, _ = run3
    pngs = sorted(osp.basename(p) for p in glob.glob(osp.join(runner.work_dir, 'vis', '*.png')))
    # interval 2 in a 3-epoch run: epoch 2, and epoch 3 because it is the last
    assert pngs == ['reconstruction_epoch_2.png', 'reconstruction_epoch_3.png']
    grid = cv2.imread(osp.join(runner.work_dir, 'vis', 'reconstruction_epoch_3.png'),
                      cv2.IMREAD_GRAYSCALE)
    # 16-px title band over 4 rows of 64-px (input | distorted | restored | target)
    assert grid.shape == (16 + 4 * 64, 4 * 64)
    band = grid[:16]
    np.testing.assert_array_equal(
        band, title_band([64] * 4, ['input', 'distorted', 'restored', 'target'], 16))
    for col in range(4):  # every column has its title drawn (white text on black)
        assert (band[:, col * 64:(col + 1) * 64] > 128).sum() > 20, col


def test_default_keeps_no_best_by_loss_checkpoint(run3):
    runner, _ = run3
    assert not glob.glob(osp.join(runner.work_dir, 'best_*.pth'))
    assert osp.isfile(osp.join(runner.work_dir, 'epoch_3.pth'))
    # the documented flag restores the official rule: best by the lowest validation loss
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'dira', 'dira_mocov2_demo.py'))
    cfg.merge_from_dict({'default_hooks.checkpoint.save_best': 'loss'})
    hook = HOOKS.build(cfg.default_hooks.checkpoint)
    assert hook.save_best == ['loss'] and hook.rules == ['less']
    assert hook.is_better_than['loss'](5.7, 6.37)


def test_test_tool_evaluates_in_the_checkpoint_stage(run3, tmp_path):
    runner, metrics = run3
    config = osp.join(runner.work_dir, osp.basename(runner.cfg.filename))
    tool = load_tool('test')
    got = {}
    for epoch in (1, 2):
        got[epoch] = tool.main([
            config, osp.join(runner.work_dir, f'epoch_{epoch}.pth'),
            '--work-dir', str(tmp_path / f'test{epoch}'), '--cfg-options',
            f'visualizer.name=ux_test_vis{epoch}', f'experiment_name=ux_test_exp{epoch}'])
    # each checkpoint records the stage it trained in
    stages = [torch.load(osp.join(runner.work_dir, f'epoch_{e}.pth'), map_location='cpu',
                         weights_only=True)['meta']['adversarial_enabled'] for e in (1, 2, 3)]
    assert stages == [False, True, True]
    # epoch 1 trained in the warm-up (adversary from epoch index 1): no loss_adv, as in
    # training's own validation of that epoch
    assert 'loss_adv' not in got[1] and 'loss_adv' not in metrics[0]
    assert got[1]['loss'] == pytest.approx(metrics[0]['loss'], rel=1e-5)
    assert 'loss_adv' in got[2] and got[2]['loss'] == pytest.approx(metrics[1]['loss'], rel=1e-5)


def test_stage_of_checkpoints_without_the_record():
    """Older checkpoints: the stage of their last trained epoch (iteration)."""
    from dira_mm.engine.hooks import DiRAStageHook
    hook = DiRAStageHook(adversarial_begin=2)
    assert [hook.checkpoint_stage(dict(epoch=e)) for e in (1, 2, 3)] == [False, False, True]
    assert hook.checkpoint_stage(dict(epoch=1, adversarial_enabled=True)) is True
    assert hook.checkpoint_stage({}) is None
    by_iter = DiRAStageHook(adversarial_begin=10, by_epoch=False)
    assert [by_iter.checkpoint_stage(dict(epoch=1, iter=i)) for i in (10, 11)] == [False, True]


def test_run_summary(run3):
    runner, _ = run3
    text = _log_text(runner.work_dir)
    summary = text[text.index('Run summary'):]
    work_dir = runner.work_dir
    last = osp.join(work_dir, 'epoch_3.pth')
    assert f'work_dir: {work_dir}' in summary
    assert f'last checkpoint: {last}' in summary
    assert 'best checkpoint: none kept' in summary
    assert f'pictures: 2 PNG in {osp.join(work_dir, "vis")}' in summary
    # final losses: the means over the last epoch's 4 iterations
    hub = runner.message_hub
    line = next(x for x in summary.splitlines() if 'final training losses' in x)
    assert "mean of the last epoch's 4 iterations" in line
    for key in ('loss', 'loss_dis', 'loss_res', 'loss_adv', 'loss_d'):
        values = hub.log_scalars[f'train/{key}'].data[0][-4:]
        assert f'{key} {np.mean(values):.4f}' in line, key
    config = osp.join(work_dir, osp.basename(runner.cfg.filename))
    assert f'python tools/test.py {config} {last}' in summary
    assert (f'python tools/model_converters/extract_unet.py {last} '
            f'{osp.join(work_dir, "unet.pth")} --format smp') in summary
    assert f'python tools/analysis_tools/plot_curves.py {work_dir}' in summary


def test_run_summary_names_best_checkpoints():
    """CheckpointHook's and ProbeHook's best checkpoints, with metric, score and epoch."""
    from types import SimpleNamespace

    from mmengine.hooks import CheckpointHook

    from dira_mm.engine.hooks import RunSummaryHook
    hub = MessageHub.get_instance('ux_summary_best')
    hub.update_info('best_ckpt', '/w/best_loss_epoch_2.pth')
    hub.update_info('best_score', 5.7)
    hub.update_info('probe_best_ckpt_knn_auc', '/w/best_probe_knn_auc_epoch_4.pth')
    hub.update_info('probe_best_score_knn_auc', 83.15)
    runner = SimpleNamespace(message_hub=hub,
                             hooks=[CheckpointHook(save_best='loss', rule='less')])
    assert RunSummaryHook.best_checkpoints(runner) == [
        ('loss', '/w/best_loss_epoch_2.pth', 5.7, 'epoch 2'),
        ('probe/knn_auc', '/w/best_probe_knn_auc_epoch_4.pth', 83.15, 'epoch 4')]
