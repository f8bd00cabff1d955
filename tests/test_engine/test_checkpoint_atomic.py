"""Checkpoints are never left broken, resume finds a complete one, load_from must fit.

Real Runner runs of the toy model (tests/data/toy_modules.py) with AtomicCheckpointHook,
SafeCheckpointHook and CheckedLoadHook; a kill during a write is simulated by a file
backend that writes half of the bytes and then raises.
"""
import os
import re
import os.path as osp
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import Hook

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dira_mm.utils.checkpoint import register_safe_loader, safe_torch_load  # noqa: E402
from dira_mm.utils.checkpoint_files import (IncompleteCheckpointError,  # noqa: E402
                                            checkpoint_problem, find_resume_checkpoint)
from dira_mm.utils.convert import WeightConversionError  # noqa: E402
import tests.data.toy_modules  # noqa: E402,F401  (registers ToyModel, ToyDataset, ...)


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (not caught by ``except Exception``)."""


class StartEpoch(Hook):
    """Records the epoch training starts from (after a resume)."""

    def before_train(self, runner) -> None:
        runner.start_epoch = runner.epoch


def _cfg(work_dir, max_epochs=2, save_best='toy/loss', rule='less', **kwargs) -> Config:
    loader = dict(batch_size=4, num_workers=0, collate_fn=dict(type='default_collate'))
    cfg = dict(
        model=dict(type='ToyModel'),
        work_dir=str(work_dir),
        experiment_name=uuid.uuid4().hex,
        train_dataloader=dict(loader, sampler=dict(type='DefaultSampler', shuffle=True),
                              dataset=dict(type='ToyDataset', length=12)),
        val_dataloader=dict(loader, sampler=dict(type='DefaultSampler', shuffle=False),
                            dataset=dict(type='ToyDataset', length=8, augment=False)),
        val_evaluator=dict(type='ToyLossMetric'),
        val_cfg=dict(),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        param_scheduler=[dict(type='MultiStepLR', milestones=[1], gamma=0.5)],
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='AtomicCheckpointHook', interval=1, save_best=save_best,
                            rule=rule),
            safe_checkpoint=dict(type='SafeCheckpointHook'),
            checked_load=dict(type='CheckedLoadHook')),
        randomness=dict(seed=0),
        default_scope='dira_mm',
        log_level='WARNING')
    cfg.update(kwargs)
    return Config(cfg)


def _runner(cfg: Config):
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    runner.register_hook(StartEpoch())
    return runner


def _weights(runner) -> dict:
    return {k: v.detach().clone() for k, v in runner.model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _last(work_dir) -> str:
    return Path(work_dir, 'last_checkpoint').read_text().strip()


@pytest.fixture(scope='module', autouse=True)
def _safe_loader():
    register_safe_loader()


@pytest.fixture(scope='module')
def full_run(tmp_path_factory):
    """An uninterrupted 2-epoch run: its work_dir and final weights."""
    work_dir = tmp_path_factory.mktemp('full') / 'run'
    runner = _runner(_cfg(work_dir))
    runner.train()
    return work_dir, _weights(runner)


def _copy(full_run, dest: Path) -> Path:
    shutil.copytree(full_run[0], dest)
    (dest / 'last_checkpoint').write_text(str(dest / 'epoch_2.pth'))
    return dest


def _resume(work_dir, **kwargs):
    runner = _runner(_cfg(work_dir, resume=True, **kwargs))
    runner.train()
    return runner


def _kill_on_write(monkeypatch, target: str, nth: int = 1) -> list:
    """Make the ``nth`` write to a file whose name starts with ``target`` write half of
    its bytes and raise ``Killed``; returns the names of all writes."""
    original = LocalBackend.put
    writes = []

    def put(self, obj, filepath):
        name = osp.basename(str(filepath))
        writes.append(name)
        if name.startswith(target) and sum(w.startswith(target) for w in writes) == nth:
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
            raise Killed(name)
        return original(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', put)
    return writes


# ---------------------------------------------------------------------- atomic writes
def test_kill_while_rewriting_epoch_checkpoint_after_a_new_best(full_run, tmp_path, monkeypatch):
    """mmengine rewrites epoch_1.pth after validation when the best improves, after
    last_checkpoint already names it; a kill there left a truncated file."""
    work_dir = tmp_path / 'run'
    writes = _kill_on_write(monkeypatch, 'epoch_1.pth', nth=2)
    with pytest.raises(Killed):
        _runner(_cfg(work_dir)).train()
    # the first save, the best, then the rewrite that was killed; all to temporary names
    assert writes == ['epoch_1.pth.tmp', 'best_toy_loss_epoch_1.pth.tmp', 'epoch_1.pth.tmp']
    monkeypatch.undo()

    assert _last(work_dir) == str(work_dir / 'epoch_1.pth')
    assert checkpoint_problem(_last(work_dir)) is None
    ckpt = safe_torch_load(_last(work_dir))
    assert ckpt['meta']['epoch'] == 1
    assert safe_torch_load(work_dir / 'best_toy_loss_epoch_1.pth')['meta']['epoch'] == 1
    assert (work_dir / 'epoch_1.pth.tmp').exists()  # what a SIGKILL leaves behind

    runner = _resume(work_dir)
    assert runner.start_epoch == 1
    assert not (work_dir / 'epoch_1.pth.tmp').exists()  # removed before training
    assert _same(_weights(runner), full_run[1])  # exact resume: same as no kill
    assert safe_torch_load(work_dir / 'epoch_2.pth')['meta']['epoch'] == 2


def test_kill_while_writing_a_new_best_keeps_the_previous_best(tmp_path, monkeypatch):
    work_dir = tmp_path / 'run'
    writes = _kill_on_write(monkeypatch, 'best_toy_loss_epoch_2.pth')
    with pytest.raises(Killed):  # the toy's val loss rises in epoch 2: 'greater' is better
        _runner(_cfg(work_dir, rule='greater')).train()
    assert writes[-1] == 'best_toy_loss_epoch_2.pth.tmp'
    monkeypatch.undo()
    # the previous best is still there and complete; the new one never appeared
    assert sorted(p.name for p in work_dir.glob('*.pth')) == [
        'best_toy_loss_epoch_1.pth', 'epoch_1.pth', 'epoch_2.pth']
    assert safe_torch_load(work_dir / 'best_toy_loss_epoch_1.pth')['meta']['epoch'] == 1
    assert _last(work_dir) == str(work_dir / 'epoch_2.pth')
    assert checkpoint_problem(str(work_dir / 'epoch_2.pth')) is None


def test_new_best_is_written_before_the_old_one_is_removed(tmp_path, monkeypatch):
    work_dir = tmp_path / 'run'
    events = []
    original_remove = LocalBackend.remove
    original_put = LocalBackend.put

    def put(self, obj, filepath):
        events.append(('write', osp.basename(filepath)))
        return original_put(self, obj, filepath)

    def remove(self, filepath):
        events.append(('remove', osp.basename(filepath)))
        return original_remove(self, filepath)

    monkeypatch.setattr(LocalBackend, 'put', put)
    monkeypatch.setattr(LocalBackend, 'remove', remove)
    _runner(_cfg(work_dir, default_hooks=dict(
        checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=1,
                        save_best='toy/loss', rule='greater')))).train()
    assert events.index(('write', 'best_toy_loss_epoch_2.pth.tmp')) < events.index(
        ('remove', 'best_toy_loss_epoch_1.pth'))
    # max_keep_ckpts=1: epoch_1.pth goes only after epoch_2.pth is complete
    assert events.index(('write', 'epoch_2.pth.tmp')) < events.index(
        ('remove', 'epoch_1.pth'))
    assert sorted(p.name for p in work_dir.glob('*.pth*')) == [
        'best_toy_loss_epoch_2.pth', 'epoch_2.pth']


# ---------------------------------------------------------------------- resume fallback
def test_resume_falls_back_from_an_empty_last_checkpoint(full_run, tmp_path):
    work_dir = _copy(full_run, tmp_path / 'run')
    open(work_dir / 'epoch_2.pth', 'wb').close()  # 0 bytes, named by last_checkpoint
    warnings = []
    assert find_resume_checkpoint(str(work_dir), warn=warnings.append) == str(
        work_dir / 'epoch_1.pth')
    assert 'epoch_2.pth' in warnings[0] and 'empty (0 bytes' in warnings[0]
    runner = _resume(work_dir)
    assert runner.start_epoch == 1
    assert _same(_weights(runner), full_run[1])


def test_resume_falls_back_from_a_truncated_last_checkpoint(full_run, tmp_path):
    work_dir = _copy(full_run, tmp_path / 'run')
    data = (work_dir / 'epoch_2.pth').read_bytes()
    (work_dir / 'epoch_2.pth').write_bytes(data[:len(data) - 100])
    assert 'truncated' in checkpoint_problem(str(work_dir / 'epoch_2.pth'))
    runner = _resume(work_dir)
    assert runner.start_epoch == 1
    assert _same(_weights(runner), full_run[1])


def test_resume_without_last_checkpoint_uses_the_newest_epoch_file(full_run, tmp_path):
    work_dir = _copy(full_run, tmp_path / 'run')
    os.remove(work_dir / 'last_checkpoint')
    os.remove(work_dir / 'epoch_2.pth')
    warnings = []
    assert find_resume_checkpoint(str(work_dir), warn=warnings.append) == str(
        work_dir / 'epoch_1.pth')
    assert 'no last_checkpoint' in warnings[0]
    runner = _resume(work_dir)
    assert runner.start_epoch == 1  # mmengine restarted from epoch 0
    assert _same(_weights(runner), full_run[1])


def test_resume_after_moving_the_work_dir(full_run, tmp_path):
    old = _copy(full_run, tmp_path / 'old')
    os.remove(old / 'epoch_2.pth')
    (old / 'last_checkpoint').write_text(str(old / 'epoch_1.pth'))
    new = tmp_path / 'new'
    shutil.move(str(old), str(new))
    assert _last(new) == str(old / 'epoch_1.pth')  # the old absolute path
    runner = _resume(new)
    assert runner.start_epoch == 1
    assert _same(_weights(runner), full_run[1])
    assert _last(new) == str(new / 'epoch_2.pth')
    # the resumed best path follows too (the message hub names the fixture's folder, which
    # still exists: a later best must remove the file here, not there)
    assert runner.message_hub.get_info('best_ckpt') == str(new / 'best_toy_loss_epoch_1.pth')


def test_no_complete_checkpoint_is_an_error_listing_them(tmp_path):
    work_dir = tmp_path / 'run'
    work_dir.mkdir()
    open(work_dir / 'epoch_1.pth', 'wb').close()
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'epoch_1.pth'))
    with pytest.raises(IncompleteCheckpointError,
                       match='no complete checkpoint to resume from .*epoch_1.pth" is empty'):
        _resume(work_dir)


def test_explicit_broken_resume_path_is_an_error_naming_it(full_run, tmp_path):
    work_dir = _copy(full_run, tmp_path / 'run')
    broken = work_dir / 'epoch_2.pth'
    broken.write_bytes(broken.read_bytes()[:1000])
    with pytest.raises(IncompleteCheckpointError) as err:
        _resume(work_dir, load_from=str(broken))
    assert str(broken) in str(err.value) and 'truncated' in str(err.value)
    assert '--resume without a path' in str(err.value)


@pytest.mark.parametrize('size', [0, 1000])
def test_safe_torch_load_names_an_empty_or_truncated_file(full_run, tmp_path, size):
    path = tmp_path / 'broken.pth'
    path.write_bytes((full_run[0] / 'epoch_1.pth').read_bytes()[:size])
    with pytest.raises(IncompleteCheckpointError, match=re.escape(str(path))) as err:
        safe_torch_load(path)
    assert isinstance(err.value, RuntimeError)  # not a bare EOFError
    assert ('empty (0 bytes)' if size == 0 else f'{size} bytes') in str(err.value)


# ---------------------------------------------------------------------- load_from check
def _classifier(depth: int) -> dict:
    return dict(type='MultiLabelClassifier', num_classes=2,
                backbone=dict(type='ResNetUNet', encoder_name=f'resnet{depth}',
                              with_decoder=False, encoder_weights=None))


@pytest.fixture(scope='module')
def resnet18_ckpt(tmp_path_factory):
    from dira_mm.registry import MODELS
    torch.manual_seed(1)
    model = MODELS.build(_classifier(18))
    path = tmp_path_factory.mktemp('r18') / 'resnet18.pth'
    torch.save(dict(state_dict=model.state_dict()), path)
    return path


def test_resnet18_load_from_into_resnet50_is_an_error(resnet18_ckpt, tmp_path):
    runner = _runner(_cfg(tmp_path / 'run', model=_classifier(50), load_from=str(resnet18_ckpt)))
    before = _weights(runner)
    with pytest.raises(WeightConversionError) as err:
        runner.train()
    text = str(err.value)
    # ResNet-50's bottleneck blocks (conv3/bn3, 1x1 convs, more blocks) and wider head
    assert (f'load_from "{resnet18_ckpt}" does not fit MultiLabelClassifier: 98 of 320 '
            'model tensors match; 165 missing (backbone.encoder.layer1.0.conv3.weight, '
            'backbone.encoder.layer1.0.bn3.weight, backbone.encoder.layer1.0.bn3.bias, ... '
            '(+162 more)); 24 with another shape (backbone.encoder.layer1.0.conv1.weight: '
            'got (64, 64, 3, 3), expected (64, 64, 1, 1)') in text
    assert '--cfg-options load_from_strict=False' in text
    report = err.value.report
    assert (len(report['missing']), len(report['unexpected']),
            len(report['shape_mismatch'])) == (165, 0, 24)
    assert _same(_weights(runner), before)  # nothing was loaded


def test_load_from_strict_false_loads_what_fits(resnet18_ckpt, tmp_path):
    runner = _runner(_cfg(tmp_path / 'run', model=_classifier(50), load_from_strict=False))
    r18 = torch.load(resnet18_ckpt, weights_only=True)['state_dict']
    runner._load_from = str(resnet18_ckpt)
    runner.load_checkpoint(str(resnet18_ckpt))  # what load_or_resume calls
    state = runner.model.state_dict()
    key = 'backbone.encoder.conv1.weight'  # the same shape in both depths
    assert torch.equal(state[key], r18[key])


def test_resume_must_fit_even_with_load_from_strict_false(resnet18_ckpt, tmp_path):
    runner = _runner(_cfg(tmp_path / 'run', model=_classifier(50), load_from_strict=False,
                          resume=True))
    with pytest.raises(WeightConversionError, match='A resume must load'):
        runner.load_checkpoint(str(resnet18_ckpt))


def _dira_model(adversarial: bool) -> dict:
    cfg = Config.fromfile(str(ROOT / 'configs' / '_base_' / 'models' /
                              'dira_mocov2_resnet18_unet_demo.py'), lazy_import=False)
    model = cfg.model.to_dict()
    ssl = model['discriminative']
    ssl['backbone']['decoder_channels'] = (32, 16, 16, 8, 8)
    ssl['neck'].update(hid_channels=32, out_channels=16)
    ssl.update(feat_dim=16, queue_len=32)
    if adversarial:
        model['adversarial']['discriminator']['channels'] = (8, 8, 16, 16)
    else:
        model['adversarial'] = None
    return model


def test_dir_checkpoint_initialises_a_dira_model_with_a_fresh_discriminator(tmp_path):
    """The official two-run flow: the `dira` run's load_from is the `dir` warm-up."""
    from dira_mm.registry import MODELS
    torch.manual_seed(3)
    warm = MODELS.build(_dira_model(adversarial=False))
    path = tmp_path / 'dir.pth'
    torch.save(dict(state_dict=warm.state_dict()), path)
    runner = _runner(_cfg(tmp_path / 'run', model=_dira_model(adversarial=True),
                          load_from=str(path)))
    disc_before = {k: v.clone() for k, v in runner.model.discriminator.state_dict().items()}
    runner.load_checkpoint(str(path))
    state = runner.model.state_dict()
    for key, value in warm.state_dict().items():
        assert torch.equal(state[key], value), key
    assert _same(runner.model.discriminator.state_dict(), disc_before)

    # a warm-up checkpoint that lacks more than the discriminator is still refused
    partial = {k: v for k, v in warm.state_dict().items() if 'decoder' not in k}
    torch.save(dict(state_dict=partial), path)
    with pytest.raises(WeightConversionError, match='missing'):
        runner.load_checkpoint(str(path))
    # so is a partial discriminator: the allowance is for a fresh one
    full = runner.model.state_dict()
    dropped = 'discriminator.model.0.weight'
    assert dropped in full
    torch.save(dict(state_dict={k: v for k, v in full.items() if k != dropped}), path)
    with pytest.raises(WeightConversionError, match=rf'1 missing \({dropped}\)'):
        runner.load_checkpoint(str(path))


# ---------------------------------------------------------------------- tools/train.py
def _train_tool(args: list, cwd) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / 'tools' / 'train.py')] + args,
                          cwd=str(cwd), env=env, capture_output=True, text=True, timeout=300)


def test_train_tool_resume_after_a_kill_left_an_empty_checkpoint(tmp_path):
    toy = ROOT / 'tests' / 'data' / 'configs' / 'toy_2proc.py'
    config = tmp_path / 'toy_atomic.py'
    config.write_text(f'_base_ = [{str(toy)!r}]\n'
                      "default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'),\n"
                      "                     checked_load=dict(type='CheckedLoadHook'))\n")
    work_dir = tmp_path / 'run'
    first = _train_tool([str(config), '--work-dir', str(work_dir)], tmp_path)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    uninterrupted = torch.load(work_dir / 'weights_rank0.pth', weights_only=True)['state_dict']
    open(work_dir / 'epoch_2.pth', 'wb').close()  # what a kill during the write left

    resumed = _train_tool([str(config), '--work-dir', str(work_dir), '--resume'], tmp_path)
    out = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, out[-3000:]
    assert 'resuming from the newest complete checkpoint' in out
    assert 'resumed epoch: 1' in out
    final = torch.load(work_dir / 'weights_rank0.pth', weights_only=True)['state_dict']
    assert _same(final, uninterrupted)
