"""Evaluate a checkpoint: the test (or, if the config has none, validation) metrics.

For pre-training configs the metric is typically the validation loss. Examples::

    python tools/test.py CONFIG work_dirs/run1/epoch_100.pth --out metrics.json
    bash tools/dist_test.sh CONFIG CHECKPOINT 2
"""
import argparse
import json
import os
import os.path as osp
import sys

try:
    import dira_mm  # noqa: F401
except ImportError:
    sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))
    import dira_mm  # noqa: F401

from mmengine.config import Config, ConfigDict, DictAction


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a dira_mm checkpoint.')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='directory for the evaluation logs')
    parser.add_argument('--out', help='dump the metrics to this JSON file')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config keys, e.g. val_dataloader.batch_size=8')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if args.out is not None and not args.out.endswith('.json'):
        parser.error(f'--out must be a .json file, got "{args.out}".')
    return args


def use_val_as_test(cfg: Config) -> bool:
    """Fill missing ``test_dataloader/test_cfg/test_evaluator`` from the ``val_*`` keys.

    Returns:
        True if the validation set is used.
    """
    if cfg.get('test_dataloader') is not None:
        if cfg.get('test_cfg') is None:
            cfg.test_cfg = dict(type='TestLoop')
        if cfg.get('test_evaluator') is None:
            cfg.test_evaluator = cfg.get('val_evaluator')
        return False
    if cfg.get('val_dataloader') is None or cfg.get('val_evaluator') is None:
        raise ValueError(
            f'{cfg.filename}: neither test_dataloader/test_evaluator nor '
            'val_dataloader/val_evaluator is set, so there is nothing to evaluate.')
    cfg.test_dataloader = cfg.val_dataloader
    cfg.test_evaluator = cfg.val_evaluator
    test_cfg = ConfigDict(type='TestLoop')
    val_cfg = cfg.get('val_cfg') or {}
    if 'fp16' in val_cfg:
        test_cfg['fp16'] = val_cfg['fp16']
    cfg.test_cfg = test_cfg
    return True


def _to_json(value):
    if hasattr(value, 'tolist'):  # tensors and numpy values
        return value.tolist()
    return value


def main(argv=None) -> dict:
    args = parse_args(argv)
    from dira_mm.utils import (register_safe_loader, setup_cpu_distributed,
                               teardown_distributed)

    register_safe_loader()
    if not osp.isfile(args.checkpoint):
        sys.exit(f'error: checkpoint "{args.checkpoint}" does not exist.')
    cfg = Config.fromfile(args.config, lazy_import=False)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    cfg.resume = False
    on_val = use_val_as_test(cfg)
    from dira_mm.utils.preflight import run_preflight
    run_preflight(cfg, training=False)  # config mistakes stop here, naming the key
    setup_cpu_distributed(cfg, args.launcher)

    from mmengine.dist import is_main_process
    from mmengine.runner import Runner

    from dira_mm.registry import RUNNERS
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    metrics = runner.test()
    if is_main_process():
        split = 'validation set (no test_dataloader in the config)' if on_val else 'test set'
        print(f'Metrics of {args.checkpoint} on the {split}:')
        for key, value in metrics.items():
            print(f'  {key}: {_to_json(value)}')
        if args.out is not None:
            out_dir = osp.dirname(osp.abspath(args.out))
            os.makedirs(out_dir, exist_ok=True)
            with open(args.out, 'w') as f:
                json.dump({k: _to_json(v) for k, v in metrics.items()}, f, indent=2)
            print(f'Metrics written to {args.out}')
    teardown_distributed()
    return metrics


if __name__ == '__main__':
    main()
