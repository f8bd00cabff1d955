"""Helpers shared by the test files: tools loaded as modules, free ports, a run's scalars,
tiny checkpoints. Importable as ``helpers`` (tests/conftest.py puts tests/ on sys.path)."""
import glob
import logging
import importlib.util
import json
import os.path as osp
import socket
import sys
from types import ModuleType
from typing import Dict, List, Optional

import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
E2E_CONFTEST = osp.join(REPO, 'tests', 'test_e2e', 'conftest.py')

__all__ = ['REPO', 'load_module', 'load_tool', 'e2e_helpers', 'free_port', 'read_scalars',
           'dist_train', 'dira_like_checkpoint', 'LogRecords']


def load_module(path: str, name: Optional[str] = None) -> ModuleType:
    """Import the python file ``path`` (a tool, a benchmark) as a module, once per name.

    Tools are scripts, not package modules; they are loaded by path under a name of their
    own (``dira_test_<file>`` by default), cached in ``sys.modules``.
    """
    path = osp.join(REPO, path) if not osp.isabs(path) else path
    name = name or 'dira_test_' + osp.splitext(osp.basename(path))[0]
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def load_tool(*parts: str) -> ModuleType:
    """``tools/<parts>.py`` as a module, e.g. ``load_tool('analysis_tools', 'plot_curves')``."""
    return load_module(osp.join(REPO, 'tools', *parts[:-1], parts[-1] + '.py'),
                       'dira_tools_' + '_'.join(parts))


def e2e_helpers() -> ModuleType:
    """tests/test_e2e/conftest.py (tiny configs of the real recipes) as a module of its
    own name: a bare ``import conftest`` gets whichever conftest pytest imported last."""
    return load_module(E2E_CONFTEST, 'dira_e2e_conftest_helpers')


def free_port() -> int:
    """A TCP port that was free a moment ago (for a process group's MASTER_PORT)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def dist_train(cfg, tmp_path, name: str, procs: int = 2, timeout: int = 300) -> str:
    """Dump ``cfg`` to ``tmp_path/name.py`` and train it with ``tools/dist_train.sh`` on
    ``procs`` CPU processes (gloo, one thread each, a free port); assert it exited 0 and
    return its stdout + stderr."""
    import os
    import subprocess
    cfg_path = osp.join(str(tmp_path), f'{name}.py')
    cfg.dump(cfg_path)
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()), OMP_NUM_THREADS='1')
    result = subprocess.run(['bash', osp.join(REPO, 'tools', 'dist_train.sh'), cfg_path,
                             str(procs)], cwd=str(tmp_path), env=env, capture_output=True,
                            text=True, timeout=timeout)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    return log


def read_scalars(work_dir: str, single: bool = False) -> List[Dict]:
    """The records of a run's ``<timestamp>/vis_data/scalars.json`` (mmengine's
    LocalVisBackend), in file order; ``single``: there must be exactly one such file."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if single and len(files) != 1:
        raise AssertionError(f'expected one scalars.json under {work_dir}, found {files}')
    rows = []
    for path in files:
        with open(path) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


def dira_like_checkpoint(path: str, arch: str = 'resnet18', prefix: str = 'ssl.backbone.',
                         drop: Optional[str] = None, seed: int = 0) -> Dict[str, torch.Tensor]:
    """Save a DiRA-like checkpoint without building a DiRA model: an ``smp.Unet(arch)``
    under ``prefix`` (minus the key ``drop``) beside a neck, a queue, a momentum encoder
    and a discriminator; return the U-Net's state dict (smp keys)."""
    import segmentation_models_pytorch as smp

    torch.manual_seed(seed)
    unet = smp.Unet(arch, encoder_weights=None, classes=1).state_dict()
    state = {prefix + k: v for k, v in unet.items() if k != drop}
    state.update({
        'ssl.neck.mlp.0.weight': torch.randn(8, 512),
        'ssl.momentum_encoder.module.encoder.conv1.weight': torch.randn(64, 3, 7, 7),
        'ssl.queue': torch.randn(8, 16),
        'ssl.queue_ptr': torch.zeros(1, dtype=torch.long),
        'discriminator.model.0.weight': torch.randn(4, 3, 3, 3),
    })
    torch.save({'meta': {'epoch': 1}, 'state_dict': state}, path)
    return unet


class LogRecords(logging.Handler):
    """Collects the messages of the records a logger emits (``mm_logs`` fixture)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())
