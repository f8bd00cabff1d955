"""Every shipped config passes the preflight and builds its schedulers at max_epochs=1.

The smoke test people run before a week-long job (``--cfg-options train_cfg.max_epochs=1``)
died inside mmengine for every config with a warm-up ("end should be larger than begin").
Here each config goes through :func:`dira_mm.utils.preflight.preflight` and then through
mmengine's own ``Runner.build_param_scheduler`` code (on dummy optimizers, no model), and
the schedulers are stepped through the whole short run as ``ParamSchedulerHook`` does.
"""
import copy
import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.runner.base_loop import BaseLoop

from dira_mm.utils import preflight as pf

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)
EPOCH_LENGTH = 3  # iterations per epoch of the pretend dataloader


class _Loop(BaseLoop):

    def run(self) -> None:
        pass


class _SchedulerRunner:
    """What ``Runner.build_param_scheduler`` reads, running mmengine's own code."""

    build_param_scheduler = Runner.build_param_scheduler
    _build_param_scheduler = Runner._build_param_scheduler

    def __init__(self, optim_wrapper, unit: str, length: int) -> None:
        self.optim_wrapper = optim_wrapper
        self.train_dataloader = list(range(EPOCH_LENGTH))
        self._train_loop = _Loop(self, self.train_dataloader)
        self.max_epochs = length if unit == 'max_epochs' else None
        self.max_iters = length * EPOCH_LENGTH if unit == 'max_epochs' else length
        self.logger = MMLogger.get_current_instance()


def _dummy_wrapper(wrapper_cfg) -> OptimWrapper:
    lr = wrapper_cfg['optimizer'].get('lr', 0.1)
    param = torch.nn.Parameter(torch.zeros(1))
    return OptimWrapper(torch.optim.SGD([param], lr=lr, momentum=0.9))


def _dummy_optim_wrapper(cfg):
    ow = cfg.optim_wrapper
    if 'optimizer' in ow:
        return _dummy_wrapper(ow)
    return OptimWrapperDict(**{k: _dummy_wrapper(v) for k, v in ow.items()
                               if isinstance(v, dict) and 'optimizer' in v})


def _step_through_run(schedulers, unit: str, length: int) -> None:
    """Step the schedulers as ParamSchedulerHook does: per iteration, then per epoch."""
    flat = [s for group in (schedulers.values() if isinstance(schedulers, dict)
                            else [schedulers]) for s in group]
    epochs = length if unit == 'max_epochs' else 1
    for _ in range(epochs):
        for _ in range(EPOCH_LENGTH if unit == 'max_epochs' else length):
            for s in flat:
                if not s.by_epoch:
                    s.step()
        for s in flat:
            if s.by_epoch:
                s.step()
    for s in flat:
        for lr in s.get_last_value():
            assert math.isfinite(lr) and lr >= 0, (s, lr)


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setattr(pf, '_info', lambda message: None)


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_runs_at_one_epoch(path, monkeypatch):
    cfg = Config.fromfile(path, lazy_import=False)
    init_default_scope(cfg.get('default_scope', 'dira_mm'))
    unit, length = pf.train_length(cfg)
    assert unit is not None, f'{path}: train_cfg has neither max_epochs nor max_iters'

    # at its own length the preflight finds nothing and changes no scheduler
    full = copy.deepcopy(cfg)
    warned = []
    monkeypatch.setattr(pf, '_warn', warned.append)
    pf.preflight(full)
    assert warned == [] and full.param_scheduler == cfg.param_scheduler

    # one epoch (or iteration): fitted with warnings, then built and run as mmengine does
    cfg.merge_from_dict({f'train_cfg.{unit}': 1})
    pf.preflight(cfg)
    runner = _SchedulerRunner(_dummy_optim_wrapper(cfg), unit, 1)
    sched = cfg.param_scheduler
    sched = sched.to_dict() if hasattr(sched, 'to_dict') else sched
    if sched is not None:
        _step_through_run(runner.build_param_scheduler(sched), unit, 1)


def test_without_the_preflight_mmengine_refuses_the_short_run():
    # the failure this file guards against, reproduced with the same runner stand-in
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'dira', 'dira_barlow_cxr14.py'),
                          lazy_import=False)
    cfg.merge_from_dict({'train_cfg.max_epochs': 1})
    runner = _SchedulerRunner(_dummy_optim_wrapper(cfg), 'max_epochs', 1)
    with pytest.raises(ValueError, match='end should be larger than begin'):
        runner.build_param_scheduler(cfg.param_scheduler.to_dict())


def test_clamped_warmup_reaches_the_base_lr_at_the_end_of_the_run(monkeypatch):
    monkeypatch.setattr(pf, '_warn', lambda message: None)
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'dira', 'dira_barlow_cxr14.py'),
                          lazy_import=False)
    cfg.merge_from_dict({'train_cfg.max_epochs': 1})
    pf.preflight(cfg)
    runner = _SchedulerRunner(_dummy_optim_wrapper(cfg), 'max_epochs', 1)
    schedulers = runner.build_param_scheduler(cfg.param_scheduler.to_dict())
    warmup = schedulers['generator'][0]
    assert (warmup.begin, warmup.end) == (0, EPOCH_LENGTH)  # converted to iterations
    assert warmup.get_last_value()[0] == pytest.approx(0.2 * 1e-4)
    for _ in range(EPOCH_LENGTH):
        warmup.step()
    assert warmup.get_last_value()[0] == pytest.approx(0.2)
