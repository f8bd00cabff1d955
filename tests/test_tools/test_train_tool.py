"""tools/train.py and tools/test.py on the toy config: train, resume, AMP config, metrics.

--amp on CPU (and its float16 refusal) is tested in tests/test_engine/test_amp_cpu.py.
"""
import json
import os
import shutil
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from helpers import load_tool

ROOT = Path(__file__).resolve().parents[2]
TOY_CFG = str(ROOT / 'tests' / 'data' / 'configs' / 'toy_2proc.py')


train_tool = load_tool('train')


def _run(tool: str, args: list, cwd) -> subprocess.CompletedProcess:
    # the repo root makes the toy config's `custom_imports` (tests.data.toy_modules)
    # importable, whether dira_mm is installed (CI: pip install -e) or not
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / 'tools' / tool)] + args, cwd=str(cwd),
                          env=env, capture_output=True, text=True, timeout=180)


def _weights(work_dir: Path) -> dict:
    return torch.load(work_dir / 'weights_rank0.pth', weights_only=True)['state_dict']


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """An uninterrupted 2-epoch toy run through tools/train.py."""
    tmp = tmp_path_factory.mktemp('train')
    result = _run('train.py', [TOY_CFG, '--work-dir', str(tmp / 'full')], tmp)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return tmp / 'full'


def test_train_runs_and_saves_plain_checkpoints(trained):
    for name in ('epoch_1.pth', 'epoch_2.pth'):
        assert torch.serialization.get_unsafe_globals_in_checkpoint(trained / name) == []
    assert (trained / 'last_checkpoint').read_text().strip().endswith('epoch_2.pth')


def test_auto_resume_matches_uninterrupted_run(trained, tmp_path):
    # An "interrupted" work_dir: only the epoch-1 checkpoint, recorded as the latest one.
    # (Stopping with train_cfg.max_epochs=1 instead would also change the schedulers'
    # default ``end``, which mmengine then restores from the checkpoint.)
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    shutil.copy(trained / 'epoch_1.pth', work_dir / 'epoch_1.pth')
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'epoch_1.pth'))
    resumed = _run('train.py', [TOY_CFG, '--work-dir', str(work_dir), '--resume'], tmp_path)
    log = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, log[-4000:]
    assert 'resumed epoch: 1' in log and 'restored the random states' in log
    full, again = _weights(trained), _weights(work_dir)
    assert all(torch.equal(full[k], again[k]) for k in full)


def test_resume_from_path(trained, tmp_path):
    ckpt = tmp_path / 'start.pth'
    shutil.copy(trained / 'epoch_1.pth', ckpt)
    result = _run('train.py', [TOY_CFG, '--work-dir', str(tmp_path / 'w'), '--resume',
                               str(ckpt)], tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    full, again = _weights(trained), _weights(tmp_path / 'w')
    assert all(torch.equal(full[k], again[k]) for k in full)


def test_enable_amp_single_and_multi_optimizer():
    single = Config(dict(optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1))))
    train_tool.enable_amp(single, 'bfloat16')
    assert single.optim_wrapper.type == 'AutoAmpOptimWrapper'
    assert single.optim_wrapper.loss_scale == 'dynamic'
    assert single.optim_wrapper.dtype == 'bfloat16'

    multi = Config(dict(optim_wrapper=dict(
        constructor='MultiOptimWrapperConstructor',
        generator=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3)),
        discriminator=dict(optimizer=dict(type='Adam', lr=1e-4), loss_scale=512.))))
    train_tool.enable_amp(multi)
    for key, scale in (('generator', 'dynamic'), ('discriminator', 512.)):
        assert multi.optim_wrapper[key].type == 'AutoAmpOptimWrapper'
        assert multi.optim_wrapper[key].loss_scale == scale
    assert multi.optim_wrapper.constructor == 'MultiOptimWrapperConstructor'

    custom = Config(dict(optim_wrapper=dict(type='MyWrapper', optimizer=dict(type='SGD'))))
    with pytest.raises(ValueError, match='optim_wrapper.type'):
        train_tool.enable_amp(custom)


def _args(**kwargs) -> Namespace:
    base = dict(config=TOY_CFG, work_dir=None, resume=None, amp=False, amp_dtype=None,
                cfg_options=None, launcher='none')
    base.update(kwargs)
    return Namespace(**base)


def test_cli_to_config():
    cfg = train_tool.build_cfg(_args())
    assert cfg.work_dir == os.path.join('./work_dirs', 'toy_2proc')
    assert cfg.resume is False and cfg.load_from is None and cfg.launcher == 'none'
    cfg = train_tool.build_cfg(_args(work_dir='/tmp/x', resume='auto',
                                     cfg_options={'work_dir': '/tmp/cfg'}))
    assert cfg.work_dir == '/tmp/x' and cfg.resume is True and cfg.load_from is None
    cfg = train_tool.build_cfg(_args(resume='a.pth', cfg_options={'work_dir': '/tmp/cfg'}))
    assert cfg.work_dir == '/tmp/cfg' and cfg.load_from == 'a.pth' and cfg.resume is True
    args = train_tool.parse_args([TOY_CFG, '--resume', '--local-rank', '0'])
    assert args.resume == 'auto'


def test_test_tool_prints_and_dumps_metrics(trained, tmp_path):
    out = tmp_path / 'metrics.json'
    result = _run('test.py', [TOY_CFG, str(trained / 'epoch_2.pth'), '--work-dir',
                              str(tmp_path / 'w'), '--out', str(out)], tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    assert 'toy/loss:' in result.stdout and 'validation set' in result.stdout
    metrics = json.loads(out.read_text())
    assert isinstance(metrics['toy/loss'], float)
