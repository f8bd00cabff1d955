"""Throughput of the DiRA training data pipeline on one CPU core: official-style vs ours.

It writes ``--num-files`` gray 8-bit PNGs of ``--size`` x ``--size`` pixels with chest-like
content (the project's phantom plus film grain: PNG decode time depends on the content, so
flat or white-noise images would give wrong numbers), then runs, in this one process with
one thread (all pipelines interleaved by blocks of 16 samples, so load changes of the
machine hit all alike):

- ``official-style``: the official ``Transform('dira')`` rebuilt from its description
  (``docs``: /work/shared/reference/dira_official.md section 3): PIL decode +
  ``convert('RGB')``, two torchvision v1 ``RandomResizedCrop(224, scale=(0.2, 1))``,
  ``RandomApply(ColorJitter(0.4, 0.4, 0.4, 0.1), p=0.8)``, PIL ``GaussianBlur``
  ``sigma ~ U[0.1, 2]`` with p=0.5, ``RandomHorizontalFlip``, the distortion as numpy
  code on the 224x224x3 view with Python loops over blocks, ``ToTensor``, and the target
  ``crop_1.convert('L') / 255``;
- ``dira_mm``: ``LoadMedicalImage`` (``cv2.imread`` when it does not exist yet),
  ``DiRAViews`` and ``PackDiRAInputs``;
- for reference, ``dira_mm`` on the same pixels stored decoded (``.npy``): what a decoded
  cache would give.

It prints the throughput, a per-stage breakdown (decode vs. the rest), and statistics of
the outputs of both pipelines over the same number of samples, to show that they are
statistically the same. Run from the repository root::

    python benchmarks/data_pipeline.py --num-files 64 --size 1024 --samples 512 --seed 0
"""
import argparse
import os
import os.path as osp
import random
import shlex
import sys
import tempfile
import time
from collections import Counter
from typing import Callable, Dict, List, Tuple

import cv2
import numpy as np
import torch
from PIL import Image, ImageFilter

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from dira_mm.registry import TRANSFORMS  # noqa: E402

# ----------------------------------------------------------------------------- images


def synthetic_chest(size: int, rng: np.random.Generator) -> np.ndarray:
    """A chest-radiograph-like uint8 image: body, lungs, ribs, spine, heart, texture and
    film grain. Only used when ``dira_mm.datasets.phantom`` is not available."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = 40 + 30 * yy
    body = np.exp(-(((xx - 0.5) / 0.42)**8 + ((yy - 0.55) / 0.55)**8))
    img = img + 120 * body
    for cx in (0.32 + rng.uniform(-.02, .02), 0.68 + rng.uniform(-.02, .02)):
        lung = np.exp(-(((xx - cx) / 0.14)**4 + ((yy - 0.45) / 0.28)**4))
        img = img - 110 * lung
        ribs = 0.5 + 0.5 * np.sin(2 * np.pi * (yy * 10 + 4 * (xx - cx)**2 + rng.uniform()))
        img = img + 30 * lung * ribs**6
    img = img + 70 * np.exp(-((xx - 0.5) / 0.05)**2) * body
    img = img + 60 * np.exp(-(((xx - 0.55) / 0.13)**2 + ((yy - 0.65) / 0.12)**2))
    low = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), 25)
    mid = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), 3)
    grain = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), .7)
    img = img + 400 * low + 25 * mid + 6 * grain
    return np.clip(img, 0, 255).astype(np.uint8)


def make_image(size: int, seed: int, grain: float) -> np.ndarray:
    """The project's chest phantom (:mod:`dira_mm.datasets.phantom`) plus film grain, or
    :func:`synthetic_chest` when the phantom module is not there.

    The phantom alone is smoother than a radiograph (its 1024-pixel PNG is ~150 KiB and
    decodes ~40% faster than a ~400 KiB one); ``grain`` (std in gray levels of slightly
    correlated Gaussian noise) brings the files to the size of real ChestX-ray14 PNGs.
    """
    rng = np.random.default_rng(seed)
    try:
        from dira_mm.datasets.phantom import generate_chest_phantom
    except ImportError:
        return synthetic_chest(size, rng)
    img = np.asarray(generate_chest_phantom(seed, size=size)[0], dtype=np.float32)
    if grain > 0:
        noise = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32),
                                 (0, 0), 0.6)
        img = img + noise * (grain / noise.std())
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def write_images(folder: str, num: int, size: int, seed: int, grain: float) -> List[str]:
    """Write ``num`` PNGs (PIL, zlib level 6, as most tools write them) and, next to each,
    the decoded pixels as ``.npy`` (for the no-decode row)."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(num):
        path = osp.join(folder, f'{size}_{seed}_{grain:g}_{i:05d}.png')
        if not (osp.exists(path) and osp.exists(path[:-4] + '.npy')):
            img = make_image(size, seed * 100003 + i, grain)
            Image.fromarray(img).save(path)
            np.save(path[:-4] + '.npy', img)
        paths.append(path)
    return paths


# ------------------------------------------------------------------ official style


def official_distortion(img: Image.Image, stats: dict = None) -> Image.Image:
    """The official ``Custom_Distoration``, rebuilt from its description: Python
    ``random`` draws and loops over blocks, on the 224x224x3 uint8 view."""
    arr = np.array(img)
    before = arr.copy() if stats is not None else None
    n = 224
    r = random.random()
    if r <= 0.3:
        branch = 'inpaint'
        for _ in range(10):
            bh, bw = random.randint(10, 70), random.randint(10, 70)
            top, left = random.randint(3, n - bh - 3), random.randint(3, n - bw - 3)
            arr[top:top + bh, left:left + bw, :] = 0
            if random.random() < 0.1:
                break
    elif r <= 0.35:
        branch = 'outpaint'
        src = arr.copy()
        arr[...] = 0
        for _ in range(10):
            bh, bw = n - random.randint(50, 70), n - random.randint(50, 70)
            top, left = random.randint(3, n - bh - 3), random.randint(3, n - bw - 3)
            arr[top:top + bh, left:left + bw, :] = src[top:top + bh, left:left + bw, :]
            if random.random() < 0.1:
                break
    elif r <= 0.65:
        branch = 'swap'
        src = arr.copy()
        for _ in range(10):
            while True:
                bh, bw = random.randint(10, 15), random.randint(10, 15)
                t1, l1 = random.randint(3, n - bh - 3), random.randint(3, n - bw - 3)
                t2, l2 = random.randint(3, n - bh - 3), random.randint(3, n - bw - 3)
                # The official test, always true (see DiRADistortion's docstring).
                if t1 > t2 + bh or t2 > t1 + bh or l1 < l2 + bw or l2 < l1 + bw:
                    break
            arr[t1:t1 + bh, l1:l1 + bw, :] = src[t2:t2 + bh, l2:l2 + bw, :]
            arr[t2:t2 + bh, l2:l2 + bw, :] = src[t1:t1 + bh, l1:l1 + bw, :]
    else:
        branch = 'none'
    if stats is not None:
        stats['branch'].append(branch)
        stats['changed'].append(float((arr[..., 0] != before[..., 0]).mean()))
    return Image.fromarray(arr)


class PILGaussianBlur:
    """The official blur: PIL ``GaussianBlur(radius=sigma)``, ``sigma ~ U[0.1, 2]``."""

    def __call__(self, img: Image.Image) -> Image.Image:
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))


def build_official(stats: dict = None) -> Tuple[Callable, Callable]:
    """``run(path)`` and ``run_image(pil_rgb_image)`` of the official-style pipeline."""
    from torchvision import transforms as T
    crop = T.RandomResizedCrop(224, scale=(0.2, 1.))
    augment = T.Compose([
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        T.RandomApply([PILGaussianBlur()], p=0.5),
        T.RandomHorizontalFlip(),
    ])
    to_tensor = T.ToTensor()

    def run(path: str) -> list:
        return run_image(Image.open(path).convert('RGB'))

    def run_image(img: Image.Image) -> list:
        y1_orig, y2_orig = crop(img), crop(img)
        y1, y2 = augment(y1_orig), augment(y2_orig)
        y1 = to_tensor(official_distortion(y1, stats))
        y2 = to_tensor(official_distortion(y2, stats))
        target = (np.array(y1_orig.convert('L')) / 255.)[None].astype(np.float32)
        return [y1, y2, target]

    return run, run_image


# ----------------------------------------------------------------------------- ours


def build_loader() -> Callable[[dict], dict]:
    """``LoadMedicalImage`` when it exists, else a plain ``cv2.imread``."""
    try:
        from dira_mm.datasets.transforms.loading import LoadMedicalImage
        return LoadMedicalImage()
    except ImportError:
        def load(results: dict) -> dict:
            results['img'] = cv2.imread(results['img_path'], cv2.IMREAD_UNCHANGED)
            return results
        return load


class _RecordingDistortion:
    """Wraps the distortion to record the branch and the fraction of changed pixels
    (only in the statistics pass, never in the timed one)."""

    def __init__(self, inner, stats: dict) -> None:
        self.inner, self.stats = inner, stats

    def __call__(self, results: dict) -> dict:
        before = results['img']
        results = self.inner(results)
        self.stats['branch'].append(results['distortion'])
        self.stats['changed'].append(float((results['img'] != before).mean()))
        return results


def build_ours(stats: dict = None, seed: int = 0) -> Tuple[Callable, ...]:
    """``run(path)`` (the whole pipeline), ``run_npy(path)`` (the same from the decoded
    ``.npy`` next to the PNG), and the parts ``load``, ``views``, ``pack``."""
    load = build_loader()
    views = TRANSFORMS.build(dict(type='DiRAViews'))
    if stats is not None:
        views.distortion = _RecordingDistortion(views.distortion, stats)
    pack = TRANSFORMS.build(dict(type='PackDiRAInputs'))
    rng = np.random.default_rng(seed)

    def run(path: str) -> dict:
        return pack(views(load(dict(img_path=path, rng=rng))))

    def run_npy(path: str) -> dict:
        img = np.load(path[:-4] + '.npy')
        return pack(views(dict(img_path=path, img=img, rng=rng)))

    return run, run_npy, load, views, pack


# ------------------------------------------------------------------------ measuring


def timed(fns: Dict[str, Callable], args: Dict[str, list], block: int = 16,
          warmup: int = 8) -> Dict[str, float]:
    """Seconds per call of each ``fns[name]`` over ``args[name]``, interleaved by blocks
    of ``block`` calls so that a change of machine load hits every function alike."""
    for name, fn in fns.items():
        for a in args[name][:warmup]:
            fn(a)
    total = dict.fromkeys(fns, 0.)
    count = len(next(iter(args.values())))
    for start in range(0, count, block):
        for name, fn in fns.items():
            chunk = args[name][start:start + block]
            t0 = time.perf_counter()
            for a in chunk:
                fn(a)
            total[name] += time.perf_counter() - t0
    return {name: t / count for name, t in total.items()}


def output_stats(outputs: list, dist_stats: dict, official: bool) -> Dict[str, float]:
    """Pixel statistics of the views (in [0, 1]) and targets, and of the distortion."""
    views, targets = [], []
    for out in outputs:
        if official:
            views += [out[0][0].numpy(), out[1][0].numpy()]
            targets.append(out[2][0])
        else:
            views += [v[0].numpy() / 255. for v in out['inputs']]
            targets.append(out['data_samples'].target[0].numpy() / 255.)
    views, targets = np.stack(views), np.stack(targets)
    count = Counter(dist_stats['branch'])
    total = len(dist_stats['branch'])
    stats = {
        'view mean': views.mean(),
        'view std': views.std(),
        'target mean': targets.mean(),
        'target std': targets.std(),
        'distortion: changed pixels': np.mean(dist_stats['changed']),
    }
    for branch in ('inpaint', 'outpaint', 'swap', 'none'):
        stats[f'share {branch}'] = count[branch] / total
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-files', type=int, default=64)
    parser.add_argument('--size', type=int, default=1024)
    parser.add_argument('--samples', type=int, default=512)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--grain', type=float, default=2.0,
                        help='film grain std (gray levels) added to the phantom')
    parser.add_argument('--workdir', default=None,
                        help='where the PNGs go (default: a temporary folder)')
    args = parser.parse_args()

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    random.seed(args.seed)
    torch.manual_seed(args.seed)

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix='dira_bench_')
        args.workdir = tmp.name
    paths = write_images(args.workdir, args.num_files, args.size, args.seed, args.grain)
    mean_kib = np.mean([osp.getsize(p) for p in paths]) / 1024
    sample_paths = [paths[i % len(paths)] for i in range(args.samples)]

    official, official_image = build_official()
    ours, ours_npy, load, views, pack = build_ours(seed=args.seed)
    rng = np.random.default_rng(args.seed)
    gray = [load(dict(img_path=p))['img'] for p in paths]
    # the decoded-image cache, warmed once (as after the first epoch of a real run)
    from dira_mm.datasets.transforms.loading import LoadMedicalImage
    cached_load = LoadMedicalImage(cache_dir=osp.join(args.workdir, 'decoded_cache'))
    for p in paths:
        cached_load(dict(img_path=p))

    def ours_cached(path: str) -> dict:
        return pack(views(cached_load(dict(img_path=path, rng=rng))))

    rgb = [Image.open(p).convert('RGB') for p in paths]
    index = [i % len(paths) for i in range(args.samples)]
    t = timed(
        {
            'official': official,
            'ours': ours,
            'ours_npy': ours_npy,
            'ours_cached': ours_cached,
            'pil_decode': lambda p: Image.open(p).convert('RGB'),
            'our_decode': lambda p: load(dict(img_path=p)),
            'official_rest': lambda i: official_image(rgb[i]),
            'our_rest': lambda i: pack(views(dict(img=gray[i], rng=rng))),
        }, {
            'official': sample_paths,
            'ours': sample_paths,
            'ours_npy': sample_paths,
            'ours_cached': sample_paths,
            'pil_decode': sample_paths,
            'our_decode': sample_paths,
            'official_rest': index,
            'our_rest': index,
        })

    print(f'\n{args.samples} samples from {args.num_files} PNG files of {args.size}x{args.size} '
          f'(8-bit gray, mean {mean_kib:.0f} KiB, phantom + grain {args.grain:g}); one process, '
          f'one thread; torch {torch.__version__}, cv2 {cv2.__version__}, '
          f'PIL {Image.__version__}\n')
    print('| pipeline | samples/s | ms/sample | speed-up |')
    print('|---|---:|---:|---:|')
    for name, key in (('official-style (PIL + torchvision v1), PNG', 'official'),
                      ('dira_mm (LoadMedicalImage + DiRAViews + PackDiRAInputs), PNG',
                       'ours'),
                      ('dira_mm, LoadMedicalImage(cache_dir=...) warm (epochs 2+)',
                       'ours_cached'),
                      ('dira_mm from decoded uint8 `.npy` (no PNG decode)', 'ours_npy')):
        sec = t[key]
        print(f'| {name} | {1 / sec:.1f} | {sec * 1e3:.2f} | {t["official"] / sec:.2f}x |')

    print('\n| stage (ms/sample) | official-style | dira_mm | speed-up |')
    print('|---|---:|---:|---:|')
    print(f'| PNG decode (PIL + `convert(\'RGB\')` / LoadMedicalImage) | '
          f'{t["pil_decode"] * 1e3:.2f} | {t["our_decode"] * 1e3:.2f} | '
          f'{t["pil_decode"] / t["our_decode"]:.2f}x |')
    print(f'| two views + target + distortion + packing | {t["official_rest"] * 1e3:.2f} | '
          f'{t["our_rest"] * 1e3:.2f} | {t["official_rest"] / t["our_rest"]:.2f}x |')
    print(f'| decode share of the whole pipeline | {t["pil_decode"] / t["official"]:.0%} | '
          f'{t["our_decode"] / t["ours"]:.0%} | |')

    # Output statistics (untimed, recording the distortion).
    random.seed(args.seed + 1)
    torch.manual_seed(args.seed + 1)
    stats_official, stats_ours = dict(branch=[], changed=[]), dict(branch=[], changed=[])
    run_official = build_official(stats_official)[0]
    run_ours = build_ours(stats_ours, seed=args.seed + 1)[0]
    out_official = [run_official(p) for p in sample_paths]
    out_ours = [run_ours(p) for p in sample_paths]
    s_off = output_stats(out_official, stats_official, official=True)
    s_ours = output_stats(out_ours, stats_ours, official=False)
    expected = {'share inpaint': .30, 'share outpaint': .05, 'share swap': .30,
                'share none': .35}
    print(f'\n| output statistic ({args.samples} samples, {2 * args.samples} views) '
          f'| official-style | dira_mm | official probability |')
    print('|---|---:|---:|---:|')
    for key in s_off:
        ref = f'{expected[key]:.2f}' if key in expected else ''
        print(f'| {key} | {s_off[key]:.4f} | {s_ours[key]:.4f} | {ref} |')
    print('\nReproduce with:\n\n    python benchmarks/data_pipeline.py ' + ' '.join(
        f'--{k.replace("_", "-")} {shlex.quote(str(v))}'
        for k, v in (('num_files', args.num_files), ('size', args.size),
                     ('samples', args.samples), ('seed', args.seed),
                     ('grain', args.grain))))
    if tmp is not None:
        tmp.cleanup()


if __name__ == '__main__':
    main()
