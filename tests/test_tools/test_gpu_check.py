"""tools/misc/gpu_check.sh: the "no CUDA device" exit on CPU, and its plumbing (--allow-cpu)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import load_tool

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'tools' / 'misc' / 'gpu_check.sh'


gpu_check = load_tool('misc', 'gpu_check')


def _run(args, tmp_path, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHON=sys.executable)
    return subprocess.run(['bash', str(SCRIPT)] + args, cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the no-CUDA exit')
def test_no_cuda_exits_77_with_message(tmp_path):
    result = _run([], tmp_path, timeout=120)
    assert result.returncode == gpu_check.NO_CUDA_EXIT == 77
    assert gpu_check.NO_CUDA_MESSAGE in result.stderr
    assert 'Traceback' not in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing was run or written


def test_ddp_check_runs_on_cpu_with_gloo(tmp_path):
    """The DDP worker under torchrun (2 gloo processes): GlobalBatchNorm equals one
    BatchNorm2d on the whole batch, also on bf16 input under autocast; the table names
    each check."""
    out = tmp_path / 'out'
    result = _run(['--allow-cpu', '--quick', '--only', 'ddp', '--out', str(out)], tmp_path)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    table = json.loads((out / 'gpu_check.json').read_text())
    assert set(table) == {'nccl-syncbn', 'nccl-globalbn', 'nccl-globalbn-amp'}
    amp = table['nccl-globalbn-amp']
    assert amp['ok'] and 'torch.bfloat16 autocast' in amp['detail']
    assert table['nccl-globalbn']['ok'] and not table['nccl-globalbn'].get('skipped')
    assert table['nccl-syncbn']['skipped']  # torch SyncBN needs CUDA
    assert '2 proc gloo' in table['nccl-globalbn']['detail']
    assert 'nccl-globalbn     PASS' in log and 'all checks passed' in log
