"""ProbeHook: probe metrics in a real Runner run, unchanged training, best checkpoint, DDP
feature gathering; the probe config."""
import copy
import glob
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from dira_mm.datasets.phantom import PHANTOM_CLASSES
from dira_mm.engine.hooks import ProbeHook
from dira_mm.engine.hooks.probe_hook import extract_probe_features, preserve_training_state
from dira_mm.models.utils import unwrap
from dira_mm.registry import HOOKS, MODELS, TRANSFORMS
from dira_mm.utils.checkpoint import get_rng_state
from helpers import e2e_helpers, free_port, read_scalars

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PROBE_CONFIG = osp.join(REPO, 'configs', 'dira', 'probe',
                        'dira-mocov2_resnet18-unet_1xb16-staged-coslr-12e_demo_probe.py')
e2e = e2e_helpers()


# ----------------------------------------------------------------------------- units
def test_preserve_training_state_restores_modes_rng_and_bn():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4),
                                torch.nn.Dropout(0.5))
    model.train()
    model[2].eval()  # kept in eval on purpose by training
    before_bn = {k: v.clone() for k, v in model.state_dict().items()}
    rng = get_rng_state()
    with preserve_training_state(model):
        assert not any(m.training for m in model.modules())
        model(torch.randn(2, 1, 8, 8))
        np.random.rand()
    after = get_rng_state()
    assert torch.equal(after['torch'], rng['torch'])
    assert after['python'] == rng['python']
    assert np.array_equal(after['numpy']['key'], rng['numpy']['key'])
    assert after['numpy']['pos'] == rng['numpy']['pos']
    assert [m.training for m in model.modules()] == [True, True, True, False]
    assert all(torch.equal(v, before_bn[k]) for k, v in model.state_dict().items())


def test_arguments_are_checked():
    loader = dict(dataset=dict(type='ChestXray14Dataset'))
    with pytest.raises(ValueError, match='subset of'):
        ProbeHook(loader, loader, probes=('svm', ))
    with pytest.raises(ValueError, match="save_best"):
        ProbeHook(loader, loader, probes=('knn', ), save_best='linear_auc')
    with pytest.raises(TypeError, match='`val_dataloader` must be a dataloader config'):
        ProbeHook(loader, 'val.txt')
    assert ProbeHook(loader, loader, probes='linear', save_best=True).save_best == 'linear_auc'
    assert ProbeHook(loader, loader, save_best='probe/knn_auc').save_best == 'knn_auc'


def test_probe_config_builds():
    cfg = Config.fromfile(PROBE_CONFIG, lazy_import=False)
    init_default_scope('dira_mm')
    probe = [h for h in cfg.custom_hooks if h['type'] == 'ProbeHook']
    assert len(probe) == 1 and [h['type'] for h in cfg.custom_hooks[:-1]] == \
        [h['type'] for h in Config.fromfile(osp.join(REPO, 'configs', 'dira',
                                                     'dira_mocov2_demo.py')).custom_hooks]
    hook = HOOKS.build(copy.deepcopy(probe[0]))
    assert hook.classes == PHANTOM_CLASSES and hook.save_best == 'knn_auc'
    for t in probe[0]['train_dataloader']['dataset']['pipeline']:
        TRANSFORMS.build(t)


# ----------------------------------------------------------------------------- runs
# the e2e tests' small demo data (16 + 1 training, 8 validation images at 96 x 96)
demo_data = e2e.demo_data


def _config(data_root: str, work_dir: str, probe: bool = True, epochs: int = 2,
            num_train: int = 4, **hook_args) -> Config:
    """The probe config at test size: ``num_train`` training images (batch 4), 64 x 64,
    probes every epoch on all 17 + 8 labelled images."""
    cfg = e2e.demo_config_at_test_size(PROBE_CONFIG, data_root, work_dir)
    cfg.train_cfg.max_epochs = epochs
    cfg.train_dataloader.dataset.indices = num_train
    cfg.val_dataloader.dataset.indices = 4
    # no epoch / best-loss checkpoints (~100 MB each): only the probe's best is written
    cfg.default_hooks.checkpoint.update(interval=100, save_last=False, save_best=None)
    # validation draws random numbers too; without isolation, any draw the hook made
    # would shift the training augmentations and show in the losses
    cfg.default_hooks.safe_checkpoint.isolate_val_rng = False
    hooks = []
    for hook in cfg.custom_hooks:
        if hook['type'] == 'ProbeHook':
            if not probe:
                continue
            hook = copy.deepcopy(hook)
            hook.update(interval=1, **hook_args)
            for key in ('train_dataloader', 'val_dataloader'):
                hook[key].update(num_workers=0, batch_size=4)
                hook[key]['dataset']['data_root'] = data_root
                for t in hook[key]['dataset']['pipeline'][1:3]:  # Resize, CenterCrop
                    t['size'] = 64
        hooks.append(hook)
    cfg.custom_hooks = hooks
    return cfg


def _train(cfg):
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


@pytest.fixture(scope='module')
def runs(demo_data, tmp_path_factory):
    root = tmp_path_factory.mktemp('probe_runs')
    with_probe = _train(_config(demo_data, str(root / 'probe')))
    without = _train(_config(demo_data, str(root / 'plain'), probe=False))
    return with_probe, without


def test_probe_scores_reach_the_log_and_scalars(runs):
    runner, _ = runs
    val = [r for r in read_scalars(runner.work_dir) if 'iter' not in r]
    assert [r['step'] for r in val] == [1, 2]
    for row in val:
        for probe in ('knn', 'linear'):
            assert 0.0 <= row[f'probe/{probe}_auc'] <= 100.0
            per_class = [row[f'probe/{probe}_auc/{c}'] for c in PHANTOM_CLASSES]
            assert row[f'probe/{probe}_auc'] == pytest.approx(np.mean(per_class))
    log = open(glob.glob(osp.join(runner.work_dir, '*', '*.log'))[0]).read()
    assert 'probe/knn_auc:' in log and 'probe/linear_auc/Effusion:' in log
    # removed after each validation: a later validation does not log stale scores
    assert not any(k.startswith('val/probe/') for k in runner.message_hub.log_scalars)


def test_training_is_unchanged_by_the_hook(runs):
    with_probe, without = runs
    got = [r for r in read_scalars(with_probe.work_dir) if 'iter' in r]
    ref = [r for r in read_scalars(without.work_dir) if 'iter' in r]
    assert len(got) == len(ref) == 2  # 2 epochs of 1 iteration, a probe in between
    for a, b in zip(got, ref):
        for key in ('loss', 'loss_dis', 'loss_res', 'loss_adv', 'loss_d'):
            assert a[key] == b[key], (a['iter'], key)
    state, ref_state = (unwrap(r.model).state_dict() for r in runs)
    assert all(torch.equal(v, ref_state[k]) for k, v in state.items())


def test_best_probe_checkpoint_is_plain_and_unique(runs):
    runner, _ = runs
    val = [r for r in read_scalars(runner.work_dir) if 'iter' not in r]
    scores = [r['probe/knn_auc'] for r in val]
    best_epoch = 1 + int(np.argmax(scores))
    files = glob.glob(osp.join(runner.work_dir, 'best_probe_*.pth'))
    assert [osp.basename(f) for f in files] == [f'best_probe_knn_auc_epoch_{best_epoch}.pth']
    assert torch.serialization.get_unsafe_globals_in_checkpoint(files[0]) == []
    ckpt = torch.load(files[0], weights_only=True)
    assert ckpt['meta']['probe'] == dict(metric='probe/knn_auc', score=max(scores))
    assert ckpt['meta']['epoch'] == best_epoch
    assert set(ckpt['state_dict']) == set(unwrap(runner.model).state_dict())
    assert runner.message_hub.get_info('probe_best_score_knn_auc') == max(scores)


def test_a_direct_probe_changes_nothing_and_repeats_the_last_scores(runs):
    runner, _ = runs
    hook = next(h for h in runner.hooks if isinstance(h, ProbeHook))
    model = unwrap(runner.model)
    model.train()
    model.discriminator.eval()
    modes = [m.training for m in model.modules()]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = get_rng_state()
    scores = hook.run_probes(runner)
    assert torch.equal(get_rng_state()['torch'], rng['torch'])
    assert [m.training for m in model.modules()] == modes
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    last = [r for r in read_scalars(runner.work_dir) if 'iter' not in r][-1]
    for key, value in scores.items():
        assert value == pytest.approx(last[f'probe/{key}'], abs=1e-6), key


def test_without_validation_the_probe_runs_after_the_epoch(demo_data, tmp_path):
    cfg = _config(demo_data, str(tmp_path / 'noval'), epochs=1, probes=('linear', ),
                  save_best=True, per_class=False)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None  # no validation loop
    runner = _train(cfg)
    rows = [r for r in read_scalars(cfg.work_dir) if 'probe/linear_auc' in r]
    assert len(rows) == 1 and rows[0]['step'] == 1 and 'probe/knn_auc' not in rows[0]
    assert osp.isfile(osp.join(cfg.work_dir, 'best_probe_linear_auc_epoch_1.pth'))
    assert not glob.glob(osp.join(cfg.work_dir, 'best_loss_*.pth'))
    assert runner.message_hub.get_info('probe_best_score_linear_auc') == rows[0]['probe/linear_auc']


def test_wrong_classes_and_paths_fail_when_the_loaders_are_built(demo_data, tmp_path):
    # ProbeHook.before_train builds them: these errors stop a run before its first step
    init_default_scope('dira_mm')
    cfg = _config(demo_data, str(tmp_path / 'bad_classes'), classes=('Nodule', 'Fracture'))
    with pytest.raises(KeyError, match=r"\['Fracture'\] are not classes"):
        HOOKS.build(cfg.custom_hooks[-1]).loaders(runner=None)
    cfg = _config(demo_data, str(tmp_path / 'bad_path'))
    cfg.custom_hooks[-1]['val_dataloader']['dataset']['ann_file'] = 'nope.txt'
    with pytest.raises(FileNotFoundError, match='ProbeHook `val_dataloader`.*ann_file'):
        HOOKS.build(cfg.custom_hooks[-1]).loaders(runner=None)


# ----------------------------------------------------------------------------- DDP
def _probe_loaders(demo_data):
    cfg = _config(demo_data, '/unused')
    hook = HOOKS.build(cfg.custom_hooks[-1])
    return cfg, hook


def _ddp_worker(rank, port, demo_data, weights, out):
    import torch.distributed as dist
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    try:
        init_default_scope('dira_mm')
        cfg, hook = _probe_loaders(demo_data)
        model = MODELS.build(cfg.model)
        model.load_state_dict(torch.load(weights, weights_only=True))
        loaders = hook.loaders(runner=None)
        with preserve_training_state(model):
            feats = {k: extract_probe_features(model, v) for k, v in loaders.items()}
        if rank == 0:
            torch.save(feats, out)
    finally:
        dist.destroy_process_group()


def test_features_are_gathered_in_dataset_order_under_ddp(demo_data, tmp_path):
    init_default_scope('dira_mm')
    cfg, hook = _probe_loaders(demo_data)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    weights, out = str(tmp_path / 'weights.pth'), str(tmp_path / 'feats.pth')
    torch.save(model.state_dict(), weights)
    loaders = hook.loaders(runner=None)
    with preserve_training_state(model):
        ref = {k: extract_probe_features(model, v) for k, v in loaders.items()}
    assert ref['train'][0].shape == (17, 512) and ref['val'][1].shape == (8, 14)
    # fork: the workers inherit the imports (one thread each, as DataLoader workers)
    torch.multiprocessing.start_processes(
        _ddp_worker, args=(free_port(), demo_data, weights, out), nprocs=2, join=True,
        start_method='fork')
    got = torch.load(out, weights_only=True)
    for split in ('train', 'val'):  # 17 = 2 x 9 - 1: the padding sample is dropped
        assert torch.allclose(got[split][0], ref[split][0], atol=1e-4)
        assert torch.equal(got[split][1], ref[split][1])


# ----------------------------------------------------------------------------- volumes
class _Loader(list):
    """A list of batches with the ``dataset`` length extract_probe_features reads."""

    def __init__(self, batches, num):
        super().__init__(batches)
        self.dataset = range(num)


def test_probe_features_of_a_3d_encoder_are_pooled_over_all_axes():
    from dira_mm.models.algorithms import MoCo
    from dira_mm.structures import DiRADataSample
    from toy_backbones import NDToyUNet3D  # noqa: F401 (registers the toy)

    torch.manual_seed(0)
    model = MoCo(backbone=dict(type='NDToyUNet3D', width=2),
                 neck=dict(type='MoCoV2Neck', in_channels=4, hid_channels=4, out_channels=2,
                           spatial_dims=3),
                 head=dict(type='ContrastiveHead'), queue_len=4, feat_dim=2,
                 data_preprocessor=dict(num_channels=1, spatial_dims=3)).eval()
    volumes = torch.rand(5, 1, 8, 8, 4)
    labels = torch.tensor([[1., 0.], [0., 1.], [1., 1.], [0., 0.], [1., 0.]])

    def batch(lo, hi):
        samples = [DiRADataSample(gt_label=labels[i].numpy()) for i in range(lo, hi)]
        return dict(inputs=[volumes[lo:hi]], data_samples=samples)

    with preserve_training_state(model):
        feats, got = extract_probe_features(model, _Loader([batch(0, 3), batch(3, 5)], 5))
        deepest = model.backbone.forward_encoder(volumes)[-1]
    assert feats.shape == (5, 4)
    torch.testing.assert_close(feats, deepest.mean(dim=(2, 3, 4)))
    assert torch.equal(got, labels)
