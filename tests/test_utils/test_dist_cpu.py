"""CPU distributed launch: config adaptation (unit) and a real 2-process gloo run."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import dira_mm.utils.dist as dist_module  # noqa: E402
from dira_mm.utils.dist import setup_cpu_distributed  # noqa: E402
from helpers import free_port  # noqa: E402

TOY_CFG = str(ROOT / 'tests' / 'data' / 'configs' / 'toy_2proc.py')
TORCHRUN_ENV = dict(RANK='1', WORLD_SIZE='2', LOCAL_RANK='1', MASTER_ADDR='127.0.0.1',
                    MASTER_PORT='29999')


@pytest.fixture
def fake_group(monkeypatch):
    """Torchrun variables set, no CUDA, and a recorded (not real) process-group init."""
    for key, value in TORCHRUN_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(dist_module.torch_dist, 'is_initialized', lambda: False)
    calls = []
    monkeypatch.setattr(dist_module.torch_dist, 'init_process_group',
                        lambda **kwargs: calls.append(kwargs))
    return calls


def test_default_wrapper_is_created_with_device_ids_none(fake_group):
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl', timeout=60)),
                      find_unused_parameters=True))
    assert setup_cpu_distributed(cfg, 'pytorch') is True
    assert cfg.env_cfg.dist_cfg.backend == 'gloo' and cfg.env_cfg.dist_cfg.timeout == 60
    assert cfg.model_wrapper_cfg == dict(type='MMDistributedDataParallel', device_ids=None,
                                         broadcast_buffers=False,
                                         find_unused_parameters=True)
    assert len(fake_group) == 1
    call = fake_group[0]
    assert call['backend'] == 'gloo' and call['rank'] == 1 and call['world_size'] == 2
    assert call['timeout'].total_seconds() == 60


def test_existing_wrapper_type_is_kept(fake_group):
    cfg = Config(dict(model_wrapper_cfg=dict(type='MMSeparateDistributedDataParallel',
                                             broadcast_buffers=False)))
    setup_cpu_distributed(cfg, 'pytorch')
    assert cfg.model_wrapper_cfg == dict(type='MMSeparateDistributedDataParallel',
                                         broadcast_buffers=False, device_ids=None)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'


def test_separate_ddp_passes_device_ids_to_children(monkeypatch):
    # MMSeparateDistributedDataParallel forwards **kwargs (device_ids=None) to each
    # per-child MMDistributedDataParallel; check it on the class, without a group.
    from mmengine.model.wrappers import seperate_distributed as sep
    seen = []
    monkeypatch.setattr(sep, 'MMDistributedDataParallel',
                        lambda module, **kwargs: seen.append(kwargs) or module)
    model = torch.nn.Module()
    model.child = torch.nn.Linear(2, 2)
    model.frozen = torch.nn.Linear(2, 2).requires_grad_(False)
    sep.MMSeparateDistributedDataParallel(model, device_ids=None)
    assert seen == [dict(broadcast_buffers=False, find_unused_parameters=False,
                         device_ids=None)]


def test_noop_without_launcher_or_with_cuda(fake_group, monkeypatch):
    cfg = Config(dict())
    assert setup_cpu_distributed(cfg, 'none') is False
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert setup_cpu_distributed(cfg, 'pytorch') is False
    assert 'model_wrapper_cfg' not in cfg and 'env_cfg' not in cfg and fake_group == []


def test_clear_errors(fake_group, monkeypatch):
    monkeypatch.delenv('MASTER_PORT')
    with pytest.raises(RuntimeError, match=r"MASTER_PORT.*dist_train\.sh"):
        setup_cpu_distributed(Config(dict()), 'pytorch')
    with pytest.raises(RuntimeError, match='not supported without CUDA'):
        setup_cpu_distributed(Config(dict()), 'mpi')


def test_slurm_env(fake_group, monkeypatch):
    for key in TORCHRUN_ENV:
        monkeypatch.delenv(key)
    monkeypatch.setenv('SLURM_PROCID', '3')
    monkeypatch.setenv('SLURM_NTASKS', '4')
    monkeypatch.setenv('SLURM_LOCALID', '1')
    monkeypatch.setenv('MASTER_ADDR', 'node0')
    setup_cpu_distributed(Config(dict()), 'slurm')
    assert fake_group[0]['rank'] == 3 and fake_group[0]['world_size'] == 4
    assert os.environ['LOCAL_RANK'] == '1' and os.environ['MASTER_PORT'] == '29500'


def _launch(script: str, args: list, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()),
               OMP_NUM_THREADS='1')
    return subprocess.run(['bash', str(ROOT / 'tools' / script)] + args, cwd=str(tmp_path),
                          env=env, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize('wrapper', [None, 'MMSeparateDistributedDataParallel'])
def test_two_process_gloo_training(tmp_path, wrapper):
    work_dir = tmp_path / 'work'
    args = [TOY_CFG, '2', '--work-dir', str(work_dir)]
    if wrapper is not None:
        args += ['--cfg-options', f'model_wrapper_cfg.type={wrapper}']
    result = _launch('dist_train.sh', args, tmp_path)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    ranks = [torch.load(work_dir / f'weights_rank{r}.pth', weights_only=True) for r in (0, 1)]
    assert [r['rank'] for r in ranks] == [0, 1] and ranks[0]['world_size'] == 2
    for key, value in ranks[0]['state_dict'].items():
        assert torch.equal(value, ranks[1]['state_dict'][key]), key
    ckpt = torch.load(work_dir / 'epoch_2.pth', weights_only=True)
    for key, value in ckpt['state_dict'].items():
        assert torch.equal(value, ranks[0]['state_dict'][key]), key
    dumped = Config.fromfile(str(work_dir / 'toy_2proc.py'))
    assert dumped.env_cfg.dist_cfg.backend == 'gloo'
    assert dumped.model_wrapper_cfg.device_ids is None
    if wrapper is None:
        # Evaluate the checkpoint with 2 processes as well.
        test = _launch('dist_test.sh', [TOY_CFG, str(work_dir / 'epoch_2.pth'), '2',
                                        '--work-dir', str(tmp_path / 'test')], tmp_path)
        assert test.returncode == 0, (test.stdout + test.stderr)[-4000:]
        assert 'toy/loss' in test.stdout
