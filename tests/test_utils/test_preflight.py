"""Config checks before the first iteration: each names the key and says what to change."""
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from torch.utils.data import DataLoader

from dira_mm.engine.hooks import PreflightHook
from dira_mm.utils import preflight as pf
from dira_mm.utils.preflight import ConfigError, preflight

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / 'configs'
TOY_CFG = ROOT / 'tests' / 'data' / 'configs' / 'toy_2proc.py'


def _cfg(name: str = 'dira/dira_mocov2_demo.py', **options) -> Config:
    cfg = Config.fromfile(str(CONFIGS / name), lazy_import=False)
    if options:
        cfg.merge_from_dict(options)
    return cfg


@pytest.fixture
def warned(monkeypatch):
    """The preflight warnings (mmengine's logger drops repeated ones, so they are caught)."""
    messages = []
    monkeypatch.setattr(pf, '_warn', messages.append)
    return messages


def _error(cfg, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        preflight(cfg, **kwargs)
    return str(info.value)


def test_type_typo_names_key_registry_and_close_match():
    message = _error(_cfg(**{'model.discriminative.type': 'MoCoo'}))
    assert ("config key model.discriminative.type: 'MoCoo' is not registered in MODELS; "
            "did you mean 'MoCo'?") in message
    assert message.startswith('1 problem(s)')


@pytest.mark.parametrize('key,value,expected', [
    ('train_dataloader.dataset.pipeline.0.type', 'LoadImageFromFil',
     "config key train_dataloader.dataset.pipeline[0].type: 'LoadImageFromFil' is not "
     "registered in TRANSFORMS; did you mean 'LoadImageFromFile'?"),
    ('optim_wrapper.optimizer.type', 'sgd',
     "config key optim_wrapper.optimizer.type: 'sgd' is not registered in OPTIMIZERS; "
     "did you mean 'SGD'?"),
    ('custom_hooks.0.type', 'MomentumUpdateHok',
     "config key custom_hooks[0].type: 'MomentumUpdateHok' is not registered in HOOKS; "
     "did you mean 'MomentumUpdateHook'?"),
    ('train_dataloader.dataset.type', 'ChestXray14Datset',
     "config key train_dataloader.dataset.type: 'ChestXray14Datset' is not registered in "
     "DATASETS; did you mean 'ChestXray14Dataset'?"),
    ('param_scheduler.0.type', 'CosineAnealingLR',
     "config key param_scheduler[0].type: 'CosineAnealingLR' is not registered in "
     "PARAM_SCHEDULERS; did you mean 'CosineAnnealingLR'"),
])
def test_type_typos_follow_the_registry_of_the_key(key, value, expected):
    cfg = _cfg('dira/dir-mocov2_resnet18-unet_1xb16-coslr-12e_demo.py', **{key: value})
    assert expected in _error(cfg)


def test_types_given_as_scoped_names_or_classes_pass():
    from mmengine.hooks import IterTimerHook
    cfg = _cfg(**{'default_hooks.checkpoint.type': 'mmengine.CheckpointHook',
                  'default_hooks.logger.type': 'mmengine.LoggerHook'})
    cfg.default_hooks.timer.type = IterTimerHook
    assert pf.check_types(cfg) == []
    cfg.default_hooks.logger.type = 'mmengine.LogerHook'
    assert pf.check_types(cfg) == [
        "config key default_hooks.logger.type: 'mmengine.LogerHook' is not registered in "
        "HOOKS; did you mean 'LoggerHook'?"]


def test_misspelled_top_level_key_is_named_and_variables_are_not():
    cfg = _cfg(trian_cfg=dict(max_epochs=1), custom_hook=[], data_root='x', my_pipeline=[])
    problems = pf.check_top_level_keys(cfg)
    assert len(problems) == 2
    assert problems[0].startswith("config key 'trian_cfg' is not read by the Runner; did you "
                                  'mean train_cfg?')
    assert "config key 'custom_hook' " in problems[1] and 'did you mean custom_hooks?' in \
        problems[1]


@pytest.mark.parametrize('key,option,expected', [
    ('default_hooks.checkpoint', 'max_keep_ckpt',
     "config key default_hooks.checkpoint.max_keep_ckpt: {checkpoint} has no option "
     "'max_keep_ckpt'; did you mean 'max_keep_ckpts'?"),  # mmengine's or a subclass
    ('custom_hooks.1', 'adversarial_bgin',
     "config key custom_hooks[1].adversarial_bgin: DiRAStageHook has no option "
     "'adversarial_bgin'; did you mean 'adversarial_begin'?"),
    ('default_hooks.logger', 'intervall',
     "config key default_hooks.logger.intervall: LoggerHook has no option 'intervall'; "
     "did you mean 'interval'?"),
])
def test_misspelled_hook_option_is_named(key, option, expected):
    cfg = _cfg('dira/dira-mocov2_resnet18-unet_1xb16-staged-coslr-12e_demo.py')
    assert cfg.custom_hooks[1].type == 'DiRAStageHook'
    checkpoint = cfg.default_hooks.checkpoint.type  # its **kwargs go to save_checkpoint
    cfg.merge_from_dict({f'{key}.{option}': 3})
    assert pf.check_hook_options(cfg) == [expected.format(checkpoint=checkpoint)]


def test_misspelled_loop_option_is_named():
    cfg = _cfg(**{'train_cfg.max_epoch': 3, 'val_cfg.fp16': True})
    assert pf.check_loop_options(cfg) == [
        "config key train_cfg.max_epoch: EpochBasedTrainLoop has no option 'max_epoch'; did "
        "you mean 'max_epochs'?"]
    cfg = Config(dict(train_cfg=dict(by_epoch=False, max_iters=3, val_interval=1),
                      test_cfg=dict(fp61=True)))
    assert pf.check_loop_options(cfg) == [
        "config key test_cfg.fp61: TestLoop has no option 'fp61'; did you mean 'fp16'?"]


def test_hook_priority_and_real_options_pass():
    cfg = _cfg(**{'default_hooks.checkpoint.priority': 'LOW',
                  'default_hooks.checkpoint.published_keys': ['meta']})
    assert pf.check_hook_options(cfg) == []


def test_barlow_cxr14_at_one_epoch_clamps_warmup_and_drops_cosine(warned):
    # mmengine: "end should be larger than begin, but got begin=10, end=1" without this
    cfg = _cfg('dira/dira_barlow_cxr14.py', **{'train_cfg.max_epochs': 1})
    preflight(cfg)
    gen = cfg.param_scheduler.generator
    assert len(gen) == 1 and gen[0].type == 'LinearLR'
    assert (gen[0].begin, gen[0].end, gen[0].convert_to_iter_based) == (0, 1, True)
    assert [s.type for s in cfg.param_scheduler.discriminator] == ['ConstantLR']
    assert warned[0] == ('param_scheduler.generator[0] (LinearLR): end=10 is past the end of '
                         'the run (train_cfg.max_epochs=1); clamped to end=1.')
    assert warned[1].startswith('param_scheduler.generator[1] (CosineAnnealingLR): begin=10 is '
                                'not before the end of the run (train_cfg.max_epochs=1)')
    assert 'removed for this run' in warned[1] and 'train_cfg.max_epochs > 10' in warned[1]
    assert warned[2].startswith('custom_hooks[0].adversarial_begin=400 is not before the end '
                                'of the run (train_cfg.max_epochs=1)')


def test_iter_based_schedule_is_clamped_to_max_iters(warned):
    cfg = Config(dict(
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=5),
        param_scheduler=[dict(type='LinearLR', by_epoch=False, begin=0, end=100),
                         dict(type='ConstantLR', by_epoch=True, begin=0, end=50)]))
    assert pf.fit_param_schedulers(cfg) == []
    assert cfg.param_scheduler[0].end == 5
    assert cfg.param_scheduler[1].end == 50  # counted in epochs: not comparable, kept
    assert warned == ['param_scheduler[0] (LinearLR): end=100 is past the end of the run '
                      '(train_cfg.max_iters=5); clamped to end=5.']


def test_single_scheduler_that_never_acts_is_removed(warned):
    cfg = Config(dict(train_cfg=dict(max_epochs=2),
                      param_scheduler=dict(type='CosineAnnealingLR', begin=3)))
    pf.fit_param_schedulers(cfg)
    assert cfg.param_scheduler is None and len(warned) == 1


def test_end_before_begin_is_an_error_naming_the_key():
    cfg = Config(dict(train_cfg=dict(max_epochs=20),
                      param_scheduler=dict(g=[dict(type='LinearLR', begin=5, end=5)])))
    assert pf.fit_param_schedulers(cfg) == [
        'config key param_scheduler.g[0]: LinearLR has end=5 <= begin=5; set end after begin']


def test_full_length_configs_are_not_changed(warned):
    cfg = _cfg('dira/dira_barlow_cxr14.py')
    before = cfg.param_scheduler.to_dict()
    preflight(cfg)
    assert cfg.param_scheduler.to_dict() == before and warned == []


def test_stage_past_the_run_warns_with_the_key(warned):
    cfg = _cfg('dira/dira-mocov2_resnet18-unet_1xb16-staged-coslr-12e_demo.py',
               **{'train_cfg.max_epochs': 6})
    pf.check_stage_hook(cfg)
    assert len(warned) == 1
    assert warned[0].startswith('custom_hooks[1].adversarial_begin=6 is not before the end of '
                                'the run (train_cfg.max_epochs=6): the adversarial stage never '
                                'starts')
    warned.clear()
    cfg.train_cfg.max_epochs = 7
    pf.check_stage_hook(cfg)
    assert warned == []


def _scheduler_warnings() -> list:
    from mmengine.optim.scheduler import ConstantLR
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = ConstantLR(optimizer, factor=1.0, begin=0, end=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        pf_filters = [f for f in warnings.filters if 'scheduler' in str(f[1])]
        warnings.filters[:0] = pf_filters  # the preflight's filters stay in front
        scheduler.step()  # the discriminator's schedule in a warm-up epoch: no optimizer step
    return [str(w.message) for w in caught]


def test_staged_warmup_silences_only_the_idle_discriminator_warning(monkeypatch):
    monkeypatch.setattr(warnings, 'filters', list(warnings.filters))  # restored after
    assert any('Detected call of `scheduler.step()`' in m for m in _scheduler_warnings())
    pf.check_stage_hook(_cfg('dira/dir-mocov2_resnet18-unet_1xb16-coslr-12e_demo.py'))
    assert any('Detected call' in m for m in _scheduler_warnings())  # no stage hook
    pf.check_stage_hook(_cfg('dira/dira-mocov2_resnet18-unet_1xb16-staged-coslr-12e_demo.py'))
    assert not any('Detected call' in m for m in _scheduler_warnings())


def test_cpu_run_uses_gloo_and_no_pinned_memory():
    cfg = _cfg('dira/dira_mocov2_cxr14.py')
    assert cfg.env_cfg.dist_cfg.backend == 'nccl' and cfg.train_dataloader.pin_memory
    assert cfg.env_cfg.dist_cfg.timeout == 1800  # a frozen DDP worker ends the job
    pf.adapt_to_device(cfg, cuda=True)
    assert cfg.env_cfg.dist_cfg.backend == 'nccl' and cfg.train_dataloader.pin_memory
    pf.adapt_to_device(cfg, cuda=False)
    assert cfg.env_cfg.dist_cfg == dict(backend='gloo', timeout=1800)
    assert not cfg.train_dataloader.pin_memory and not cfg.val_dataloader.pin_memory


def test_empty_train_loader_stops_before_training():
    runner = SimpleNamespace(
        train_dataloader=DataLoader(list(range(3)), batch_size=4, drop_last=True),
        val_loop=None)
    with pytest.raises(ConfigError) as info:
        PreflightHook().before_train(runner)
    message = str(info.value)
    assert message.startswith('train_dataloader gives 0 batches per epoch: 3 sample(s) per '
                              'process (dataset of 3), train_dataloader.batch_size=4, '
                              'drop_last=True.')
    assert 'Lower train_dataloader.batch_size to at most 3' in message
    runner.train_dataloader = DataLoader(list(range(4)), batch_size=4, drop_last=True)
    PreflightHook().before_train(runner)
    runner.val_loop = SimpleNamespace(dataloader=DataLoader([], batch_size=2))
    with pytest.raises(ConfigError, match='val_dataloader gives 0 batches'):
        PreflightHook().before_train(runner)


def test_file_client_warnings_are_dropped_from_the_run_log():
    logger = MMLogger.get_instance(f'preflight_test_{os.getpid()}', log_level='INFO')
    seen = []

    class Catch(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    logger.addHandler(Catch())
    PreflightHook().before_run(SimpleNamespace(logger=logger))
    from mmengine.fileio import FileClient
    FileClient.infer_client(None, '/tmp')
    logger.warning('something else')
    assert seen == ['something else']


def _train(args, cwd) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT), PYTHONWARNINGS='default')
    return subprocess.run([sys.executable, str(ROOT / 'tools' / 'train.py')] + args,
                          cwd=str(cwd), env=env, capture_output=True, text=True, timeout=300)


def test_tool_stops_on_type_typo_before_the_runner(tmp_path):
    result = _train([str(TOY_CFG), '--work-dir', str(tmp_path), '--cfg-options',
                     'model.type=ToyModle', 'trian_cfg.max_epochs=1'], tmp_path)
    assert result.returncode == 1
    assert "config key model.type: 'ToyModle' is not registered in MODELS; did you mean " \
        "'ToyModel'?" in result.stderr
    assert 'did you mean train_cfg?' in result.stderr
    assert 'System environment' not in result.stdout + result.stderr  # before the Runner
    assert 'Traceback' not in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU-only printout and warnings')
def test_tiny_cpu_run_is_quiet_and_says_gloo(tmp_path):
    result = _train([str(TOY_CFG), '--work-dir', str(tmp_path / 'run'), '--cfg-options',
                     'train_cfg.max_epochs=1', 'train_dataloader.pin_memory=True',
                     'default_hooks.preflight.type=PreflightHook', 'runner_type=DiraRunner'],
                    tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    for noise in ('FileClient', 'HardDiskBackend', 'pin_memory\' argument', 'FutureWarning'):
        assert noise not in out, noise
    # what the run uses: gloo, the CPU, no GPU (mmengine printed "GPU number: 1", nccl)
    assert "dist_cfg: {'backend': 'gloo'}" in out and "'nccl'" not in out
    assert '    device: cpu (no CUDA)\n    world_size: 1\n' in out
    assert 'GPU number: 0\n' in out and 'GPU number: 1' not in out
    assert 'no CUDA: train_dataloader.pin_memory True -> False' in out


def test_tool_stops_when_the_batch_is_larger_than_the_dataset(tmp_path):
    result = _train([str(TOY_CFG), '--work-dir', str(tmp_path / 'run'), '--cfg-options',
                     'train_dataloader.batch_size=32', 'train_dataloader.drop_last=True',
                     'default_hooks.preflight.type=PreflightHook'], tmp_path)
    assert result.returncode != 0
    assert 'train_dataloader gives 0 batches per epoch: 16 sample(s) per process' in \
        result.stderr
    assert not list((tmp_path / 'run').glob('*.pth'))  # no checkpoint of an untrained model


def _global_bn_worker(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    from dira_mm.models.utils.global_batch_norm import GlobalBatchNorm
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                            world_size=2)
    torch.manual_seed(0)
    x = torch.randn(4, 3, 2, 2) * 3 + 1
    weight = torch.randn(4, 3, 2, 2)
    mine = x[rank * 2:(rank + 1) * 2].clone().requires_grad_()
    bn = GlobalBatchNorm(3)
    with warnings.catch_warnings():
        # the deprecated torch.distributed.nn all_reduce warned at every call
        warnings.simplefilter('error', FutureWarning)
        (bn(mine) * weight[rank * 2:(rank + 1) * 2]).sum().backward()
    torch.save(dict(grad=mine.grad, mean=bn.running_mean), f'{out}/rank{rank}.pth')
    dist.destroy_process_group()


def test_global_batch_norm_without_deprecation_matches_batch_norm(tmp_path):
    import torch.multiprocessing as mp

    from helpers import free_port
    port = free_port()
    mp.start_processes(_global_bn_worker, args=(port, str(tmp_path)), nprocs=2,
                       start_method='fork')
    torch.manual_seed(0)
    x = (torch.randn(4, 3, 2, 2) * 3 + 1).requires_grad_()
    weight = torch.randn(4, 3, 2, 2)
    bn = torch.nn.BatchNorm2d(3)
    (bn(x) * weight).sum().backward()
    for rank in (0, 1):
        got = torch.load(tmp_path / f'rank{rank}.pth', weights_only=True)
        assert torch.allclose(got['grad'], x.grad[rank * 2:(rank + 1) * 2], atol=1e-5)
        assert torch.allclose(got['mean'], bn.running_mean, atol=1e-6)


def test_known_harmless_warnings_are_silenced_and_others_kept():
    from dira_mm.utils.preflight import silence_known_harmless_warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        silence_known_harmless_warnings()
        warnings.warn('`broadcast_buffers` is deprecated. Use `forward_sync_buffers` instead.',
                      FutureWarning)
        warnings.warn('something else is deprecated', FutureWarning)
    assert [str(w.message) for w in caught] == ['something else is deprecated']


def test_evaluation_drops_early_stopping_so_the_training_set_is_not_built():
    """mmengine's EarlyStoppingHook.before_run builds runner.train_loop (and the training
    dataloader): tools/test.py on a benchmark config needed the whole training set."""
    name = 'benchmarks/classification/resnet50_finetune_1xb32-adam-plateau-1000e_chestxray14.py'
    cfg = _cfg(name)
    kinds = [h['type'] for h in cfg.custom_hooks]
    assert 'EarlyStoppingHook' in kinds
    preflight(cfg)  # training keeps it
    assert [h['type'] for h in cfg.custom_hooks] == kinds
    cfg.custom_hooks.append(dict(type='EmptyCacheHook'))
    preflight(cfg, training=False)
    assert [h['type'] for h in cfg.custom_hooks] == ['EmptyCacheHook']
