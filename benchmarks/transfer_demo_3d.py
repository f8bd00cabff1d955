"""Does 3-D pre-training transfer? DiRA-TransVW and Models Genesis vs random init, on CT phantoms.

The whole experiment on 2 CPU cores, with nothing downloaded:

1. **Data.** ``make_ct_demo_dataset``: ``--num`` procedural chest-CT phantoms (``--size``
   voxels, 1 x 1 x 2.5 mm) in HU with nodule masks, split as Models Genesis' LUNA16 folds
   (phantom ``i`` in subset ``i % 10``: 0-4 train, 5-6 val, 7-9 test). See
   docs/demo3d_data.md; they are phantoms, not patients, and say nothing about LUNA16.
2. **Pre-training** (demo size: the slim Models Genesis UNet3D, base 8, on 32x32x16 cubes of
   ``train.txt``, no labels), ``--pretrain-epochs`` each:

   - *Models Genesis*: ``configs/genesis/genesis_unet3d-slim_1xb6-sgd-steplr-10e_demo.py``
     (restoration of the published distortions; SGD lr 1, StepLR);
   - *DiRA-TransVW* (3-D DiRA, our design: docs/transvw_genesis.md):
     ``configs/transvw/dira-transvw_unet3d-slim_1xb8-adam-adam-steplr-10e_demo.py``, after
     ``tools/misc/transvw_discover.py`` has written the visual-word instances of the train
     and val volumes (8 classes, intensity features, as that config's header says);
   - *TransVW* (``--methods``, not run by default): the same without the adversary.

   All use the same backbone, so the rows differ by the initialisation only. The last
   checkpoint of each is used.
3. **Transfer**: nodule segmentation of the phantoms,
   ``configs/benchmarks/segmentation/nodule3d/genesis-unet3d-slim_finetune_1xb4-adam-20e_demo3d.py``
   (encoder + decoder from the checkpoint, a new 1-class head; 32x32x16 crops, half on a
   nodule; DiceCE; Adam 1e-3 constant) for ``--finetune-epochs`` on ``--fraction`` of
   ``train.txt``, one run per seed in ``--seeds`` (the seed also draws the random init and the
   head), no model selection (the last epoch is tested). The score is the Dice (%) of the
   nodule masks on the **whole** test volumes, inferred by MONAI's sliding window (64x64x32
   windows, overlap 0.5, Gaussian blending): the mean over volumes (``dice``) and the
   Dice of all test voxels pooled (``dice_global``), mean ± std over seeds.

The Markdown table (also in ``<work-dir>/results.json``) ends with the command that made it::

    python benchmarks/transfer_demo_3d.py --work-dir work_dirs/transfer_demo_3d

``--quick`` runs the same code on a few small phantoms for a few iterations (the test uses it).
"""
import argparse
import gc
import json
import os.path as osp
import shlex
import sys
import time
from typing import Dict, List, Optional, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
try:
    import dira_mm  # noqa: F401
except ImportError:
    sys.path.insert(0, ROOT)
    import dira_mm  # noqa: F401

import numpy as np
from mmengine.config import Config

from dira_mm.utils import isolate_run, leaf_dataset_cfg

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from common import mean_std, run_pretrain, set_data_root  # noqa: E402

PRETRAIN_CONFIGS = {
    'Models Genesis': 'configs/genesis/genesis_unet3d-slim_1xb6-sgd-steplr-10e_demo.py',
    'TransVW': 'configs/transvw/transvw_unet3d-slim_1xb8-adam-steplr-10e_demo.py',
    'DiRA-TransVW': 'configs/transvw/dira-transvw_unet3d-slim_1xb8-adam-adam-steplr-10e_demo.py',
}
DEFAULT_METHODS = ('Models Genesis', 'DiRA-TransVW')
FINETUNE_CONFIG = ('configs/benchmarks/segmentation/nodule3d/'
                   'genesis-unet3d-slim_finetune_1xb4-adam-20e_demo3d.py')
TRANSVW_CLASSES = 8


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/transfer_demo_3d')
    parser.add_argument('--num', type=int, default=20, help='CT phantoms (10 %% test each)')
    parser.add_argument('--size', type=int, nargs=3, default=(96, 96, 48),
                        metavar=('X', 'Y', 'Z'), help='voxels per phantom')
    parser.add_argument('--pretrain-epochs', type=int, default=10)
    parser.add_argument('--finetune-epochs', type=int, default=60)
    parser.add_argument('--fraction', type=float, default=1.0,
                        help='labelled fraction of train.txt for the transfer')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--methods', nargs='+', default=list(DEFAULT_METHODS),
                        choices=list(PRETRAIN_CONFIGS), help='pre-training methods to compare')
    parser.add_argument('--quick', action='store_true',
                        help='a few small phantoms and iterations: checks the code, not the '
                        'result')
    args = parser.parse_args(argv)
    if args.quick:
        args.num, args.size = 20, (64, 64, 32)
        args.pretrain_epochs, args.finetune_epochs = 1, 1
    if not 0 < args.fraction <= 1:
        parser.error(f'--fraction must be in (0, 1], got {args.fraction}.')
    if args.pretrain_epochs < 1 or args.finetune_epochs < 1:
        parser.error('--pretrain-epochs and --finetune-epochs must be >= 1.')
    args.size = tuple(int(s) for s in args.size)
    return args


def _transvw_discover(data_root: str, out_dir: str, quick: bool) -> str:
    """TransVW's self-discovery on the train / val volumes as the TransVW demo config's header
    says (8 classes of 32x32x16 instances, intensity features); returns the output folder."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'transvw_discover', osp.join(ROOT, 'tools', 'misc', 'transvw_discover.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    top_k, top_k_val = (4, 2) if quick else (10, 4)
    tool.main([osp.join(data_root, 'train.txt'), '--val', osp.join(data_root, 'val.txt'),
               '--prefix', osp.join(data_root, 'ct'), '--out', out_dir,
               '--num-classes', str(TRANSVW_CLASSES), '--top-k', str(top_k),
               '--top-k-val', str(top_k_val), '--crop-size', '32', '32', '16',
               '--border', '8', '8', '4', '--no-air-filter', '--feature-source', 'intensity',
               '--quiet'])
    return out_dir.rstrip('/') + '/'


def pretrain_config(args, method: str, data_root: str, transvw_root: Optional[str]) -> Config:
    """The demo pre-training config of ``method`` on the benchmark data."""
    cfg = Config.fromfile(osp.join(ROOT, PRETRAIN_CONFIGS[method]), lazy_import=False)
    epochs = args.pretrain_epochs
    cfg.work_dir = osp.join(args.work_dir, 'pretrain', method.replace(' ', '_'))
    cfg.randomness = dict(seed=0)
    root = transvw_root if 'TransVW' in method else data_root
    for loader in ('train_dataloader', 'val_dataloader'):
        set_data_root(cfg[loader], root)
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    # validation at the end only; the last checkpoint is the one transferred
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs
    cfg.default_hooks.checkpoint.update(interval=epochs, save_best=None, max_keep_ckpts=1)
    cfg.default_hooks.logger.interval = 5
    cfg.custom_hooks = [dict(h, interval=epochs) if h['type'] == 'ReconstructionVisHook' else h
                        for h in cfg.get('custom_hooks', [])]
    if args.quick:
        cfg.train_dataloader.batch_size = cfg.val_dataloader.batch_size = 4
    isolate_run(cfg, f'pretrain3d_{method.replace(" ", "_")}')
    return cfg


def finetune_config(args, data_root: str, seed: int, pretrained: Optional[str],
                    name: str) -> Config:
    """The demo nodule-segmentation config on ``args.fraction`` of train.txt, tested on
    test.txt (whole volumes, sliding window); no validation, no model selection."""
    cfg = Config.fromfile(osp.join(ROOT, FINETUNE_CONFIG), lazy_import=False)
    cfg.work_dir = osp.join(args.work_dir, 'finetune', name.replace(' ', '_'), f'seed_{seed}')
    cfg.randomness = dict(seed=seed)
    cfg.model.pretrained = pretrained
    for loader in ('train_dataloader', 'test_dataloader'):
        set_data_root(cfg[loader], data_root)
    cfg.train_dataloader.dataset.fraction = args.fraction
    leaf_dataset_cfg(cfg.train_dataloader.dataset).seed = seed
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    epochs = args.finetune_epochs
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs)
    cfg.default_hooks.checkpoint.update(interval=epochs, save_best=None, max_keep_ckpts=1)
    cfg.custom_hooks = []
    cfg.param_scheduler = None
    if args.quick:
        cfg.train_dataloader.batch_size = 2
    isolate_run(cfg, f'finetune3d_{name.replace(" ", "_")}_{seed}')
    return cfg


def run_finetune(cfg: Config) -> Dict[str, float]:
    """Train, test; the test metrics plus the seconds and the tensors loaded from the
    pre-training checkpoint (0 for random init)."""
    from mmengine.runner import Runner

    start = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = {k: float(v) for k, v in runner.test().items()}
    report = runner.model.pretrained_report
    metrics['loaded_tensors'] = float(len(report['matched'])) if report else 0.0
    metrics['seconds'] = time.perf_counter() - start
    del runner
    gc.collect()
    return metrics


def markdown_table(results: dict, command: str) -> str:
    seeds = results['seeds']
    size = 'x'.join(map(str, results['size']))
    lines = [
        f'Nodule segmentation Dice (%) on the {results["num_test"]} whole test phantoms '
        f'({size} voxels; sliding window 64x64x32, overlap 0.5, Gaussian), after '
        f'{results["finetune_epochs"]} fine-tuning epochs on {results["num_labelled"]} '
        f'labelled training phantoms; seeds {" ".join(map(str, seeds))} (mean ± std), last '
        f'epoch. Pre-training: {results["pretrain_epochs"]} epochs on the training phantoms '
        '(slim Genesis UNet3D, 32x32x16 cubes), the same backbone for every row.', '',
        '| initialisation | pre-training | tensors loaded | Dice (mean over volumes) | '
        'Dice (pooled voxels) | fine-tune time |',
        '|---|---:|---:|---:|---:|---:|',
    ]
    for name, row in results['rows'].items():
        pre = '—' if row['pretrain_s'] is None else f'{row["pretrain_s"] / 60:.1f} min'
        runs = row['finetune']
        loaded = int(runs[0]['loaded_tensors'])
        dice = [t['dice'] for t in runs]
        pooled = [t['dice_global'] for t in runs]
        secs = np.mean([t['seconds'] for t in runs]) / 60
        lines.append(f'| {name} | {pre} | {loaded} | {mean_std(dice)} | {mean_std(pooled)} '
                     f'| {secs:.1f} min/run |')
    lines += ['', f'`{command}`']
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    from dira_mm.datasets.ct_phantom_data import make_ct_demo_dataset
    from dira_mm.utils import register_safe_loader

    register_safe_loader()
    start = time.perf_counter()
    args.work_dir = osp.abspath(args.work_dir)
    data_root = osp.join(args.work_dir, 'data')
    make_ct_demo_dataset(data_root, num=args.num, size=args.size, seed=0, include_mri=False)
    data_root = data_root + '/'
    transvw_root = None
    if any('TransVW' in m for m in args.methods):
        transvw_root = _transvw_discover(data_root, osp.join(args.work_dir, 'transvw_words'),
                                         args.quick)

    inits: Dict[str, Tuple[Optional[str], Optional[float]]] = {'random': (None, None)}
    for method in args.methods:
        inits[method] = run_pretrain(pretrain_config(args, method, data_root, transvw_root))

    rows = {}
    for name, (checkpoint, seconds) in inits.items():
        finetune = [run_finetune(finetune_config(args, data_root, seed, checkpoint, name))
                    for seed in args.seeds]
        rows[name] = dict(checkpoint=checkpoint, pretrain_s=seconds, finetune=finetune)

    def _count(split: str) -> int:
        with open(osp.join(data_root, split)) as f:
            return sum(1 for line in f if line.strip())

    from mmengine.registry import DefaultScope

    from dira_mm.registry import DATASETS
    with DefaultScope.overwrite_default_scope('dira_mm'):
        num_labelled = len(DATASETS.build(finetune_config(
            args, data_root, args.seeds[0], None, 'count').train_dataloader.dataset))
    argv_text = sys.argv[1:] if argv is None else list(argv)
    command = ' '.join(['python', 'benchmarks/transfer_demo_3d.py']
                       + [shlex.quote(a) for a in argv_text])
    results = dict(command=command, seeds=args.seeds, fraction=args.fraction,
                   num_labelled=num_labelled,
                   num_test=_count('test.txt'), size=list(args.size),
                   pretrain_epochs=args.pretrain_epochs, finetune_epochs=args.finetune_epochs,
                   methods=list(args.methods), rows=rows,
                   total_minutes=(time.perf_counter() - start) / 60)
    results['table'] = markdown_table(results, command)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)
    print(results['table'])
    print(f'total: {results["total_minutes"]:.1f} min')
    return results


if __name__ == '__main__':
    main()
