"""The CUDA-only checks of dira_mm in one command, with a table of results.

Run on a machine with a GPU (``bash tools/misc/gpu_check.sh``); it takes a few minutes
(each check has its own time limit, all together under 10) and prints::

    check             result  detail                                        seconds

Checks (on the demo data, generated into a temporary folder):

- ``amp-fp16`` / ``amp-bf16``: tiny DiRA-MoCo runs (adversary on: both optimizer
  wrappers) with ``AutoAmpOptimWrapper`` against float32 from the same seed; the largest
  relative gap of the per-iteration losses, and that autocast ran (conv output dtype).
- ``nccl-syncbn`` / ``nccl-globalbn``: ``torch.nn.SyncBatchNorm`` and dira_mm's
  ``GlobalBatchNorm`` in an nccl group of 2 processes (1 with a single GPU) against one
  ``BatchNorm2d`` on the whole batch: outputs, input gradients, running statistics;
  ``nccl-globalbn-amp``: GlobalBatchNorm on float16 input under autocast, where the
  per-channel sum of squares would overflow float16 (its statistics are float32).
- ``nccl-train``: ``tools/dist_train.sh`` (nccl) trains the tiny DiRA for one epoch.
- ``cuda-rng-resume``: a run resumed from its epoch-1 checkpoint draws the same CUDA
  random numbers as the uninterrupted run (bit-exact) and ends with close weights.
- ``throughput``: images/s of DiRA-MoCo ResNet-50 U-Net training steps at 224 x 224,
  fp32 vs fp16 vs bf16 autocast (information; passes when every step is finite).

Exit codes: 0 every check passed; 1 a check failed; 2 bad arguments; 77 no CUDA device
(nothing was run; 77 is the "skipped" code of automake and meson test harnesses).
``--allow-cpu`` runs the same checks on CPU (gloo, bfloat16 only, tiny sizes) to test
this script itself.
"""
import argparse
import copy
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Dict, List, Optional

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

NO_CUDA_EXIT = 77
NO_CUDA_MESSAGE = ('gpu_check: no CUDA device (torch.cuda.is_available() is False); the '
                   'GPU checks did not run. Run this on a machine with an NVIDIA GPU and a '
                   'CUDA build of torch (exit code 77 = skipped).')
DEMO_CONFIG = osp.join(ROOT, 'configs', 'dira', 'dira_mocov2_demo.py')
THROUGHPUT_CONFIG = osp.join(ROOT, 'configs', 'dira', 'dira_mocov2_cxr14.py')
# Relative gap |amp - fp32| / |fp32| of the per-iteration total loss of an AMP run to
# float32 from the same seed. The first iteration (same weights) measures the forward's
# rounding alone: bf16 0.6 % on CPU (tests/test_engine/test_amp_cpu.py), fp16 has 3 more
# mantissa bits. Later iterations add the drift of two diverging trainings (3.8 % after 16
# bf16 CPU iterations of the quick run), hence the looser bound.
AMP_FIRST_RTOL = 0.03
AMP_RUN_RTOL = 0.10
BN_ATOL = 1e-4
TIME_LIMIT_S = 540


# ----------------------------------------------------------------------------- helpers
def _tiny_config_file(data_root: str, out: str, quick: bool) -> str:
    """A config file: the demo DiRA-MoCo at test size, adversary on from the start."""
    size, batch = (64, 4) if quick else (128, 8)
    text = f"""_base_ = [{DEMO_CONFIG!r}]
_root = {data_root!r}
train_dataloader = dict(batch_size={batch}, num_workers=0,
                        dataset=dict(data_root=_root))
val_dataloader = dict(batch_size={batch}, num_workers=0, dataset=dict(data_root=_root))
test_dataloader = dict(batch_size={batch}, num_workers=0, dataset=dict(data_root=_root))
train_cfg = dict(max_epochs=2, val_interval=1)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=-1))
custom_hooks = [dict(type='MomentumUpdateHook'),
                dict(type='DiRAStageHook', adversarial_begin=0, by_epoch=True)]
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
randomness = dict(seed=0, deterministic=False)
_size = {size}
"""
    if quick:
        text += """model = dict(
    discriminative=dict(backbone=dict(decoder_channels=(32, 16, 16, 8, 8)),
                        neck=dict(hid_channels=32, out_channels=16), feat_dim=16,
                        queue_len=32),
    adversarial=dict(discriminator=dict(channels=(8, 8, 16, 16))))
"""
    path = osp.join(out, 'tiny_dira.py')
    with open(path, 'w') as f:
        f.write(text)
    return path


def _load_cfg(path: str, work_dir: str, tag: str):
    from mmengine.config import Config
    cfg = Config.fromfile(path, lazy_import=False)
    size = cfg.get('_size', 128)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        pipeline = [dict(t) for t in cfg[key].dataset.pipeline]
        pipeline[1]['crop'] = dict(pipeline[1]['crop'], size=size)
        cfg[key].dataset.pipeline = pipeline
    cfg.work_dir = work_dir
    cfg.visualizer.name = f'vis_{tag}'
    cfg.experiment_name = f'gpu_check_{tag}'
    return cfg


def _set_amp(cfg, dtype: Optional[str]) -> None:
    """``tools/train.py --amp --amp-dtype DTYPE`` on ``cfg`` (nothing for fp32)."""
    if dtype is not None:
        from dira_mm.engine.optimizers import enable_amp
        enable_amp(cfg, dtype)


def _make_recorder():
    import torch
    from mmengine.hooks import Hook
    from torch import nn

    from dira_mm.models.utils import unwrap

    class Recorder(Hook):
        """Losses, conv output dtypes, and one random draw per iteration (RNG check)."""

        priority = 'VERY_LOW'

        def __init__(self) -> None:
            self.losses, self.dtypes, self.draws = [], set(), []
            self.active = False

        def before_train(self, runner) -> None:
            conv = next(m for m in unwrap(runner.model).ssl.backbone.modules()
                        if isinstance(m, nn.Conv2d))
            conv.register_forward_hook(
                lambda m, i, o: self.dtypes.add(str(o.dtype)) if self.active else None)

        def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
            self.active = True
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
            self.draws.append(float(torch.rand(1, device=device)))

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            self.active = False
            self.losses.append(float(torch.as_tensor(outputs['loss']).detach()))

    return Recorder()


def _train(cfg_path: str, work_dir: str, tag: str, amp: Optional[str] = None,
           resume: Optional[str] = None):
    from mmengine.runner import Runner
    cfg = _load_cfg(cfg_path, work_dir, tag)
    _set_amp(cfg, amp)
    if resume:
        cfg.resume, cfg.load_from = True, resume
    runner = Runner.from_cfg(cfg)
    rec = _make_recorder()
    runner.register_hook(rec)
    runner.train()
    return runner, rec


# ----------------------------------------------------------------------------- workers
def worker_amp(args) -> dict:
    import math

    import torch
    dtype = args.dtype
    if dtype == 'float16' and not torch.cuda.is_available():
        return dict(ok=True, skipped=True, detail='float16 needs CUDA (skipped on CPU)')
    base = osp.join(args.out, f'amp_{dtype}')
    _, ref = _train(args.config, osp.join(base, 'fp32'), f'{dtype}_fp32')
    runner, amp = _train(args.config, osp.join(base, 'amp'), f'{dtype}_amp', amp=dtype)
    gaps = [abs(a - b) / max(abs(b), 1e-12) for a, b in zip(amp.losses, ref.losses)]
    wrapper = runner.optim_wrapper['discriminator']
    scaler = getattr(wrapper, 'loss_scaler', None)
    scale = float(scaler.get_scale()) if scaler is not None else None
    expect = {'float16': 'torch.float16', 'bfloat16': 'torch.bfloat16'}[dtype]
    finite = all(math.isfinite(v) for v in amp.losses)
    ok = (finite and len(gaps) == len(ref.losses) > 0 and gaps[0] < AMP_FIRST_RTOL
          and max(gaps) < AMP_RUN_RTOL and amp.dtypes == {expect} and max(gaps) > 0)
    detail = (f'loss gap to fp32 {gaps[0]:.2%} at it 1 (< {AMP_FIRST_RTOL:.0%}), max '
              f'{max(gaps):.2%} over {len(gaps)} it (< {AMP_RUN_RTOL:.0%}); conv out '
              f'{sorted(amp.dtypes)}; loss scale {scale}')
    return dict(ok=ok, detail=detail, gaps=gaps, amp_losses=amp.losses,
                fp32_losses=ref.losses)


def worker_rng(args) -> dict:
    import torch
    base = osp.join(args.out, 'rng')
    full, rec = _train(args.config, osp.join(base, 'full'), 'rng_full')
    per_epoch = len(rec.draws) // 2
    ckpt = osp.join(base, 'full', 'epoch_1.pth')
    resumed, rec2 = _train(args.config, osp.join(base, 'resumed'), 'rng_resumed',
                           resume=ckpt)
    same_draws = rec2.draws == rec.draws[per_epoch:]
    a = full.model.state_dict()
    b = resumed.model.state_dict()
    diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a
               if a[k].is_floating_point())
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    ok = same_draws and diff < 1e-3
    detail = (f'{device} draws after resume {"bit-exact" if same_draws else "DIFFER"} '
              f'({len(rec2.draws)} it); max weight diff {diff:.1e} (< 1e-3: cuDNN and '
              'atomics are not bit-exact)')
    return dict(ok=ok, detail=detail, draws_full=rec.draws, draws_resumed=rec2.draws)


def worker_ddp(args) -> dict:
    """Inside torchrun: SyncBN and GlobalBatchNorm against BatchNorm2d on the whole batch."""
    import torch
    import torch.distributed as tdist
    from torch import nn

    from dira_mm.models.utils import GlobalBatchNorm
    cuda = torch.cuda.is_available()
    local_rank = int(os.environ.get('LOCAL_RANK', 0))
    if cuda:
        torch.cuda.set_device(local_rank)
    tdist.init_process_group('nccl' if cuda else 'gloo')
    rank, world = tdist.get_rank(), tdist.get_world_size()
    device = torch.device('cuda', local_rank) if cuda else torch.device('cpu')
    torch.manual_seed(0)
    x_all = torch.randn(4 * world, 8, 5, 5, device=device) * 3 + 1
    w_all = torch.randn_like(x_all)

    def run(layer, x, w):
        layer = layer.to(device).train()
        x = x.clone().requires_grad_(True)
        out = layer(x)
        (out * w).sum().backward()
        return out.detach(), x.grad.detach(), layer.running_mean, layer.running_var

    ref = run(nn.BatchNorm2d(8), x_all, w_all)
    sl = slice(rank * 4, (rank + 1) * 4)
    results = {}
    layers = {'globalbn': GlobalBatchNorm(8)}
    if cuda:
        layers['syncbn'] = nn.SyncBatchNorm(8)
    for name, layer in layers.items():
        out, grad, rm, rv = run(layer, x_all[sl], w_all[sl])
        # the reference gradient is of the global sum; each rank holds its slice
        errs = [float((out - ref[0][sl]).abs().max()), float((grad - ref[1][sl]).abs().max()),
                float((rm - ref[2]).abs().max()), float((rv - ref[3]).abs().max())]
        err = torch.tensor(max(errs), device=device)
        tdist.all_reduce(err, op=tdist.ReduceOp.MAX)
        results[name] = float(err)
    tols = {k: BN_ATOL for k in results}
    # GlobalBatchNorm under autocast: half input, statistics in float32. 4 x 64 x 64 values
    # per channel and rank: their sum of squares (~1.6e5) would overflow float16.
    half = torch.float16 if cuda else torch.bfloat16
    x_big = torch.randn(4 * world, 8, 64, 64, device=device) * 3 + 1
    ref_big = nn.BatchNorm2d(8).to(device).train()(x_big).detach()
    with torch.autocast(device.type, dtype=half):
        out = GlobalBatchNorm(8).to(device).train()(x_big[sl].to(half))
    rel = (out.float() - ref_big[sl]).abs().max() / ref_big.abs().max()
    tdist.all_reduce(rel, op=tdist.ReduceOp.MAX)
    results['globalbn_amp'] = float(rel)
    # input and output rounding to `half`, relative to the largest output
    tols['globalbn_amp'] = 8 * torch.finfo(half).eps
    ok = out.dtype == half and all(results[k] < tols[k] for k in results)
    tdist.barrier()
    tdist.destroy_process_group()
    if rank == 0:
        return dict(ok=ok, world=world, backend='nccl' if cuda else 'gloo', errors=results,
                    tols=tols, amp_dtype=str(half))
    return {}


def worker_throughput(args) -> dict:
    import math

    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    from dira_mm.registry import MODELS
    DefaultScope.get_instance(f'gpu_check_tp_{time.time()}', scope_name='dira_mm')
    cuda = torch.cuda.is_available()
    cfg = _load_cfg(args.config, osp.join(args.out, 'tp'), 'tp')
    if not args.quick:
        cfg.model = Config.fromfile(THROUGHPUT_CONFIG, lazy_import=False).model
        cfg.train_dataloader.batch_size = 32
        for t in cfg.train_dataloader.dataset.pipeline:
            if 'crop' in t:
                t['crop'] = dict(t['crop'], size=224)
    cfg.train_dataloader.num_workers = 0
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader)))
    n_img = len(batch['data_samples'])
    iters, warm = (2, 1) if args.quick else (20, 5)
    rates, finite = {}, True
    dtypes = [None, 'float16', 'bfloat16'] if cuda else [None, 'bfloat16']
    for dtype in dtypes:
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        model.init_weights()
        model = model.cuda() if cuda else model
        optim_cfg = copy.deepcopy(cfg.optim_wrapper.to_dict())
        if dtype:
            for name in ('generator', 'discriminator'):
                optim_cfg[name].update(type='AutoAmpOptimWrapper', dtype=dtype)
        wrapper = build_optim_wrapper(model, optim_cfg)
        model.train()
        for i in range(warm + iters):
            if i == warm:
                if cuda:
                    torch.cuda.synchronize()
                start = time.perf_counter()
            log = model.train_step(batch, wrapper)
        if cuda:
            torch.cuda.synchronize()
        rates[dtype or 'float32'] = n_img * iters / (time.perf_counter() - start)
        finite = finite and math.isfinite(float(log['loss']))
        del model, wrapper
        if cuda:
            torch.cuda.empty_cache()
    base = rates['float32']
    detail = ', '.join(f'{k} {v:.0f} img/s ({v / base:.2f}x)' for k, v in rates.items())
    return dict(ok=finite, detail=f'batch {n_img}: {detail}', rates=rates)


WORKERS = dict(amp=worker_amp, rng=worker_rng, ddp=worker_ddp, throughput=worker_throughput)


# ----------------------------------------------------------------------------- driver
def _python() -> List[str]:
    return [sys.executable]


def _sub(argv: List[str], result: str, timeout: float, env: Dict[str, str]) -> dict:
    """Run one worker in its own process; its JSON result or the failure's tail."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(ok=False, detail=f'timed out after {timeout:.0f} s',
                    seconds=time.perf_counter() - start)
    seconds = time.perf_counter() - start
    if proc.returncode == 0 and osp.isfile(result):
        with open(result) as f:
            out = json.load(f)
        out['seconds'] = seconds
        return out
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-12:]
    return dict(ok=False, detail=f'exit {proc.returncode}: ' + ' | '.join(tail)[-600:],
                seconds=seconds)


def _print_table(rows: List[tuple]) -> None:
    print()
    print(f'{"check":<17} {"result":<7} {"seconds":>7}  detail')
    print('-' * 100)
    for name, res in rows:
        status = 'SKIP' if res.get('skipped') else ('PASS' if res.get('ok') else 'FAIL')
        print(f'{name:<17} {status:<7} {res.get("seconds", 0.0):>7.1f}  {res.get("detail", "")}')
    print()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=None, help='work folder (default: a temporary one)')
    parser.add_argument('--allow-cpu', action='store_true',
                        help='run the checks on CPU (gloo, bf16 only) to test this script')
    parser.add_argument('--quick', action='store_true', help='tiny sizes (self-test)')
    parser.add_argument('--only', nargs='+', default=None,
                        choices=['amp', 'ddp', 'train', 'rng', 'throughput'],
                        help='run only these checks')
    parser.add_argument('--worker', choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument('--dtype', default=None, help=argparse.SUPPRESS)
    parser.add_argument('--config', default=None, help=argparse.SUPPRESS)
    parser.add_argument('--result', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    import torch
    if args.worker:
        out = WORKERS[args.worker](args)
        if out and args.result:
            with open(args.result, 'w') as f:
                json.dump(out, f)
        return 0

    cuda = torch.cuda.is_available()
    if not cuda and not args.allow_cpu:
        print(NO_CUDA_MESSAGE, file=sys.stderr)
        return NO_CUDA_EXIT
    n_gpu = torch.cuda.device_count() if cuda else 0
    out = args.out or tempfile.mkdtemp(prefix='dira_gpu_check_')
    os.makedirs(out, exist_ok=True)
    print(f'gpu_check: torch {torch.__version__}, '
          + (f'{n_gpu} x {torch.cuda.get_device_name(0)}' if cuda else 'CPU (--allow-cpu)')
          + f'; work folder {out}', flush=True)

    from dira_mm.datasets.phantom import make_demo_dataset
    data = osp.join(out, 'data')
    if not osp.isfile(osp.join(data, 'train.txt')):
        make_demo_dataset(data, num_train=32, num_val=8, size=160 if not args.quick else 80,
                          seed=0)
    cfg_path = _tiny_config_file(data, out, args.quick)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    me = osp.abspath(__file__)
    only = set(args.only or ['amp', 'ddp', 'train', 'rng', 'throughput'])
    common = ['--out', out, '--config', cfg_path] + (['--quick'] if args.quick else [])
    rows = []
    deadline = time.perf_counter() + TIME_LIMIT_S

    def limit(share: float) -> float:
        return max(10.0, min(share, deadline - time.perf_counter()))

    def run_worker(name: str, worker: str, share: float, extra=(), launcher=None):
        result = osp.join(out, f'{name}.json')
        if osp.exists(result):
            os.remove(result)
        argv = (launcher or _python()) + [me, '--worker', worker, '--result', result] \
            + common + list(extra)
        res = _sub(argv, result, limit(share), env)
        rows.append((name, res))
        print(f'  {name}: {"PASS" if res.get("ok") else "FAIL"} {res.get("detail", "")}',
              flush=True)

    if 'amp' in only:
        if cuda:
            run_worker('amp-fp16', 'amp', 120, ['--dtype', 'float16'])
        run_worker('amp-bf16', 'amp', 120, ['--dtype', 'bfloat16'])
    if 'ddp' in only:
        nproc = 2 if (n_gpu >= 2 or not cuda) else 1
        launcher = _python() + ['-m', 'torch.distributed.run', f'--nproc_per_node={nproc}',
                                '--master_port', str(29600 + os.getpid() % 1000)]
        start = time.perf_counter()
        result = osp.join(out, 'ddp.json')
        if osp.exists(result):
            os.remove(result)
        res = _sub(launcher + [me, '--worker', 'ddp', '--result', result] + common,
                   result, limit(90), env)
        errors = res.get('errors') or {}
        for key in ('syncbn', 'globalbn', 'globalbn_amp'):
            if key in errors:
                tol = res['tols'][key]
                what = (f'{res["amp_dtype"]} autocast, relative' if key == 'globalbn_amp'
                        else 'max |diff|')
                rows.append((f'nccl-{key.replace("_", "-")}', dict(
                    ok=errors[key] < tol, seconds=time.perf_counter() - start,
                    detail=f'{res["world"]} proc {res["backend"]}: {what} to BatchNorm2d '
                           f'on the whole batch {errors[key]:.1e} (< {tol:.0e})')))
            elif errors and not cuda:
                rows.append((f'nccl-{key}', dict(ok=True, skipped=True,
                                                 detail='torch SyncBN needs CUDA')))
            else:
                rows.append((f'nccl-{key}', dict(ok=False, seconds=res.get('seconds', 0.0),
                                                 detail=res.get('detail', 'no result'))))
        print('  ddp: ' + ', '.join(f'{n} {"PASS" if r.get("ok") else "FAIL"}'
                                    for n, r in rows[-3:]), flush=True)
    if 'train' in only:
        nproc = 2 if (n_gpu >= 2 or not cuda) else 1
        start = time.perf_counter()
        work = osp.join(out, 'dist_train')
        argv = ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), cfg_path, str(nproc),
                '--work-dir', work, '--cfg-options', 'train_cfg.max_epochs=1']
        denv = dict(env, PYTHON=sys.executable, PORT=str(29700 + os.getpid() % 1000))
        try:
            proc = subprocess.run(argv, cwd=ROOT, env=denv, capture_output=True, text=True,
                                  timeout=limit(150))
            ok = proc.returncode == 0 and osp.isfile(osp.join(work, 'epoch_1.pth'))
            detail = (f'{nproc} proc {"nccl" if cuda else "gloo"}, 1 epoch: '
                      + ('epoch_1.pth written' if ok else
                         f'exit {proc.returncode}: ' + ' | '.join(
                             (proc.stdout + proc.stderr).strip().splitlines()[-8:])[-600:]))
        except subprocess.TimeoutExpired:
            ok, detail = False, 'timed out'
        rows.append(('nccl-train', dict(ok=ok, detail=detail,
                                        seconds=time.perf_counter() - start)))
        print(f'  nccl-train: {"PASS" if ok else "FAIL"} {detail}', flush=True)
    if 'rng' in only:
        run_worker('cuda-rng-resume', 'rng', 120)
    if 'throughput' in only:
        run_worker('throughput', 'throughput', 120)

    _print_table(rows)
    failed = [n for n, r in rows if not r.get('ok')]
    with open(osp.join(out, 'gpu_check.json'), 'w') as f:
        json.dump({n: r for n, r in rows}, f, indent=1, default=str)
    print('gpu_check: ' + ('all checks passed' if not failed else f'FAILED: {failed}')
          + f' (results in {osp.join(out, "gpu_check.json")})')
    return 1 if failed else 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.exit(1)
