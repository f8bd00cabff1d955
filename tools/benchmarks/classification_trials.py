"""Run N independent fine-tuning trials of a classification config; report test AUC mean ± std.

Each trial trains the config with its own seed (global seed and augmentation seed of the
training set), evaluates the best checkpoint (by the config's ``save_best`` metric) on the
test set (ten-crop in the benchmark configs) and records the result. The table printed at
the end is Markdown, with the command that produced it; all numbers also go to
``<work-dir>/trials.json``. The paper's "mean ± std over runs" is this table's last row
(std: sample standard deviation, n - 1).

Examples::

    python tools/benchmarks/classification_trials.py \\
        configs/benchmarks/classification/resnet50_finetune_1xb32-adam-plateau-1000e_chestxray14.py \\
        --trials 5 --work-dir work_dirs/trials/dira_cxr14 \\
        --cfg-options model.pretrained=work_dirs/dira_mocov2_cxr14/epoch_800.pth
    # 1 % of the labels, seeds 10 and 11:
    python tools/benchmarks/classification_trials.py CONFIG --seeds 10 11 \\
        --cfg-options model.pretrained=CKPT train_dataloader.dataset.fraction=0.01
"""
import argparse
import gc
import json
import os
import os.path as osp
import shlex
import sys
from typing import List, Optional

try:
    import dira_mm  # noqa: F401
except ImportError:
    sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
    import dira_mm  # noqa: F401

import numpy as np
from mmengine.config import Config, DictAction

from dira_mm.utils import isolate_run, leaf_dataset_cfg


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='N fine-tuning trials of a classification config; test metric mean ± std.')
    parser.add_argument('config', help='classification config file')
    parser.add_argument('--trials', type=int, default=3, help='number of trials (seeds 0..N-1)')
    parser.add_argument('--seeds', type=int, nargs='+',
                        help='explicit seeds, one trial each (overrides --trials)')
    parser.add_argument('--work-dir', help='folder of the trials (one sub-folder per seed)')
    parser.add_argument('--metric', default='auc', help='test metric to summarise')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config keys for every trial, e.g. model.pretrained=CKPT '
        'train_dataloader.dataset.fraction=0.25')
    args = parser.parse_args(argv)
    if args.seeds is None:
        if args.trials < 1:
            parser.error(f'--trials must be >= 1, got {args.trials}.')
        args.seeds = list(range(args.trials))
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds must differ, got {args.seeds}.')
    return args


def trial_config(args: argparse.Namespace, seed: int, work_dir: str) -> Config:
    """The config of the trial with ``seed``: own work dir, seeds and run names."""
    cfg = Config.fromfile(args.config, lazy_import=False)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    name = osp.splitext(osp.basename(args.config))[0]
    cfg.work_dir = osp.join(work_dir, f'seed_{seed}')
    cfg.randomness = dict(cfg.get('randomness') or {}, seed=seed)
    # per-sample augmentation seeds differ per trial
    leaf_dataset_cfg(cfg.train_dataloader.dataset).seed = seed
    isolate_run(cfg, f'{name}_seed{seed}')
    return cfg


def _best_checkpoint(runner) -> str:
    best = runner.message_hub.get_info('best_ckpt')
    if best and osp.isfile(best):
        return best
    last = osp.join(runner.work_dir, 'last_checkpoint')
    if osp.isfile(last):
        with open(last) as f:
            return f.read().strip()
    raise FileNotFoundError(f'No checkpoint was saved in {runner.work_dir}; the config needs '
                            'a CheckpointHook (save_best=... for the best checkpoint).')


def run_trial(cfg: Config, metric: str) -> dict:
    """Train, then test the best checkpoint; the trial's numbers."""
    from mmengine.runner import Runner

    runner = Runner.from_cfg(cfg)
    runner.train()
    checkpoint = _best_checkpoint(runner)
    best_val = runner.message_hub.get_info('best_score')
    epochs = runner.epoch
    runner.load_checkpoint(checkpoint)
    metrics = runner.test()
    if metric not in metrics:
        raise KeyError(f'The test metrics have no "{metric}" (they have {sorted(metrics)}); '
                       'choose one with --metric.')
    result = dict(seed=int(cfg.randomness['seed']), epochs=int(epochs),
                  checkpoint=checkpoint,
                  best_val=None if best_val is None else float(best_val),
                  test={k: float(v) for k, v in metrics.items()})
    del runner
    gc.collect()
    return result


def _mean_std(values: List[float]) -> str:
    if not values:
        return '—'
    mean = float(np.mean(values))
    if len(values) < 2:
        return f'{mean:.2f}'
    return f'{mean:.2f} ± {float(np.std(values, ddof=1)):.2f}'


def markdown_table(results: List[dict], metric: str, command: str) -> str:
    """The trials and their mean ± std as a Markdown table, after the command."""
    lines = [f'`{command}`', '',
             f'| trial | seed | epochs | best val | test {metric} |',
             '|---:|---:|---:|---:|---:|']
    for i, res in enumerate(results):
        val = '—' if res['best_val'] is None else f'{res["best_val"]:.2f}'
        lines.append(f'| {i} | {res["seed"]} | {res["epochs"]} | {val} | '
                     f'{res["test"][metric]:.2f} |')
    vals = [r['best_val'] for r in results if r['best_val'] is not None]
    tests = [r['test'][metric] for r in results]
    lines.append(f'| mean ± std ({len(results)}) | | | {_mean_std(vals)} | '
                 f'{_mean_std(tests)} |')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    from dira_mm.utils import register_safe_loader

    register_safe_loader()
    name = osp.splitext(osp.basename(args.config))[0]
    work_dir = args.work_dir or osp.join('./work_dirs', 'trials', name)
    results = []
    for seed in args.seeds:
        results.append(run_trial(trial_config(args, seed, work_dir), args.metric))
    argv_text = sys.argv[1:] if argv is None else list(argv)
    command = ' '.join(['python', 'tools/benchmarks/classification_trials.py']
                       + [shlex.quote(a) for a in argv_text])
    table = markdown_table(results, args.metric, command)
    tests = [r['test'][args.metric] for r in results]
    summary = dict(config=args.config, command=command, metric=args.metric, trials=results,
                   mean=float(np.mean(tests)),
                   std=float(np.std(tests, ddof=1)) if len(tests) > 1 else None,
                   table=table)
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, 'trials.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    print(table)
    return summary


if __name__ == '__main__':
    main()
