"""Does the pre-training transfer? DiRA-MoCo-v2 and plain MoCo-v2 against random init, on data that ships.

The whole experiment on 2 CPU cores, with nothing downloaded:

1. **Data.** Chest phantoms (``make_demo_dataset``) with *subtle* nodules (radius 1.5-2.5 %
   of the side, peak density 0.08-0.14 instead of 2-3.5 % and 0.2-0.3) besides
   cardiomegaly and effusion: ``train.txt`` (the unlabelled pre-training set, plus
   pydicom-data's real radiograph), ``val.txt`` (pre-training validation) and a held-out
   ``test.txt``.
2. **Pre-training** (demo size: ResNet-18 U-Net, 128 px, batch 16) of plain MoCo-v2
   (``configs/dira/di-mocov2_resnet18_1xb16-coslr-12e_demo.py``) and DiRA-MoCo-v2
   (``configs/dira/dira_mocov2_demo.py``: warm-up ``dir``, then the adversary for the second
   half), for ``--pretrain-epochs`` each. The runs are short, so the key encoder's momentum
   is ``--momentum`` (0.99; 0.999 would leave it near its random init after a few hundred
   steps). The last checkpoint of each is evaluated.
3. **Transfer**, for each initialisation (random, MoCo-v2, DiRA-MoCo-v2), on a labelled
   ``--fraction`` of ``train.txt`` (chosen by ``LabelFractionDataset``'s fixed seed 99),
   scored by mean AUC (%) of the three findings on ``test.txt``:

   - *k-NN* and *linear* probes of the frozen encoder (pooled last stage, deterministic
     resize + centre crop; the toolbox's ``knn_predict`` / ``linear_probe_predict``);
   - *fine-tune*: ``configs/benchmarks/classification/resnet18_finetune_1xb16-adam-10e_demo.py``
     for ``--finetune-epochs``, one run per seed in ``--seeds`` (the seed also draws the
     random init), Adam 2e-4 at a constant rate, no model selection (the last epoch is
     tested, ten-crop), mean ± std; plus weakly supervised localisation: the pointing game
     of the fine-tuned model's Nodule CAM against the phantoms' known nodule positions.

The Markdown table (also in ``<work-dir>/results.json``) ends with the command that made it.
Defaults take about 35 minutes on 2 CPU cores::

    python benchmarks/transfer_demo.py --work-dir work_dirs/transfer_demo

``--quick`` runs the same code on a few images for a few iterations (the test uses it).
"""
import argparse
import copy
import gc
import json
import os.path as osp
import shlex
import sys
from typing import Dict, List, Optional, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
try:
    import dira_mm  # noqa: F401
except ImportError:
    sys.path.insert(0, ROOT)
    import dira_mm  # noqa: F401

import numpy as np
import torch
from mmengine.config import Config

from dira_mm.utils import isolate_run, leaf_dataset_cfg

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from common import mean_std, run_pretrain, set_data_root  # noqa: E402

PRETRAIN_CONFIGS = {
    'MoCo-v2': 'configs/dira/di-mocov2_resnet18_1xb16-coslr-12e_demo.py',
    'DiRA-MoCo-v2': 'configs/dira/dira_mocov2_demo.py',
}
FINETUNE_CONFIG = 'configs/benchmarks/classification/resnet18_finetune_1xb16-adam-10e_demo.py'
CLASSES = ('Nodule', 'Cardiomegaly', 'Effusion')
SUBTLE_NODULES = dict(nodule_radius=(0.015, 0.025), nodule_amplitude=(0.08, 0.14))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/transfer_demo')
    parser.add_argument('--num-train', type=int, default=320, help='pre-training phantoms')
    parser.add_argument('--num-val', type=int, default=32, help='pre-training validation')
    parser.add_argument('--num-test', type=int, default=256, help='held-out test phantoms')
    parser.add_argument('--pretrain-epochs', type=int, default=16)
    parser.add_argument('--momentum', type=float, default=0.99,
                        help="MoCo key encoder's momentum for the short pre-training runs")
    parser.add_argument('--fraction', type=float, default=0.25,
                        help='labelled fraction of train.txt for the transfer')
    parser.add_argument('--finetune-epochs', type=int, default=15)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--methods', nargs='+', default=list(PRETRAIN_CONFIGS),
                        choices=list(PRETRAIN_CONFIGS), help='pre-training methods to compare')
    parser.add_argument('--nodule-radius', type=float, nargs=2, metavar=('MIN', 'MAX'),
                        default=SUBTLE_NODULES['nodule_radius'],
                        help='nodule radius range, fraction of the side (default: subtle)')
    parser.add_argument('--nodule-amplitude', type=float, nargs=2, metavar=('MIN', 'MAX'),
                        default=SUBTLE_NODULES['nodule_amplitude'],
                        help='nodule peak density range (default: subtle)')
    parser.add_argument('--quick', action='store_true',
                        help='a few images and iterations: checks the code, not the result')
    args = parser.parse_args(argv)
    if args.quick:
        args.num_train, args.num_val, args.num_test = 24, 8, 16
        args.pretrain_epochs, args.finetune_epochs = 2, 1
        args.fraction = max(args.fraction, 0.5)
    if not 0 < args.fraction <= 1:
        parser.error(f'--fraction must be in (0, 1], got {args.fraction}.')
    if args.pretrain_epochs < 2:
        parser.error('--pretrain-epochs must be >= 2 (DiRA warms up for half of them).')
    args.nodules = dict(nodule_radius=tuple(args.nodule_radius),
                        nodule_amplitude=tuple(args.nodule_amplitude))
    return args


def pretrain_config(args, method: str, data_root: str, quick: bool) -> Config:
    """The demo pre-training config of ``method`` on the benchmark data."""
    cfg = Config.fromfile(osp.join(ROOT, PRETRAIN_CONFIGS[method]), lazy_import=False)
    epochs = args.pretrain_epochs
    cfg.work_dir = osp.join(args.work_dir, 'pretrain', method)
    cfg.randomness = dict(seed=0)
    cfg.model.discriminative.momentum = args.momentum
    for loader in ('train_dataloader', 'val_dataloader'):
        set_data_root(cfg[loader], data_root)
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    # validation at the end only; the last checkpoint is the one evaluated
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs
    cfg.default_hooks.checkpoint.update(interval=epochs, save_best=None, max_keep_ckpts=1)
    cfg.default_hooks.logger.interval = 5
    hooks = []
    for hook in cfg.get('custom_hooks', []):
        if hook['type'] == 'DiRAStageHook':
            hook = dict(hook, adversarial_begin=epochs // 2)
        if hook['type'] == 'ReconstructionVisHook':
            hook = dict(hook, interval=epochs)
        hooks.append(hook)
    cfg.custom_hooks = hooks
    if quick:
        cfg.train_dataloader.batch_size = cfg.val_dataloader.batch_size = 4
        cfg.model.discriminative.queue_len = 64
    isolate_run(cfg, f'pretrain_{method}')
    return cfg


def finetune_config(args, data_root: str, seed: int, pretrained: Optional[str],
                    name: str) -> Config:
    """The demo fine-tuning config on ``args.fraction`` of the labels, tested on test.txt."""
    cfg = Config.fromfile(osp.join(ROOT, FINETUNE_CONFIG), lazy_import=False)
    cfg.work_dir = osp.join(args.work_dir, 'finetune', name, f'seed_{seed}')
    cfg.randomness = dict(seed=seed)
    cfg.model.pretrained = pretrained
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        set_data_root(cfg[loader], data_root)
    cfg.train_dataloader.dataset.fraction = args.fraction
    leaf_dataset_cfg(cfg.train_dataloader.dataset).seed = seed
    leaf_dataset_cfg(cfg.test_dataloader.dataset).ann_file = 'test.txt'
    # no model selection: train a fixed number of epochs, test the last weights
    epochs = args.finetune_epochs
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs
    cfg.default_hooks.checkpoint.update(interval=epochs, save_best=None)
    cfg.custom_hooks = []
    cfg.param_scheduler = None
    if args.quick:
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            cfg[loader].batch_size = 4
    isolate_run(cfg, f'finetune_{name}_{seed}')
    return cfg


@torch.no_grad()
def probe_scores(cfg: Config) -> Dict[str, float]:
    """k-NN and linear probe AUCs (%) of the frozen encoder that ``cfg.model`` loads: the
    ``ProbeHook``'s feature extraction and probes, on the labelled train and the test split."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    from dira_mm.engine.hooks.probe_hook import extract_probe_features, probe_aucs
    from dira_mm.registry import MODELS

    with DefaultScope.overwrite_default_scope('dira_mm'):
        torch.manual_seed(cfg.randomness['seed'])
        model = MODELS.build(cfg.model)
        model.init_weights()
        model.eval()
        val_pipeline = leaf_dataset_cfg(cfg.val_dataloader.dataset).pipeline

        def features(loader_cfg) -> Tuple[torch.Tensor, torch.Tensor]:
            loader_cfg = copy.deepcopy(loader_cfg)
            leaf_dataset_cfg(loader_cfg.dataset).pipeline = val_pipeline  # deterministic
            loader_cfg.sampler = dict(type='DefaultSampler', shuffle=False)
            return extract_probe_features(model, Runner.build_dataloader(loader_cfg, seed=0))

        train, test = features(cfg.train_dataloader), features(cfg.test_dataloader)
    return probe_aucs(train, test, knn_cfg=dict(k=10, temperature=0.07),
                      linear_cfg=dict(steps=300, weight_decay=1e-4), class_names=CLASSES)


@torch.no_grad()
def nodule_pointing_game(model, cfg: Config, nodules: dict, size: int = 128) -> float:
    """Share (%) of nodule-positive test phantoms whose Nodule CAM peaks on a nodule.

    The test images are resized to ``size`` (no crop), so each nodule's disk is known from
    the phantom's parameters; the tolerance is the pointing game's 15 px at 224, scaled.
    """
    from mmengine.dataset import Compose

    from dira_mm.datasets.phantom import sample_chest_phantom_params
    from dira_mm.evaluation.functional import pointing_game_hit
    from dira_mm.visualization import class_activation_maps

    pipeline = copy.deepcopy(leaf_dataset_cfg(cfg.val_dataloader.dataset).pipeline)
    pipeline[1]['size'] = pipeline[2]['size'] = size  # Resize, CenterCrop: the whole image
    pipeline = Compose(pipeline)
    root = leaf_dataset_cfg(cfg.test_dataloader.dataset).data_root
    with open(osp.join(root, 'test.txt')) as f:
        names = [line.split()[0] for line in f if line.strip()]
    yy, xx = np.mgrid[:size, :size] + 0.5
    hits = []
    model.eval()
    for i, name in enumerate(names):
        params = sample_chest_phantom_params([0, 2, i], **nodules)
        if not params['nodules']:
            continue
        data = pipeline(dict(img_path=osp.join(root, name)))
        batch = model.data_preprocessor(dict(inputs=[data['inputs']],
                                             data_samples=[data['data_samples']]), False)
        maps, _ = class_activation_maps(model, batch['inputs'], classes=[CLASSES.index(
            'Nodule')])
        mask = np.zeros((size, size), bool)
        for n in params['nodules']:
            mask |= np.hypot(xx - n['u'] * size, yy - n['v'] * size) <= n['r'] * size
        hits.append(pointing_game_hit(maps[0, 0], mask, tolerance=15 * size / 224))
    return 100.0 * float(np.mean(hits)) if hits else float('nan')


def run_finetune(cfg: Config, nodules: dict) -> Dict[str, float]:
    from mmengine.runner import Runner

    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = {k: float(v) for k, v in runner.test().items()}
    metrics['pointing_game/Nodule'] = nodule_pointing_game(runner.model, cfg, nodules)
    del runner
    gc.collect()
    return metrics


def markdown_table(results: dict, command: str) -> str:
    seeds = results['seeds']
    radius, amplitude = (results['nodules'][k] for k in ('nodule_radius', 'nodule_amplitude'))
    lines = [
        f'Mean AUC (%) of Nodule (radius {radius[0]:g}-{radius[1]:g} of the side, density '
        f'{amplitude[0]:g}-{amplitude[1]:g}), Cardiomegaly, Effusion on {results["num_test"]} '
        f'held-out phantoms; {results["num_labelled"]} labelled training images '
        f'({100 * results["fraction"]:g} %). Probes: frozen encoder. Fine-tune: '
        f'{results["finetune_epochs"]} epochs, seeds {" ".join(map(str, seeds))} '
        '(mean ± std), last epoch, ten-crop.', '',
        '| initialisation | pre-training | k-NN | linear | fine-tune | fine-tune Nodule | '
        'Nodule CAM pointing game |',
        '|---|---:|---:|---:|---:|---:|---:|',
    ]
    for name, row in results['rows'].items():
        pre = '—' if row['pretrain_s'] is None else f'{row["pretrain_s"] / 60:.1f} min'
        fine = [t['auc'] for t in row['finetune']]
        nodule = [t.get('auc/Nodule', float('nan')) for t in row['finetune']]
        point = [t['pointing_game/Nodule'] for t in row['finetune']]
        lines.append(f'| {name} | {pre} | {row["probe"]["knn_auc"]:.2f} | '
                     f'{row["probe"]["linear_auc"]:.2f} | {mean_std(fine)} | {mean_std(nodule)} '
                     f'| {mean_std(point)} |')
    lines += ['', 'Pointing game: share (%) of the nodule-positive test phantoms whose Nodule '
              'CAM (fine-tuned model, whole image at 128 px) peaks within 8.6 px (15 px at '
              '224) of a nodule.', '', f'`{command}`']
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    from dira_mm.datasets.phantom import make_demo_dataset
    from dira_mm.utils import register_safe_loader

    register_safe_loader()
    args.work_dir = osp.abspath(args.work_dir)
    data_root = osp.join(args.work_dir, 'data')
    data = make_demo_dataset(data_root, num_train=args.num_train, num_val=args.num_val,
                             num_test=args.num_test, size=256, seed=0, **args.nodules)
    data_root = data['out_dir'] + '/'

    inits: Dict[str, Tuple[Optional[str], Optional[float]]] = {'random': (None, None)}
    for method in args.methods:
        inits[method] = run_pretrain(pretrain_config(args, method, data_root, args.quick))

    rows = {}
    num_labelled = None
    for name, (checkpoint, seconds) in inits.items():
        probe_cfg = finetune_config(args, data_root, args.seeds[0], checkpoint, name)
        probe = probe_scores(probe_cfg)
        finetune = []
        for seed in args.seeds:
            cfg = finetune_config(args, data_root, seed, checkpoint, name)
            finetune.append(run_finetune(cfg, args.nodules))
        rows[name] = dict(checkpoint=checkpoint, pretrain_s=seconds, probe=probe,
                          finetune=finetune)
        if num_labelled is None:
            from dira_mm.registry import DATASETS
            from mmengine.registry import DefaultScope
            with DefaultScope.overwrite_default_scope('dira_mm'):
                num_labelled = len(DATASETS.build(probe_cfg.train_dataloader.dataset))

    argv_text = sys.argv[1:] if argv is None else list(argv)
    command = ' '.join(['python', 'benchmarks/transfer_demo.py']
                       + [shlex.quote(a) for a in argv_text])
    results = dict(command=command, seeds=args.seeds, fraction=args.fraction,
                   num_labelled=num_labelled, num_test=args.num_test,
                   pretrain_epochs=args.pretrain_epochs, finetune_epochs=args.finetune_epochs,
                   momentum=args.momentum, nodules=args.nodules, rows=rows)
    results['table'] = markdown_table(results, command)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)
    print(results['table'])
    return results


if __name__ == '__main__':
    main()
