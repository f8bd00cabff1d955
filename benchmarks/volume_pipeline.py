"""Throughput of the Models Genesis volume distortion on one CPU core: official-style vs ours.

It cuts ``--samples`` cubes of 64x64x32 (``--cube``) from a seeded synthetic MNI-like head
volume (skull shell, grey and white matter, ventricles, smooth bias and noise, scaled to
[0, 1]), then runs in this one process with one thread (numpy/BLAS/OpenMP thread variables
set to 1 before numpy loads, ``torch.set_num_threads(1)``, ``threadpoolctl`` when
installed), both pipelines interleaved by blocks of ``--block`` cubes so that load changes
of the machine hit both alike:

- ``official-style``: Models Genesis' ``generate_pair`` for one sample, **reimplemented in
  this file from the published description, for timing only** (it is not the official
  code; description: /work/shared/reference/dira_3d_transvw.md section 2.3): Python
  ``random`` / global ``np.random`` draws on the per-sample ``(1, X, Y, Z)`` array; flip
  while ``random() < 0.4`` (at most 3) over axes ``[0, 1, 2]``; local pixel shuffling as a
  Python loop over 10,000 windows (``np.random.shuffle`` of each flattened window, read
  from the original, written into a copy); the Bézier intensity map sampled at 100,000
  points (``scipy.special.comb`` Bernstein polynomials) and applied with ``np.interp``;
  in- and out-painting as ``while`` loops over cuboids;
- ``dira_mm``: :class:`dira_mm.datasets.transforms.genesis.GenesisDistortion` (with
  ``official_axes=True``, so both flip the same axes) and its step functions, drawing from
  one ``numpy.random.Generator``.

Rows: each step alone, always applied (local shuffle; non-linear intensity; painting,
in-painting with probability 0.2 else out-painting) and the full pair at the published
rates. Then statistics of both pipelines' outputs on the same cubes (shape, range, mean,
share of changed voxels) to show that they do the same thing. Run from the repository
root::

    python benchmarks/volume_pipeline.py --samples 256 --block 16 --seed 0
"""
import os

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS',
             'NUMEXPR_NUM_THREADS', 'VECLIB_MAXIMUM_THREADS'):
    os.environ.setdefault(_var, '1')

import argparse  # noqa: E402
import copy  # noqa: E402
import os.path as osp  # noqa: E402
import random  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from contextlib import nullcontext  # noqa: E402
from typing import Callable, Dict, List, Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from dira_mm.datasets.transforms import genesis as G  # noqa: E402

try:
    from scipy.special import comb
except ImportError:  # pragma: no cover
    from math import comb

# --------------------------------------------------------------------------- volume


def synthetic_head(shape: Sequence[int] = (112, 128, 96), seed: int = 0) -> np.ndarray:
    """A seeded MNI-like T1 head, float32 in [0, 1]: a skull shell, grey matter, white
    matter, dark ventricles, a smooth bias field and noise."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in shape],
                        indexing='ij')
    x, y, z = grids
    r = np.sqrt((x / 0.85)**2 + (y / 0.95)**2 + (z / 0.8)**2)
    # gyri: a wavy grey/white boundary
    wave = 0.05 * np.sin(9 * x + rng.uniform(0, 6)) * np.sin(11 * y + rng.uniform(0, 6)) \
        * np.sin(7 * z + rng.uniform(0, 6))
    img = np.zeros(shape, np.float32)
    img[(r > 0.9) & (r < 1.0)] = 0.35                       # skull / scalp
    img[r <= 0.85] = 0.55                                    # grey matter
    img[r <= 0.65 + wave] = 0.8                              # white matter
    vent = ((x / 0.12)**2 + (y / 0.3)**2 + ((z - 0.1) / 0.15)**2) < 1
    img[vent & (r < 0.6)] = 0.15                             # ventricles
    bias = 1 + 0.1 * x - 0.05 * y + 0.05 * z
    img = img * bias + 0.03 * rng.standard_normal(shape).astype(np.float32)
    img -= img.min()
    return (img / img.max()).astype(np.float32)


def make_cubes(volume: np.ndarray, num: int, cube: Sequence[int], seed: int) -> List[np.ndarray]:
    """``num`` random ``(1, *cube)`` float32 crops of ``volume``."""
    rng = np.random.default_rng(seed + 1)
    out = []
    for _ in range(num):
        start = [rng.integers(0, s - c + 1) for s, c in zip(volume.shape, cube)]
        sl = tuple(slice(s, s + c) for s, c in zip(start, cube))
        out.append(np.ascontiguousarray(volume[sl][None]))
    return out


# ----------------------------------------------------- official style (reimplemented)
# Reimplementation from the published description (pytorch/utils.py of Models Genesis as
# summarised in the reference), for timing only. Arrays are one sample, (1, X, Y, Z).


def off_bernstein_poly(i, n, t):
    return comb(n, i) * (t**(n - i)) * (1 - t)**i


def off_bezier_curve(points, n_times=1000):
    n_points = len(points)
    x_points = np.array([p[0] for p in points])
    y_points = np.array([p[1] for p in points])
    t = np.linspace(0.0, 1.0, n_times)
    polynomial_array = np.array([off_bernstein_poly(i, n_points - 1, t)
                                 for i in range(0, n_points)])
    return np.dot(x_points, polynomial_array), np.dot(y_points, polynomial_array)


def off_data_augmentation(x, y, prob=0.5):
    cnt = 3
    while random.random() < prob and cnt > 0:
        degree = random.choice([0, 1, 2])
        x = np.flip(x, axis=degree)
        y = np.flip(y, axis=degree)
        cnt = cnt - 1
    return x, y


def off_nonlinear_transformation(x, prob=0.5):
    if random.random() >= prob:
        return x
    points = [[0, 0], [random.random(), random.random()], [random.random(), random.random()],
              [1, 1]]
    xvals, yvals = off_bezier_curve(points, n_times=100000)
    if random.random() < 0.5:
        xvals = np.sort(xvals)
    else:
        xvals, yvals = np.sort(xvals), np.sort(yvals)
    return np.interp(x, xvals, yvals)


def off_local_pixel_shuffling(x, prob=0.5):
    if random.random() >= prob:
        return x
    image_temp = copy.deepcopy(x)
    orig_image = copy.deepcopy(x)
    _, img_rows, img_cols, img_deps = x.shape
    num_block = 10000
    for _ in range(num_block):
        block_noise_size_x = random.randint(1, img_rows // 10)
        block_noise_size_y = random.randint(1, img_cols // 10)
        block_noise_size_z = random.randint(1, img_deps // 10)
        noise_x = random.randint(0, img_rows - block_noise_size_x)
        noise_y = random.randint(0, img_cols - block_noise_size_y)
        noise_z = random.randint(0, img_deps - block_noise_size_z)
        window = orig_image[0, noise_x:noise_x + block_noise_size_x,
                            noise_y:noise_y + block_noise_size_y,
                            noise_z:noise_z + block_noise_size_z]
        window = window.flatten()
        np.random.shuffle(window)
        window = window.reshape((block_noise_size_x, block_noise_size_y, block_noise_size_z))
        image_temp[0, noise_x:noise_x + block_noise_size_x,
                   noise_y:noise_y + block_noise_size_y,
                   noise_z:noise_z + block_noise_size_z] = window
    return image_temp


def off_image_in_painting(x):
    _, img_rows, img_cols, img_deps = x.shape
    cnt = 5
    while cnt > 0 and random.random() < 0.95:
        block_noise_size_x = random.randint(img_rows // 6, img_rows // 3)
        block_noise_size_y = random.randint(img_cols // 6, img_cols // 3)
        block_noise_size_z = random.randint(img_deps // 6, img_deps // 3)
        noise_x = random.randint(3, img_rows - block_noise_size_x - 3)
        noise_y = random.randint(3, img_cols - block_noise_size_y - 3)
        noise_z = random.randint(3, img_deps - block_noise_size_z - 3)
        x[:, noise_x:noise_x + block_noise_size_x, noise_y:noise_y + block_noise_size_y,
          noise_z:noise_z + block_noise_size_z] = np.random.rand(
              block_noise_size_x, block_noise_size_y, block_noise_size_z) * 1.0
        cnt -= 1
    return x


def off_image_out_painting(x):
    _, img_rows, img_cols, img_deps = x.shape
    image_temp = copy.deepcopy(x)
    x = np.random.rand(x.shape[0], x.shape[1], x.shape[2], x.shape[3]) * 1.0

    def copy_back():
        block_noise_size_x = img_rows - random.randint(3 * img_rows // 7, 4 * img_rows // 7)
        block_noise_size_y = img_cols - random.randint(3 * img_cols // 7, 4 * img_cols // 7)
        block_noise_size_z = img_deps - random.randint(3 * img_deps // 7, 4 * img_deps // 7)
        noise_x = random.randint(3, img_rows - block_noise_size_x - 3)
        noise_y = random.randint(3, img_cols - block_noise_size_y - 3)
        noise_z = random.randint(3, img_deps - block_noise_size_z - 3)
        sl = (slice(None), slice(noise_x, noise_x + block_noise_size_x),
              slice(noise_y, noise_y + block_noise_size_y),
              slice(noise_z, noise_z + block_noise_size_z))
        x[sl] = image_temp[sl]

    copy_back()
    cnt = 4
    while cnt > 0 and random.random() < 0.95:
        copy_back()
        cnt -= 1
    return x


def off_painting(x, paint_rate=0.9, inpaint_rate=0.2):
    if random.random() < paint_rate:
        if random.random() < inpaint_rate:
            return off_image_in_painting(x)
        return off_image_out_painting(x)
    return x


def official_generate_pair(cube: np.ndarray, flip_rate=0.4, local_rate=0.5,
                           nonlinear_rate=0.9, paint_rate=0.9, inpaint_rate=0.2):
    """One sample of the official ``generate_pair`` loop body: ``(x, y)``. The official
    assigns each step's result into ``x[n]`` of the batch, which casts it back to the
    batch dtype; ``np.asarray(..., cube.dtype)`` does the same here."""
    y = cube.copy()
    x = copy.deepcopy(y)
    x, y = off_data_augmentation(x, y, flip_rate)
    x = np.asarray(off_local_pixel_shuffling(x, prob=local_rate), cube.dtype)
    x = np.asarray(off_nonlinear_transformation(x, nonlinear_rate), cube.dtype)
    x = np.asarray(off_painting(x, paint_rate, inpaint_rate), cube.dtype)
    return x, np.ascontiguousarray(y)


# ----------------------------------------------------------------------------- ours


def build_ours(seed: int) -> Dict[str, Callable]:
    rng = np.random.default_rng(seed)
    full = G.GenesisDistortion(official_axes=True)

    def pair(cube):
        out = full(dict(img=cube, rng=rng))
        return out['img'], out['target']

    def painting(cube):
        if rng.random() < 0.2:
            return G.image_in_painting(cube, rng)
        return G.image_out_painting(cube, rng)

    return {
        'shuffle': lambda c: G.local_pixel_shuffling(c, rng),
        'nonlinear': lambda c: G.nonlinear_transformation(c, rng),
        'painting': painting,
        'pair': pair,
    }


def build_official() -> Dict[str, Callable]:
    def cast(fn):
        return lambda c: np.asarray(fn(c.copy()), c.dtype)

    return {
        'shuffle': cast(lambda c: off_local_pixel_shuffling(c, prob=1.0)),
        'nonlinear': cast(lambda c: off_nonlinear_transformation(c, prob=1.0)),
        'painting': cast(lambda c: off_painting(c, paint_rate=1.0)),
        'pair': official_generate_pair,
    }


STEPS = (('shuffle', 'local pixel shuffle alone (10,000 windows)'),
         ('nonlinear', 'non-linear intensity alone (Bezier, 100,000 points)'),
         ('painting', 'painting alone (in 0.2 / out 0.8)'),
         ('pair', 'full pair (flip, shuffle 0.5, non-linear 0.9, paint 0.9)'))

# ------------------------------------------------------------------------ measuring


def timed(fns: Dict[str, Callable], cubes: List[np.ndarray], block: int,
          warmup: int) -> Dict[str, float]:
    """Seconds per call of each ``fns[name]`` over ``cubes``, interleaved by blocks of
    ``block`` calls so that a change of machine load hits every function alike."""
    for fn in fns.values():
        for c in cubes[:warmup]:
            fn(c)
    total = dict.fromkeys(fns, 0.)
    for start in range(0, len(cubes), block):
        chunk = cubes[start:start + block]
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for c in chunk:
                fn(c)
            total[name] += time.perf_counter() - t0
    return {name: t / len(cubes) for name, t in total.items()}


def output_stats(pairs, cubes) -> Dict[str, float]:
    xs = np.stack([p[0] for p in pairs])
    ys = np.stack([p[1] for p in pairs])
    changed = np.mean([np.mean(x != y) for x, y in pairs])
    return {
        'input shape': str(tuple(xs.shape[1:])), 'target shape': str(tuple(ys.shape[1:])),
        'input dtype': str(xs.dtype),
        'input min': float(xs.min()), 'input max': float(xs.max()),
        'input mean': float(xs.mean()), 'input std': float(xs.std()),
        'target mean': float(ys.mean()),
        'target = a flip of the cube': float(np.mean([
            any(np.array_equal(p[1], f) for f in _flips(c)) for p, c in zip(pairs, cubes)])),
        'changed voxels (input vs target)': float(changed),
    }


def _flips(c):
    """All arrays reachable by flipping axes 0, 1 and 2 (the official choices)."""
    out = []
    for mask in range(8):
        f = c
        for ax in range(3):
            if mask >> ax & 1:
                f = np.flip(f, ax)
        out.append(f)
    return out


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--samples', type=int, default=256, help='cubes per pipeline and row')
    parser.add_argument('--block', type=int, default=16, help='cubes per alternation block')
    parser.add_argument('--cube', type=int, nargs=3, default=(64, 64, 32))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--quick', action='store_true',
                        help='a few cubes, for the test (numbers are not meaningful)')
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.block = 6, 3
    warmup = 1 if args.quick else 4

    import torch
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
        limit = threadpool_limits(1)
        pool = 'threadpoolctl'
    except ImportError:
        limit, pool = nullcontext(), 'thread env vars'

    with limit:
        random.seed(args.seed)
        np.random.seed(args.seed)
        volume = synthetic_head(seed=args.seed)
        cubes = make_cubes(volume, args.samples, args.cube, args.seed)
        official, ours = build_official(), build_ours(args.seed)
        times = {}
        for key, _ in STEPS:
            t = timed({'official': official[key], 'ours': ours[key]}, cubes, args.block,
                      warmup)
            times[key] = t
        # output statistics, untimed, on the same cubes
        random.seed(args.seed + 1)
        np.random.seed(args.seed + 1)
        ours_stats = build_ours(args.seed + 1)
        pairs_off = [official['pair'](c) for c in cubes]
        pairs_ours = [ours_stats['pair'](c) for c in cubes]

    cmd = 'python benchmarks/volume_pipeline.py ' + (
        '--quick' if args.quick else
        f'--samples {args.samples} --block {args.block} '
        f'--cube {" ".join(shlex.quote(str(c)) for c in args.cube)} --seed {args.seed}')
    cube = 'x'.join(str(c) for c in args.cube)
    lines = [f'{args.samples} cubes of {cube} from a seeded synthetic head volume '
             f'{"x".join(map(str, volume.shape))}; one process, one thread ({pool}, '
             f'torch.set_num_threads(1)); both pipelines alternate in blocks of {args.block} '
             f'cubes; numpy {np.__version__}, {os.cpu_count()} CPUs.', '',
             '| step | pipeline | cubes/s | ms/cube | speed-up |', '|---|---|---:|---:|---:|']
    rows = {}
    for key, title in STEPS:
        t = times[key]
        for name, label in (('official', 'official-style loops'), ('ours', 'dira_mm')):
            sec = t[name]
            rows[(key, name)] = dict(cubes_per_s=1 / sec, ms=sec * 1e3,
                                     speedup=t['official'] / sec)
            lines.append(f'| {title} | {label} | {1 / sec:.1f} | {sec * 1e3:.2f} | '
                         f'{t["official"] / sec:.2f}x |')
    s_off, s_ours = output_stats(pairs_off, cubes), output_stats(pairs_ours, cubes)
    lines += ['', f'| output of the full pair ({args.samples} cubes) | official-style | '
              f'dira_mm |', '|---|---:|---:|']
    for k in s_off:
        fmt = (lambda v: v) if isinstance(s_off[k], str) else (lambda v: f'{v:.4f}')
        lines.append(f'| {k} | {fmt(s_off[k])} | {fmt(s_ours[k])} |')
    lines += ['', 'Reproduce with:', '', f'    {cmd}']
    table = '\n'.join(lines)
    print(table)
    return dict(rows=rows, table=table, stats=dict(official=s_off, ours=s_ours),
                pairs=dict(official=pairs_off, ours=pairs_ours), command=cmd)


if __name__ == '__main__':
    main()
