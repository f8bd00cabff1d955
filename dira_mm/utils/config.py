"""Helpers on configs that several tools need: the dataset inside wrappers, one run per process.

``leaf_dataset_cfg`` is the config-side twin of
:func:`dira_mm.engine.hooks.dataset_epoch_hook.leaf_datasets` (which walks built datasets):
wrappers such as ``LabelFractionDataset`` and ``ClassSubsetDataset`` keep the real dataset
under ``dataset``, and tools that change its ``pipeline``, ``seed``, ``data_root`` or
``ann_file`` need that innermost config.
"""
import os
import time
from typing import Iterator, Mapping

__all__ = ['iter_dataset_cfgs', 'leaf_dataset_cfg', 'isolate_run']


def iter_dataset_cfgs(dataset_cfg: Mapping) -> Iterator[Mapping]:
    """The dataset config and each config wrapped inside it, outermost first."""
    while isinstance(dataset_cfg, Mapping):
        yield dataset_cfg
        if 'pipeline' in dataset_cfg:
            return
        dataset_cfg = dataset_cfg.get('dataset')


def leaf_dataset_cfg(dataset_cfg: Mapping) -> Mapping:
    """The innermost dataset config (the one with the ``pipeline``), through wrappers."""
    *_, leaf = iter_dataset_cfgs(dataset_cfg)
    return leaf


def isolate_run(cfg, tag: str) -> None:
    """Make ``cfg`` a fresh run that can share a process with other runs.

    mmengine keeps named singletons (logger, message hub, visualizer) per experiment name,
    so each Runner built in one process needs its own names; the run is not distributed
    and starts from the config's weights (no ``load_from``/``resume``).
    """
    cfg.experiment_name = f'{tag}_{os.getpid()}_{time.monotonic_ns()}'
    if cfg.get('visualizer') is not None:
        cfg.visualizer.name = f'visualizer_{cfg.experiment_name}'
    cfg.launcher = 'none'
    cfg.load_from, cfg.resume = None, False
