"""Distributed training on CPU-only machines (gloo), which mmengine 0.10.7 cannot start.

With ``--launcher pytorch`` and no CUDA, mmengine's ``init_dist`` calls
``torch.cuda.set_device`` and its DDP wrapper gets ``device_ids=[LOCAL_RANK]``; both fail
on CPU. :func:`setup_cpu_distributed` initialises a gloo process group from the launcher's
environment *before* the Runner is built (mmengine then skips its own initialisation
because ``is_distributed()`` is true) and makes the wrapper config carry
``device_ids=None``. On machines with CUDA it does nothing: mmengine's normal path (nccl)
is used.
"""
import datetime
import os
import subprocess
from typing import Any, Optional

import torch
import torch.distributed as torch_dist
from torch.nn.parallel import DistributedDataParallel

__all__ = ['setup_cpu_distributed', 'cpu_dist_env', 'teardown_distributed']

_TORCHRUN_VARS = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')


def _slurm_env() -> dict:
    """RANK/WORLD_SIZE/LOCAL_RANK/MASTER_* for a process started by ``srun``."""
    missing = [k for k in ('SLURM_PROCID', 'SLURM_NTASKS') if k not in os.environ]
    if missing:
        raise RuntimeError(
            f'--launcher slurm needs the SLURM variables {missing}; start the job with srun '
            '(tools/slurm_train.sh).')
    env = {
        'RANK': os.environ['SLURM_PROCID'],
        'WORLD_SIZE': os.environ['SLURM_NTASKS'],
        'LOCAL_RANK': os.environ.get('SLURM_LOCALID', '0'),
        'MASTER_PORT': os.environ.get('MASTER_PORT', '29500'),
    }
    if 'MASTER_ADDR' in os.environ:
        env['MASTER_ADDR'] = os.environ['MASTER_ADDR']
    else:
        node_list = os.environ['SLURM_NODELIST']
        out = subprocess.getoutput(f'scontrol show hostname {node_list} | head -n1')
        env['MASTER_ADDR'] = out.strip()
    return env


def cpu_dist_env(launcher: str) -> dict:
    """The rank/world-size/master variables of the current process for ``launcher``.

    Args:
        launcher: ``'pytorch'`` (torchrun: the variables are read from the environment)
            or ``'slurm'`` (derived from ``SLURM_*`` as mmengine does).

    Raises:
        RuntimeError: a variable is missing, with how to launch the job instead.
    """
    if launcher == 'pytorch':
        missing = [k for k in _TORCHRUN_VARS if k not in os.environ]
        if missing:
            raise RuntimeError(
                f'--launcher pytorch needs the variables torchrun sets ({missing} are '
                'missing); start the job with tools/dist_train.sh CONFIG N_PROCS or torchrun.')
        return {k: os.environ[k] for k in _TORCHRUN_VARS}
    if launcher == 'slurm':
        return _slurm_env()
    raise RuntimeError(
        f'--launcher {launcher} is not supported without CUDA; use --launcher pytorch '
        '(tools/dist_train.sh) or --launcher slurm on CPU machines.')


def _cfg_get(cfg: Any, key: str, default: Any = None) -> Any:
    return cfg.get(key, default) if hasattr(cfg, 'get') else default


def _is_ddp_wrapper(wrapper_type: Any) -> bool:
    """Whether ``wrapper_type`` (a name or a class) is a DistributedDataParallel."""
    if isinstance(wrapper_type, str):
        from mmengine.registry import MODEL_WRAPPERS as ROOT_WRAPPERS

        from dira_mm.registry import MODEL_WRAPPERS
        name = wrapper_type
        wrapper_type = ROOT_WRAPPERS.get(name) or MODEL_WRAPPERS.get(name)
        if wrapper_type is None:  # unknown here: mmengine raises later with the name
            return True
    return isinstance(wrapper_type, type) and issubclass(wrapper_type,
                                                         DistributedDataParallel)


def setup_cpu_distributed(cfg: Any, launcher: str) -> bool:
    """Start a gloo process group and adapt ``cfg`` for DDP on CPU.

    Does nothing when ``launcher == 'none'`` or CUDA is available. Otherwise sets
    ``cfg.env_cfg.dist_cfg.backend = 'gloo'``, gives ``cfg.model_wrapper_cfg`` (created as
    ``MMDistributedDataParallel`` if absent, with mmengine's defaults
    ``broadcast_buffers=False`` and ``find_unused_parameters=cfg.find_unused_parameters``)
    ``device_ids=None`` (an existing type such as ``MMSeparateDistributedDataParallel``
    is kept; it passes ``device_ids`` on to each per-child DDP), and initialises the
    process group from the launcher's environment if it is not initialised yet.

    Args:
        cfg: the mmengine ``Config`` (changed in place).
        launcher: ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.

    Returns:
        True if the CPU path was taken.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    env = cpu_dist_env(launcher)
    for key, value in env.items():
        os.environ.setdefault(key, str(value))

    env_cfg = _cfg_get(cfg, 'env_cfg') or {}
    dist_cfg = dict(env_cfg.get('dist_cfg') or {})
    dist_cfg['backend'] = 'gloo'
    env_cfg = dict(env_cfg, dist_cfg=dist_cfg)
    cfg['env_cfg'] = env_cfg

    wrapper_cfg: Optional[dict] = _cfg_get(cfg, 'model_wrapper_cfg')
    if wrapper_cfg is None:
        wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=_cfg_get(cfg, 'find_unused_parameters', False))
    else:
        wrapper_cfg = dict(wrapper_cfg)
        wrapper_cfg.setdefault('type', 'MMDistributedDataParallel')
    if _is_ddp_wrapper(wrapper_cfg['type']):
        # mmengine adds device_ids=[LOCAL_RANK] only as a default, so this None wins.
        wrapper_cfg['device_ids'] = None
    cfg['model_wrapper_cfg'] = wrapper_cfg

    if not torch_dist.is_initialized():
        kwargs = {}
        timeout = dist_cfg.get('timeout')
        if timeout is not None:
            kwargs['timeout'] = datetime.timedelta(seconds=timeout)
        torch_dist.init_process_group(
            backend='gloo', init_method='env://', rank=int(env['RANK']),
            world_size=int(env['WORLD_SIZE']), **kwargs)
    return True


def teardown_distributed() -> None:
    """Wait for every rank, then destroy the default process group (if there is one).

    mmengine never destroys the group. A process that exits with a live gloo group can
    abort at interpreter shutdown (``terminate called without an active exception``,
    SIGABRT), which torchrun reports as a failed job although training finished.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
