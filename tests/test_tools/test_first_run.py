"""A new user's first commands: a Python without torch gets told which environment to use."""
import os.path as osp
import subprocess
import sys

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))

# Hide torch from this interpreter, as a system Python without the venv would.
_NO_TORCH = (
    'import importlib.util as u, sys\n'
    'orig = u.find_spec\n'
    "u.find_spec = lambda name, *a, **k: None if name == 'torch' else orig(name, *a, **k)\n"
    f'sys.path.insert(0, {REPO!r})\n'
    'import dira_mm\n')


def test_import_without_torch_names_the_environment():
    result = subprocess.run([sys.executable, '-c', _NO_TORCH], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('ImportError: dira_mm needs PyTorch'), result.stderr
    assert sys.executable in last
    if osp.isdir(osp.join(REPO, '.venv')):
        assert f'. {osp.join(REPO, ".venv")}/bin/activate' in last
    else:
        assert 'make install' in last


def test_dist_launcher_falls_back_to_the_repository_venv(tmp_path):
    """tools/dist_train.sh uses the repository's .venv when no environment is active."""
    import os
    import shutil
    root = tmp_path / 'repo'
    (root / 'tools').mkdir(parents=True)
    shutil.copy(osp.join(REPO, 'tools', 'dist_common.sh'), root / 'tools')
    fake = root / '.venv' / 'bin' / 'python'
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/bin/sh\necho "venv python $*"\n')
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHON', 'VIRTUAL_ENV')}
    env['PATH'] = '/usr/bin:/bin'  # no torchrun
    out = subprocess.run(
        ['bash', '-c', f'source {root}/tools/dist_common.sh && run_torchrun 2 train.py CFG'],
        env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith('venv python -m torch.distributed.run'), out.stdout
    assert '--nproc_per_node=2' in out.stdout and out.stdout.rstrip().endswith(
        f'{root}/tools/train.py CFG --launcher pytorch')
