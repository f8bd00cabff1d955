"""Helpers the transfer benchmarks share (2-D ``transfer_demo.py``, 3-D ``transfer_demo_3d.py``)."""
import gc
import os.path as osp
import time
from typing import List, Tuple

import numpy as np
from mmengine.config import Config

from dira_mm.utils import iter_dataset_cfgs

__all__ = ['set_data_root', 'last_checkpoint', 'run_pretrain', 'mean_std']


def set_data_root(loader_cfg, data_root: str) -> None:
    """Point every dataset of a dataloader config (through wrappers) at ``data_root``."""
    for dataset in iter_dataset_cfgs(loader_cfg.dataset):
        if 'data_root' in dataset:
            dataset.data_root = data_root


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint path mmengine recorded as the run's last."""
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def run_pretrain(cfg: Config) -> Tuple[str, float]:
    """Train ``cfg`` in this process; return its last checkpoint and the seconds it took."""
    from mmengine.runner import Runner

    start = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    runner.train()
    seconds = time.perf_counter() - start
    del runner
    gc.collect()
    return last_checkpoint(cfg.work_dir), seconds


def mean_std(values: List[float]) -> str:
    """``mean ± sample std`` (2 decimals) of the non-NaN values; one value alone; '—' if none."""
    values = [v for v in values if not np.isnan(v)]
    if not values:
        return '—'
    if len(values) == 1:
        return f'{values[0]:.2f}'
    return f'{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}'
