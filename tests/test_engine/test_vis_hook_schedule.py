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


def test_last_epoch_renders_between_intervals(monkeypatch):
    """Like CheckpointHook(save_last=True): the last epoch renders even when it is not a
    multiple of the interval, with or without a validation after it."""
    for val_interval in (1, 5):  # validation after every epoch / only after the last one
        hook = ReconstructionVisHook(interval=2)
        steps = []
        monkeypatch.setattr(hook, 'render', lambda runner, step: steps.append(step))
        for epoch in range(3):
            runner = _runner(epoch, 3, val_interval)
            hook.after_train_epoch(runner)
            if ReconstructionVisHook._validates_after(runner):
                runner.epoch = epoch + 1
                hook.after_val_epoch(runner)
        assert steps == [2, 3], val_interval
    hook = ReconstructionVisHook(interval=2)
    steps = []
    monkeypatch.setattr(hook, 'render', lambda runner, step: steps.append(step))
    hook.after_train_epoch(_runner(0, 1, 1, with_val=False))  # a 1-epoch run, no validation
    assert steps == [1]


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


class _Preprocessor(nn.Module):
    def forward(self, data, training=False):
        return dict(inputs=[v.float() / 255 for v in data['inputs']],
                    data_samples=data['data_samples'])


class _Restorer(nn.Module):
    """A U-Net stand-in: a conv and a BatchNorm; records the modes it runs in."""
    with_decoder = True

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.bn = nn.BatchNorm2d(1)
        self.seen = []

    def forward(self, x):
        self.seen.append((self.training, self.conv.training, self.bn.training,
                          torch.is_grad_enabled()))
        return self.bn(self.conv(x)).sigmoid()


def test_rendering_keeps_each_module_mode(tmp_path):
    """ReconstructionVisHook.render runs the restorer in eval mode without gradients, then
    gives each module its own mode back (a frozen part stays in eval mode)."""
    torch.manual_seed(0)
    model = nn.Module()
    model.data_preprocessor = _Preprocessor()
    model.backbone = _Restorer()
    model.train()
    model.backbone.bn.eval()  # e.g. a frozen part that training keeps in eval mode
    images = []
    visualizer = SimpleNamespace(
        add_image=lambda name, image, step: images.append((name, image.shape, step)))
    runner = SimpleNamespace(model=model, work_dir=str(tmp_path), visualizer=visualizer)
    hook = ReconstructionVisHook(interval=1, num_samples=2)
    views = [torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8)]
    hook.after_train_iter(runner, 0, dict(inputs=views, data_samples=[{}, {}, {}]))
    bn_state = {k: v.clone() for k, v in model.backbone.bn.state_dict().items()}

    hook.render(runner, step=1)

    # rendered in eval mode without gradients, on the stashed 2 samples
    assert model.backbone.seen == [(False, False, False, False)]
    # a 16-px title band over 2 rows of (distorted | restored)
    assert images == [('reconstruction', (16 + 16, 16, 3), 1)]
    assert (tmp_path / 'vis' / 'reconstruction_epoch_1.png').is_file()
    # each module's own mode is back: training, except the frozen BatchNorm
    assert model.training and model.backbone.training and model.backbone.conv.training
    assert model.data_preprocessor.training
    assert not model.backbone.bn.training
    # eval-mode BatchNorm did not update its running statistics
    assert all(torch.equal(v, model.backbone.bn.state_dict()[k]) for k, v in bn_state.items())
