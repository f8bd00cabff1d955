"""ReconstructionVisHook renders once per chosen epoch: after validation when mmengine
validates after that epoch, otherwise after the training epoch."""
from types import SimpleNamespace

import torch
from torch import nn

from dira_mm.engine.hooks import ReconstructionVisHook


def _runner(epoch, max_epochs, val_interval, with_val=True, val_begin=1):
    return SimpleNamespace(epoch=epoch, max_epochs=max_epochs, val_interval=val_interval,
                           val_loop=object() if with_val else None,
                           train_loop=SimpleNamespace(val_begin=val_begin))


def test_validates_after_follows_mmengine_epoch_loop():
    f = ReconstructionVisHook._validates_after
    assert f(_runner(0, 2, 1)) and f(_runner(1, 2, 1))
    # val_interval beyond max_epochs: mmengine still validates after the last epoch
    assert not f(_runner(0, 2, 5)) and f(_runner(1, 2, 5))
    assert not f(_runner(0, 4, 2)) and f(_runner(1, 4, 2)) and not f(_runner(2, 4, 2))
    assert not f(_runner(1, 2, 1, with_val=False))
    assert not f(_runner(0, 4, 1, val_begin=2)) and f(_runner(1, 4, 1, val_begin=2))


def test_each_epoch_is_rendered_once(monkeypatch):
    hook = ReconstructionVisHook(interval=1)
    steps = []
    monkeypatch.setattr(hook, 'render', lambda runner, step: steps.append(step))
    # 3 epochs, validation only after the last (val_interval 5)
    for epoch in range(3):
        runner = _runner(epoch, 3, 5)
        hook.after_train_epoch(runner)
        if ReconstructionVisHook._validates_after(runner):
            runner.epoch = epoch + 1  # the loop has counted the epoch before validating
            hook.after_val_epoch(runner)
    assert steps == [1, 2, 3]


def test_rendering_keeps_each_module_mode():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    model.train()
    model[1].eval()  # e.g. a frozen part that training keeps in eval mode
    from dira_mm.engine.hooks.probe_hook import preserve_training_state
    with preserve_training_state(model):
        assert not model.training
        model(torch.randn(3, 2))
    assert model.training and model[0].training and not model[1].training
