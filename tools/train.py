"""Train a dira_mm model from a config (single process, torchrun or slurm).

Examples::

    python tools/train.py configs/dira/CONFIG.py --work-dir work_dirs/run1
    python tools/train.py CONFIG --resume                 # latest checkpoint of work_dir
    python tools/train.py CONFIG --resume PATH.pth        # a given checkpoint
    bash tools/dist_train.sh CONFIG 2                     # 2 processes (gloo on CPU)
"""
import argparse
import os
import os.path as osp
import sys

try:
    import dira_mm  # noqa: F401
except ImportError:
    sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))
    import dira_mm  # noqa: F401

from mmengine.config import Config, DictAction

from dira_mm.engine.optimizers import enable_amp

AMP_FP16_CPU_MESSAGE = ('error: --amp-dtype float16 needs a CUDA device (float16 with loss '
                        'scaling); on CPU, --amp autocasts to bfloat16: drop --amp-dtype or '
                        'give --amp-dtype bfloat16.')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a dira_mm model.')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='directory for logs and checkpoints')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or, without a value, from the latest '
        'checkpoint in the work_dir')
    parser.add_argument(
        '--amp', action='store_true',
        help='mixed precision (AutoAmpOptimWrapper on every optimizer): float16 autocast '
        'with dynamic loss scaling on CUDA, bfloat16 autocast without scaling on CPU')
    parser.add_argument(
        '--amp-dtype', choices=['float16', 'bfloat16'], default=None,
        help='autocast dtype with --amp (default: float16 on CUDA, bfloat16 on CPU; '
        'float16 needs CUDA)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config keys, e.g. train_cfg.max_epochs=10 '
        'optim_wrapper.optimizer.lr=0.01 (lists: key="[a,b]")')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_cfg(args: argparse.Namespace) -> Config:
    """The config after the command-line changes (work_dir, resume, AMP, options)."""
    # lazy_import=False: mmengine 0.10.7 mistakes some stdlib imports for lazy configs.
    cfg = Config.fromfile(args.config, lazy_import=False)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        enable_amp(cfg, args.amp_dtype)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.amp and args.amp_dtype == 'float16':
        import torch
        if not torch.cuda.is_available():
            sys.exit(AMP_FP16_CPU_MESSAGE)
    from dira_mm.utils import (register_safe_loader, setup_cpu_distributed,
                               teardown_distributed)

    register_safe_loader()
    cfg = build_cfg(args)
    from dira_mm.utils.preflight import run_preflight
    run_preflight(cfg)  # config mistakes stop here, naming the key; fits schedulers to the run
    setup_cpu_distributed(cfg, args.launcher)

    from mmengine.runner import Runner

    from dira_mm.registry import RUNNERS
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    runner.train()
    teardown_distributed()


if __name__ == '__main__':
    main()
