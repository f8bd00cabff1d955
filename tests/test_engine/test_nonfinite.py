"""Non-finite training is stopped (or its steps skipped) and never saved: the loss guard of
every model's training step, DiRA's two players, and NonFiniteCheckHook on the weights."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner
from torch import nn

from dira_mm.engine.hooks import NonFiniteCheckHook, NonFiniteWeightsError
from dira_mm.models.classifiers import MultiLabelClassifier
from dira_mm.models.segmentors import UNetSegmentor
from dira_mm.models.utils import (NonFiniteGuard, NonFiniteLossCheckMixin, NonFiniteLossError,
                                  find_nonfinite, unwrap)
from helpers import e2e_helpers, free_port

e2e = e2e_helpers()

NAN = float('nan')


def _at(epoch: int, it: int) -> None:
    """Position the message hub as the runner does before a training iteration (0-based)."""
    hub = MessageHub.get_current_instance()
    hub.update_info('epoch', epoch)
    hub.update_info('iter', it)


# ----------------------------------------------------------------------------- the guard
def test_stop_names_the_term_value_position_and_keys():
    _at(1, 36)
    guard = NonFiniteGuard(work_dir='/runs/x')
    finite = dict(loss=torch.tensor(2.0), loss_dis=torch.tensor(1.0),
                  loss_d=torch.tensor(1.0))
    assert guard.check(finite, 'discriminator')
    bad = dict(loss=torch.tensor(NAN), loss_dis=torch.tensor(1.0), loss_d=torch.tensor(NAN))
    with pytest.raises(NonFiniteLossError) as err:
        guard.check(bad, 'discriminator', 'optim_wrapper.discriminator')
    msg = str(err.value)
    assert 'loss_d=nan in the discriminator step at epoch 2, iteration 37' in msg
    assert 'loss_dis' not in msg  # only the diverged term is named
    assert 'optim_wrapper.discriminator.optimizer.lr' in msg
    assert 'optim_wrapper.discriminator.clip_grad' in msg
    assert '--resume' in msg and '/runs/x' in msg
    assert "default_hooks.nonfinite_check.loss_policy='skip'" in msg
    # an overflow of the sum alone names the total
    with pytest.raises(NonFiniteLossError, match='loss=inf'):
        guard.check(dict(loss=torch.tensor(float('inf')), loss_a=torch.tensor(3e38)))


def test_skip_counts_and_stops_after_n_in_a_row_per_optimizer():
    _at(0, 4)
    guard = NonFiniteGuard('skip', max_consecutive_skips=3)
    nan = dict(loss=torch.tensor(NAN), loss_res=torch.tensor(NAN))
    ok = dict(loss=torch.tensor(1.0), loss_res=torch.tensor(1.0))
    assert guard.check(nan, 'generator') is False
    assert guard.check(nan, 'generator') is False
    assert guard.check(ok, 'generator') is True  # a finite step resets the run of skips
    assert guard.check(nan, 'generator') is False
    assert guard.check(nan, 'discriminator') is False  # counted per optimizer
    assert guard.check(nan, 'generator') is False
    assert guard.skipped == 5
    with pytest.raises(NonFiniteLossError, match=r'3 generator steps in a row.*'
                                                 r'max_consecutive_skips=3'):
        guard.check(nan, 'generator')


def test_bad_policy_keys_are_named():
    with pytest.raises(ValueError, match="nonfinite_check.loss_policy.*'halt'"):
        NonFiniteCheckHook(loss_policy='halt')
    with pytest.raises(ValueError, match='nonfinite_check.max_consecutive_skips'):
        NonFiniteCheckHook(max_consecutive_skips=0)


def test_find_nonfinite_names_the_first_bad_tensor():
    tensors = [('a', torch.ones(3)), ('n', torch.arange(3)),
               ('b', torch.tensor([1.0, NAN, float('inf'), NAN])), ('c', torch.tensor(NAN))]
    assert find_nonfinite(tensors[:2]) is None
    assert find_nonfinite(tensors) == "'b' (shape (4,): 2 NaN and 1 Inf of 4 values)"


# ----------------------------------------------------------------------------- the mixin
class _Linear(NonFiniteLossCheckMixin, BaseModel):
    """mmengine's BaseModel train_step path (as the classifier and segmentor use)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 1)
        self.poison = False

    def forward(self, inputs, data_samples=None, mode='loss'):
        loss = self.fc(inputs).pow(2).mean()
        return dict(loss_fc=loss * NAN if self.poison else loss, acc=torch.tensor(NAN))


def test_model_train_step_skips_the_update_and_zeroes_grads():
    torch.manual_seed(0)
    model = _Linear()
    model.nonfinite_guard = NonFiniteGuard('skip')
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    data = dict(inputs=torch.randn(4, 3))
    log = model.train_step(data, wrapper)  # a finite step moves the weights
    assert set(log) == {'loss', 'loss_fc', 'acc'}  # non-loss entries are not checked
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.poison = True
    for p in model.parameters():
        p.grad = torch.ones_like(p)  # left over: must not be applied
    log = model.train_step(data, wrapper)
    assert set(log) == {'acc'}  # the NaN losses are not logged
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k  # momentum did not move them either
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    assert model.nonfinite_guard.skipped == 1
    model.poison = False
    model.train_step(data, wrapper)
    assert not torch.equal(model.fc.weight, before['fc.weight'])
    # the default policy stops; evaluation is not checked
    model.poison = True
    model.nonfinite_guard = NonFiniteGuard()
    model.eval()
    model.parse_losses(model(data['inputs']))
    model.train()
    weight = model.fc.weight.detach().clone()
    with pytest.raises(NonFiniteLossError, match='loss_fc=nan in the training step'):
        model.train_step(data, wrapper)
    assert torch.equal(model.fc.weight, weight)


def test_every_dira_mm_model_checks_its_losses():
    from dira_mm.models.algorithms import DiRA
    from dira_mm.models.algorithms.base import BaseSelfSupervisor
    for cls in (DiRA, BaseSelfSupervisor, MultiLabelClassifier, UNetSegmentor):
        assert issubclass(cls, NonFiniteLossCheckMixin), cls


# ----------------------------------------------------------------------------- the hook
def test_no_checkpoint_with_a_nonfinite_weight_or_optimizer_state(tmp_path):
    hook = NonFiniteCheckHook()
    runner = type('R', (), dict(work_dir=str(tmp_path)))()
    good = dict(meta=dict(epoch=3, iter=30), state_dict={'a.weight': torch.ones(2),
                                                         'a.num': torch.tensor(3)},
                optimizer=dict(state={0: dict(momentum_buffer=torch.ones(2))}))
    hook.before_save_checkpoint(runner, good)
    bad = dict(good, state_dict={'a.weight': torch.tensor([1.0, NAN])})
    with pytest.raises(NonFiniteWeightsError,
                       match=r"checkpoint of epoch 3, iteration 30.*'a.weight' .*1 NaN"):
        hook.before_save_checkpoint(runner, bad)
    bad = dict(good, optimizer=dict(generator=dict(
        state={0: dict(exp_avg=torch.tensor([float('inf')]))})))
    with pytest.raises(NonFiniteWeightsError, match="'optimizer.generator.state.0.exp_avg'"):
        hook.before_save_checkpoint(runner, bad)


def test_weights_are_scanned_once_per_iteration_unless_validation_ran(tmp_path, monkeypatch):
    """The epoch-end check, an aligned param_interval check and the epoch-end checkpoint
    scan the same weights once; a validation in between forces a new scan, which catches
    a weight it broke."""
    import dira_mm.engine.hooks.nonfinite_check_hook as mod
    scans = []
    real = mod.find_nonfinite

    def counting(tensors):
        tensors = list(tensors)
        scans.append(sorted(n for n, _ in tensors))
        return real(tensors)

    monkeypatch.setattr(mod, 'find_nonfinite', counting)
    model = nn.Linear(2, 1)
    runner = type('R', (), dict(work_dir=str(tmp_path), model=model, iter=10, epoch=0))()
    hook = NonFiniteCheckHook(param_interval=5)
    hook.after_train_iter(runner, 9)  # runner.iter + 1 == 11: no interval step
    assert scans == []
    hook.after_train_epoch(runner)
    assert scans == [['bias', 'weight']]  # parameters directly, no state-dict rebuild
    hook.after_train_epoch(runner)  # same iteration: nothing new
    ckpt = dict(meta=dict(epoch=1, iter=10), state_dict=dict(model.state_dict()),
                optimizer=dict(state={0: dict(exp_avg=torch.ones(1))}))
    hook.before_save_checkpoint(runner, ckpt)
    assert scans[1:] == [['optimizer.state.0.exp_avg']]  # only the optimizer state
    hook.before_val_epoch(runner)
    with torch.no_grad():
        model.bias.fill_(NAN)  # e.g. an official_val momentum update gone wrong
    ckpt['state_dict'] = dict(model.state_dict())
    with pytest.raises(NonFiniteWeightsError, match="'bias'"):
        hook.before_save_checkpoint(runner, ckpt)


def test_a_training_step_invalidates_the_scan(tmp_path):
    """mmengine counts runner.iter up only after the after_train_iter hooks, so the scan
    before training and the next step's iteration-based checkpoint share an iteration
    number; the step in between changed the weights, and the checkpoint is scanned."""
    model = nn.Linear(2, 1)
    runner = type('R', (), dict(work_dir=str(tmp_path), model=model, iter=0, epoch=0,
                                message_hub=MessageHub.get_current_instance(),
                                logger=type('L', (), dict(warning=print))()))()
    hook = NonFiniteCheckHook(param_interval=0)
    hook.before_train(runner)  # scans the starting weights at iteration 0
    hook.before_train_iter(runner, 0)
    with torch.no_grad():
        model.weight.fill_(NAN)  # the step diverged
    ckpt = dict(meta=dict(epoch=0, iter=1), state_dict=dict(model.state_dict()))
    with pytest.raises(NonFiniteWeightsError, match="'weight'"):
        hook.before_save_checkpoint(runner, ckpt)  # by-iteration save, runner.iter still 0


def test_skip_is_refused_under_mmddp_which_always_updates():
    from mmengine.model import MMDistributedDataParallel
    ddp = MMDistributedDataParallel.__new__(MMDistributedDataParallel)  # no process group
    object.__setattr__(ddp, 'module', _Linear())
    runner = type('R', (), dict(model=ddp, work_dir='w'))()
    with pytest.raises(ValueError, match="loss_policy='skip'.*MMSeparateDistributedDataParallel"):
        NonFiniteCheckHook(loss_policy='skip').before_train(runner)


# ----------------------------------------------------------------------------- two ranks
def _dist_worker(rank: int, port: int, out: str) -> None:
    """Only rank 0 sees a NaN: both ranks must take the same decision (no hang)."""
    import os
    import torch.distributed as torch_dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch_dist.init_process_group('gloo', rank=rank, world_size=2)
    res = {}
    try:
        value = torch.tensor(NAN if rank == 0 else 1.0)
        log_vars = dict(loss=value, loss_res=value)
        res['skip'] = NonFiniteGuard('skip').check(log_vars, 'generator')
        try:
            NonFiniteGuard().check(log_vars, 'generator')
        except NonFiniteLossError as err:
            res['stop'] = str(err)
        model = nn.BatchNorm1d(2)
        if rank == 0:
            model.running_var[1] = float('inf')  # buffers may differ between ranks
        runner = type('R', (), dict(model=model, work_dir=out))()
        try:
            NonFiniteCheckHook()._check_model(runner, 'after epoch 1')
        except NonFiniteWeightsError as err:
            res['weights'] = str(err)
        torch_dist.barrier()  # both ranks still in step
    finally:
        torch_dist.destroy_process_group()
    torch.save(res, f'{out}.{rank}')


def test_ranks_agree_when_one_rank_is_nonfinite(tmp_path):
    import torch.multiprocessing as mp
    port = free_port()
    out = str(tmp_path / 'res')
    # fork: the workers need no re-import of this module (seconds instead of a minute)
    mp.start_processes(_dist_worker, args=(port, out), nprocs=2, join=True,
                       start_method='fork')
    r0, r1 = (torch.load(f'{out}.{r}', weights_only=True) for r in range(2))
    assert r0['skip'] is False and r1['skip'] is False
    assert 'loss_res=nan in the generator step' in r0['stop']
    assert 'a loss on another rank in the generator step' in r1['stop']
    assert "'running_var' (shape (2,): 0 NaN and 1 Inf" in r0['weights']
    assert 'a tensor on another rank' in r1['weights']


# ----------------------------------------------------------------------------- real runs
@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    from dira_mm.datasets.phantom import make_demo_dataset
    out = tmp_path_factory.mktemp('nonfinite_data')
    make_demo_dataset(str(out), num_train=16, num_val=8, size=96, seed=0)
    return str(out)


class InjectNaN(Hook):
    """Makes one loss term NaN at the given (1-based) training iterations."""

    def __init__(self, term: str, iters):
        self.term, self.iters = term, set(iters)

    def before_train(self, runner):
        model = unwrap(runner.model)
        owner, name = {'loss_res': (model.restorative, 'loss'),
                       'loss_d': (model.adv_loss, 'discriminator_loss')}[self.term]
        original = getattr(owner, name)

        def poisoned(*args, **kwargs):
            out = original(*args, **kwargs)
            return out * NAN if model.training and runner.iter + 1 in self.iters else out
        setattr(owner, name, poisoned)


class WatchParams(Hook):
    """Which trainable tensors of the generator / discriminator each iteration changed."""

    priority = 'HIGHEST'

    def __init__(self):
        self.changed = {}

    def _params(self, runner):
        model = unwrap(runner.model)
        return {part: [p.detach().clone() for p in unwrap(getattr(model, part)).parameters()
                       if p.requires_grad] for part in ('ssl', 'discriminator')}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self._before = self._params(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        after = self._params(runner)
        self.changed[runner.iter + 1] = {
            part: any(not torch.equal(a, b) for a, b in zip(after[part], self._before[part]))
            for part in after}


def _runner(demo_data, work_dir, epochs=1, hooks=(), options=None, **check):
    cfg = e2e.tiny_config(demo_data, str(work_dir), mode='dira', epochs=epochs,
                          adversarial_begin=0)
    cfg.merge_from_dict(options or {})
    cfg.custom_hooks = [h for h in cfg.custom_hooks if h['type'] != 'ReconstructionVisHook']
    cfg.default_hooks.nonfinite_check = dict(type='NonFiniteCheckHook', **check)
    runner = Runner.from_cfg(cfg)
    for hook in hooks:
        runner.register_hook(hook)
    return runner


def _all_finite(path) -> bool:
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    return find_nonfinite(ckpt['state_dict'].items()) is None


def test_nan_generator_loss_stops_the_run_naming_term_and_iteration(demo_data, tmp_path):
    # epoch 1 trains (4 iterations) and saves; iteration 6 (epoch 2) has a NaN loss_res
    runner = _runner(demo_data, tmp_path / 'g', epochs=2, hooks=[InjectNaN('loss_res', [6])])
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    msg = str(err.value)
    assert 'loss_res=nan in the generator step at epoch 2, iteration 6' in msg
    assert 'loss_dis' not in msg and 'optim_wrapper.generator.optimizer.lr' in msg
    ckpts = sorted(osp.basename(p) for p in glob.glob(str(tmp_path / 'g' / '*.pth')))
    assert ckpts == ['epoch_1.pth'] and _all_finite(tmp_path / 'g' / 'epoch_1.pth')


def test_exploding_discriminator_stops_naming_loss_d(demo_data, tmp_path):
    watch = WatchParams()
    runner = _runner(demo_data, tmp_path / 'd', hooks=[InjectNaN('loss_d', [3]), watch])
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    msg = str(err.value)
    assert 'loss_d=nan in the discriminator step at epoch 1, iteration 3' in msg
    assert 'optim_wrapper.discriminator.optimizer.lr' in msg
    assert sorted(watch.changed) == [1, 2]  # stopped inside iteration 3
    assert not glob.glob(str(tmp_path / 'd' / '*.pth'))


def test_generator_lr_1e6_is_stopped_by_the_weight_check(demo_data, tmp_path):
    # the losses stay finite (BatchNorm), the BN running variances become Inf
    runner = _runner(demo_data, tmp_path / 'lr', epochs=2, param_interval=1,
                     options={'optim_wrapper.generator.optimizer.lr': 1e6})
    with pytest.raises(NonFiniteWeightsError) as err:
        runner.train()
    msg = str(err.value)
    assert 'non-finite weights at epoch 1, iteration ' in msg
    assert "'ssl.backbone." in msg and 'Inf' in msg
    assert not glob.glob(str(tmp_path / 'lr' / '*.pth'))


def test_skip_policy_skips_only_the_bad_step_and_finishes(demo_data, tmp_path):
    watch = WatchParams()
    runner = _runner(demo_data, tmp_path / 's', loss_policy='skip', max_consecutive_skips=2,
                     hooks=[InjectNaN('loss_d', [2]), InjectNaN('loss_res', [3]), watch])
    runner.train()
    assert watch.changed == {1: dict(ssl=True, discriminator=True),
                             2: dict(ssl=True, discriminator=False),
                             3: dict(ssl=False, discriminator=True),
                             4: dict(ssl=True, discriminator=True)}
    hook = next(h for h in runner.hooks if isinstance(h, NonFiniteCheckHook))
    assert hook.skipped_steps == 2
    assert runner.message_hub.get_info('nonfinite_skipped_steps') == 2
    assert runner.message_hub.get_scalar('train/skipped_steps').current() == 2
    assert _all_finite(tmp_path / 's' / 'epoch_1.pth')


def test_weight_check_catches_an_injected_nan_before_the_checkpoint(demo_data, tmp_path):
    class Poison(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if runner.iter + 1 == 4:  # (earlier, loss_d/loss_adv would be NaN first)
                with torch.no_grad():
                    unwrap(runner.model).discriminator.model[0].weight[0, 0, 0, 0] = NAN

    runner = _runner(demo_data, tmp_path / 'p', param_interval=0, hooks=[Poison()])
    with pytest.raises(NonFiniteWeightsError) as err:
        runner.train()
    msg = str(err.value)
    assert "after epoch 1 (iteration 4): 'discriminator.model.0.weight'" in msg
    assert '1 NaN and 0 Inf' in msg and '--resume' in msg
    assert not glob.glob(str(tmp_path / 'p' / '*.pth'))
