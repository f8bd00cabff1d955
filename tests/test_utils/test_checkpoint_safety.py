"""Checkpoints load with weights_only=True, unsafe files are refused, resume is exact."""
import os
import os.path as osp
import pickle
import subprocess
import sys
import uuid
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dira_mm.engine.hooks.safe_checkpoint_hook import SafeCheckpointHook  # noqa: E402
from dira_mm.utils.checkpoint import (PLAIN_TYPE_TAG, UnsafeCheckpointError,  # noqa: E402
                                      find_unsafe_globals, from_plain,
                                      get_rng_state, register_safe_loader,
                                      safe_torch_load, set_rng_state, to_plain)
from tests.data.toy_modules import ToyOrderedDict  # noqa: E402

SANITIZE = str(ROOT / 'tools' / 'misc' / 'sanitize_checkpoint.py')


def _runner_cfg(work_dir, max_epochs=2, custom_hooks=None, **kwargs) -> dict:
    loader = dict(batch_size=4, num_workers=0, collate_fn=dict(type='default_collate'))
    return dict(
        model=dict(type='ToyModel'),
        work_dir=str(work_dir),
        experiment_name=uuid.uuid4().hex,
        train_dataloader=dict(
            loader, sampler=dict(type='DefaultSampler', shuffle=True),
            dataset=dict(type='ToyDataset', length=12)),
        val_dataloader=dict(
            loader, sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(type='ToyDataset', length=8, augment=False)),
        val_evaluator=dict(type='ToyLossMetric'),
        val_cfg=dict(),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        param_scheduler=[dict(type='MultiStepLR', milestones=[1], gamma=0.5)],
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=dict(type='CheckpointHook', interval=1)),
        custom_hooks=[dict(type='SafeCheckpointHook')] if custom_hooks is None else custom_hooks,
        randomness=dict(seed=0),
        default_scope='dira_mm',
        **kwargs)


def _train(cfg: dict) -> dict:
    from mmengine.runner import Runner
    runner = Runner(**cfg)
    runner.train()
    return {k: v.detach().clone() for k, v in runner.model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope='module', autouse=True)
def _safe_loader():
    register_safe_loader()


@pytest.fixture(scope='module')
def full_run(tmp_path_factory):
    """An uninterrupted 2-epoch run with the hook; its work_dir and final weights."""
    work_dir = tmp_path_factory.mktemp('full')
    return work_dir, _train(_runner_cfg(work_dir))


def test_to_plain_round_trip(tmp_path):
    buf = HistoryBuffer()
    for i in range(3):
        buf.update(float(i) * 0.5, count=2)
    state_dict = OrderedDict(w=torch.ones(2))
    state_dict._metadata = OrderedDict({'': {'version': 1}})
    obj = dict(
        buf=buf, arr=np.arange(6, dtype=np.int16).reshape(2, 3),
        obj_arr=np.array([1, 'a'], dtype=object), f32=np.float32(1.5), i64=np.int64(3),
        flag=np.bool_(True), dtype=np.dtype('float32'), fs=frozenset({1}),
        tup=(1, np.float64(2.0)), state_dict=state_dict, path=Path('/x'), none=None)
    report = []
    plain = to_plain(obj, 'obj', report)
    path = tmp_path / 'plain.pth'
    torch.save(plain, path)
    assert find_unsafe_globals(path) == []
    loaded = from_plain(torch.load(path, weights_only=True))
    assert isinstance(loaded['buf'], HistoryBuffer)
    assert np.array_equal(loaded['buf']._log_history, buf._log_history)
    assert np.array_equal(loaded['buf']._count_history, buf._count_history)
    assert loaded['buf'].mean() == buf.mean()
    assert loaded['arr'].dtype == np.int16 and np.array_equal(loaded['arr'], obj['arr'])
    assert loaded['obj_arr'].dtype == object and list(loaded['obj_arr']) == [1, 'a']
    assert type(loaded['f32']) is float and loaded['f32'] == 1.5
    assert type(loaded['i64']) is int and type(loaded['flag']) is bool
    assert loaded['dtype'] == np.dtype('float32') and loaded['fs'] == frozenset({1})
    assert loaded['tup'] == (1, 2.0) and type(loaded['tup'][1]) is float
    assert loaded['state_dict']._metadata == {'': {'version': 1}}
    assert loaded['path'] == '/x' and loaded['none'] is None
    assert any('HistoryBuffer' in line for line in report)
    assert plain['buf'][PLAIN_TYPE_TAG] == 'HistoryBuffer'


def test_unknown_object_is_kept_as_repr_with_warning():
    with pytest.warns(UserWarning, match=r"ckpt\['x'\]"):
        plain = to_plain({'x': object()}, 'ckpt')
    assert isinstance(plain['x'], str)


def test_rng_state_round_trip(tmp_path):
    import random
    state = get_rng_state()
    torch.save(state, tmp_path / 'rng.pth')
    assert find_unsafe_globals(tmp_path / 'rng.pth') == []
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(torch.load(tmp_path / 'rng.pth', weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_stock_checkpoint_is_refused_and_hook_makes_it_plain(tmp_path, full_run):
    from mmengine.runner.checkpoint import _load_checkpoint

    stock_dir = tmp_path / 'stock'
    _train(_runner_cfg(stock_dir, max_epochs=1, custom_hooks=[]))
    stock = stock_dir / 'epoch_1.pth'
    unsafe = find_unsafe_globals(stock)
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in unsafe
    assert 'builtins.getattr' in unsafe
    with pytest.raises(UnsafeCheckpointError) as err:
        _load_checkpoint(str(stock), map_location='cpu')  # mmengine's path, our scheme
    msg = str(err.value)
    assert str(stock) in msg and 'HistoryBuffer' in msg and 'sanitize_checkpoint.py' in msg

    work_dir, _ = full_run
    for name in ('epoch_1.pth', 'epoch_2.pth'):
        assert find_unsafe_globals(work_dir / name) == []
    ckpt = safe_torch_load(work_dir / 'epoch_1.pth')
    assert set(ckpt['rng_state']) >= {'python', 'numpy', 'torch'}
    assert {'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers'} <= set(ckpt)
    hub = from_plain(ckpt['message_hub'])
    assert isinstance(hub['log_scalars']['train/loss'], HistoryBuffer)


def test_resume_is_exact_and_needs_the_rng_restore(tmp_path, full_run, monkeypatch):
    work_dir, full = full_run
    ckpt = str(work_dir / 'epoch_1.pth')
    resumed = _train(_runner_cfg(tmp_path / 'resumed', load_from=ckpt, resume=True))
    assert _same(full, resumed)

    # Without the RNG restore the resumed run draws different noise/dropout/augmentation.
    monkeypatch.setattr(SafeCheckpointHook, 'before_train', lambda self, runner: None)
    unrestored = _train(_runner_cfg(tmp_path / 'unrestored', load_from=ckpt, resume=True))
    assert not _same(full, unrestored)


def test_resume_without_val_isolation_is_not_exact(tmp_path):
    # Validation consumes the global torch RNG (DataLoader base seed) after the save; the
    # hook's isolate_val_rng is what makes the epoch-boundary checkpoint exact.
    hooks = [dict(type='SafeCheckpointHook', isolate_val_rng=False)]
    full = _train(_runner_cfg(tmp_path / 'a', custom_hooks=hooks))
    resumed = _train(_runner_cfg(tmp_path / 'b', custom_hooks=hooks, resume=True,
                                 load_from=str(tmp_path / 'a' / 'epoch_1.pth')))
    assert not _same(full, resumed)


def test_load_from_does_not_restore_rng(tmp_path, full_run):
    work_dir, _ = full_run
    from mmengine.runner import Runner
    runner = Runner(**_runner_cfg(tmp_path / 'init', load_from=str(work_dir / 'epoch_1.pth')))
    hook = next(h for h in runner.hooks if isinstance(h, SafeCheckpointHook))
    runner.load_or_resume()
    assert hook._pending_rng is None


def _write_unsafe(path) -> None:
    meta = ToyOrderedDict(note=np.array([1, 'x'], dtype=object))
    torch.save({'state_dict': {'w': torch.ones(2)}, 'meta': meta}, path)


def test_unsafe_checkpoint_is_refused(tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint
    bad = tmp_path / 'bad.pth'
    _write_unsafe(bad)
    with pytest.raises(UnsafeCheckpointError) as err:
        _load_checkpoint(str(bad), map_location='cpu')
    msg = str(err.value)
    assert str(bad) in msg
    assert 'tests.data.toy_modules.ToyOrderedDict' in msg and 'numpy.ndarray' in msg
    assert f'sanitize_checkpoint.py {bad} ' in msg and '--trust' in msg
    assert isinstance(err.value, RuntimeError)
    assert not isinstance(err.value, pickle.UnpicklingError)
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint')
    with pytest.raises(RuntimeError, match=str(garbage)):
        safe_torch_load(garbage)


def test_sanitize_tool(tmp_path):
    bad, out = tmp_path / 'bad.pth', tmp_path / 'out' / 'plain.pth'
    _write_unsafe(bad)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    refused = subprocess.run([sys.executable, SANITIZE, str(bad), str(out)], env=env,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and '--trust' in refused.stderr
    assert 'ToyOrderedDict' in refused.stdout  # the scan itself is safe
    assert not out.exists()

    done = subprocess.run([sys.executable, SANITIZE, str(bad), str(out), '--trust'],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert 'ToyOrderedDict -> dict' in done.stdout and 'numpy.ndarray' in done.stdout
    assert find_unsafe_globals(out) == []
    ckpt = from_plain(safe_torch_load(out))
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))
    assert type(ckpt['meta']) is dict and list(ckpt['meta']['note']) == [1, 'x']
    assert osp.isfile(bad)
