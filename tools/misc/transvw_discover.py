"""Self-discovery of visual words (TransVW, Haghighi et al. 2021) as an offline tool.

For each of ``--num-classes`` classes: a seeded, not yet used reference patient; its
``--top-k`` nearest training patients (and ``--top-k-val`` nearest validation patients) by
the L2 distance of per-patient features; a crop coordinate in the reference, at least
``--min-distance`` voxels from the earlier classes' coordinates, inside Models Genesis'
borders and (``--air-filter``, on by default) passing Genesis' air/lung test; the same
coordinate cropped in every neighbour gives the class's instances (no registration: similar
anatomy sits at similar coordinates). ``--multi-res`` adds two crops per training instance
with an in-plane side ``randint(50, 80)`` and an offset ``randint(-10, 10)`` (numpy's
exclusive upper bounds, as the official), resized to the crop size.

Features per patient (``--feature-source``):

- ``autoencoder`` (default, the paper's choice): a small 3-D convolutional autoencoder is
  trained here on the volumes resized to ``--ae-size`` (paper: 128 x 128 x 64); the feature
  is the global average pool of its deepest encoder activation. Ours, not the official
  Keras V-Net (see ``docs/transvw_genesis.md``).
- ``intensity``: the windowed volume resized to ``--feature-size``, flattened (no training).
- ``checkpoint``: a trained dira_mm 3-D backbone (``--config`` + ``--checkpoint``), the
  global average pool of the deepest ``forward_encoder`` map of the resized volume.

Writes ``<out>/{train,val}/c<class>/<patient>_r<res>.npy`` (float32 ``(X, Y, Z)`` windowed to
[0, 1]), the index ``<out>/{train,val}.csv`` (``path,class,patient,x,y,z,resolution``, read by
``TransVWDataset``; ``x, y, z`` is the crop's start) and ``<out>/discovery.json`` (the
arguments, the per-class reference, coordinate and neighbours, the skipped volumes).
Everything is seeded from ``--seed``. Volumes: a folder (``.nii``, ``.nii.gz``, ``.mhd``,
``.mha``, ``.npy`` arrays in HU as the official input, DICOM series sub-folders) or a text
file with one path per line (the first token of a line; ``#`` comments and blank lines
skipped). ``.npy`` arrays are taken as stored (the official Genesis order); the other formats
are read in RAS (``read_volume``), so one run must not mix ``.npy`` with other formats (it is
refused). The patient id is the file name without its extension; it must be unique within a
split (``p1/ct.nii.gz`` and ``p2/ct.nii.gz`` are refused, as their instances would overwrite
each other): name the files after the patients.

Example (TransVW's training data from LUNA16 subsets 0-4 / 5-6)::

    python tools/misc/transvw_discover.py data/luna16/train_list.txt \
        --val data/luna16/val_list.txt --out data/transvw --multi-res
"""
import argparse
import csv
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from dira_mm.datasets.image_folder import read_list_file  # noqa: E402
from dira_mm.datasets.readers import ImageReadError  # noqa: E402
from dira_mm.datasets.transforms.volume_loading import genesis_air_score  # noqa: E402
from dira_mm.datasets.volume_readers import hu_window, read_volume  # noqa: E402

VOLUME_EXT = ('.nii', '.nii.gz', '.mhd', '.mha', '.npy')
INDEX_FIELDS = ('path', 'class', 'patient', 'x', 'y', 'z', 'resolution')


# ------------------------------------------------------------------------------ inputs
def list_volumes(source: str, prefix: Optional[str] = None) -> List[str]:
    """Volume paths of a folder (sorted) or of a list file (one path per line, relative to
    ``prefix`` (default: the list's folder) unless absolute; ``#`` comments and blank lines
    ignored)."""
    if osp.isdir(source):
        out = []
        for name in sorted(os.listdir(source)):
            path = osp.join(source, name)
            if osp.isdir(path):
                if any(f.lower().endswith('.dcm') for f in os.listdir(path)):
                    out.append(path)
            elif name.lower().endswith(VOLUME_EXT):
                out.append(path)
        if not out:
            raise SystemExit(f'transvw_discover: no volumes ({", ".join(VOLUME_EXT)} or DICOM '
                             f'series folders) in "{source}".')
        return out
    if osp.isfile(source):
        root = prefix if prefix else osp.dirname(osp.abspath(source))
        names = read_list_file(source, 'transvw_discover', 'Pass a folder or a list file.')
        out = [n if osp.isabs(n) else osp.join(root, n) for n in names]
        if not out:
            raise SystemExit(f'transvw_discover: the list "{source}" names no volume.')
        return out
    raise SystemExit(f'transvw_discover: "{source}" is neither a folder nor a list file.')


def patient_id(path: str) -> str:
    """The file (or DICOM folder) name without its volume extension."""
    name = osp.basename(osp.normpath(path))
    for ext in sorted(VOLUME_EXT, key=len, reverse=True):
        if name.lower().endswith(ext):
            return name[:-len(ext)]
    return name


def check_unique_ids(paths: Sequence[str], split: str) -> None:
    """Refuse two volumes of one split with the same patient id (their instances would
    overwrite each other)."""
    seen: Dict[str, List[str]] = {}
    for p in paths:
        seen.setdefault(patient_id(p), []).append(p)
    dups = {k: v for k, v in seen.items() if len(v) > 1}
    if dups:
        listing = '; '.join(f'{k}: {", ".join(v)}' for k, v in sorted(dups.items())[:5])
        raise SystemExit(
            f'transvw_discover: {len(dups)} patient id(s) of the {split} volumes are not '
            f'unique (the id is the file name without extension): {listing}. Rename the files '
            '(e.g. <patient>.nii.gz) so that each patient has its own name.')


def check_formats(paths: Sequence[str]) -> None:
    """Refuse a run mixing ``.npy`` arrays with other formats (their axes differ: stored
    order vs RAS)."""
    npy = [p.lower().endswith('.npy') for p in paths]
    if any(npy) and not all(npy):
        raise SystemExit(
            'transvw_discover: the volumes mix .npy arrays (taken as stored, Genesis order) '
            f'with other formats (read in RAS), e.g. "{paths[npy.index(True)]}" and '
            f'"{paths[npy.index(False)]}"; their axes would not match. Use one kind.')


def load_windowed(path: str, window: Sequence[float]) -> np.ndarray:
    """``(X, Y, Z)`` float32 in [0, 1]: ``read_volume`` (RAS) or a ``.npy`` HU array."""
    if path.lower().endswith('.npy'):
        try:
            vol = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise ImageReadError(path, f'not a readable .npy array ({err})') from None
        if vol.ndim != 3 or not np.issubdtype(vol.dtype, np.number):
            raise ImageReadError(path, f'expected a numeric (X, Y, Z) array, got {vol.dtype} '
                                 f'{vol.shape}')
        if not np.isfinite(vol).all():
            raise ImageReadError(path, 'the volume has NaN/Inf values')
    else:
        vol, _ = read_volume(path)
    return hu_window(vol, *window)


def resize(vol: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Trilinear resize of an ``(X, Y, Z)`` array (torch, ``align_corners=False``)."""
    if tuple(vol.shape) == tuple(size):
        return vol.astype(np.float32, copy=True)
    t = torch.from_numpy(np.ascontiguousarray(vol, dtype=np.float32))[None, None]
    return F.interpolate(t, size=tuple(int(s) for s in size), mode='trilinear',
                         align_corners=False)[0, 0].numpy()


# ---------------------------------------------------------------------------- features
class ConvAutoencoder3D(nn.Module):
    """Small 3-D conv autoencoder: stride-2 Conv-BN-ReLU blocks down, transposed convs up."""

    def __init__(self, widths: Sequence[int] = (16, 32, 64, 128)) -> None:
        super().__init__()
        enc, prev = [], 1
        for w in widths:
            enc.append(nn.Sequential(nn.Conv3d(prev, w, 3, 2, 1), nn.BatchNorm3d(w),
                                     nn.ReLU(inplace=True)))
            prev = w
        self.encoder = nn.Sequential(*enc)
        dec = []
        for w in list(widths[-2::-1]) + [8]:
            dec.append(nn.Sequential(nn.ConvTranspose3d(prev, w, 2, 2), nn.BatchNorm3d(w),
                                     nn.ReLU(inplace=True)))
            prev = w
        self.decoder = nn.Sequential(*dec, nn.Conv3d(prev, 1, 1), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


def autoencoder_features(vols: List[np.ndarray], epochs: int, batch: int, lr: float,
                         seed: int, log) -> np.ndarray:
    """Train :class:`ConvAutoencoder3D` on ``vols`` (MSE, Adam) and return GAP features."""
    torch.manual_seed(seed)
    model = ConvAutoencoder3D()
    data = torch.from_numpy(np.stack(vols))[:, None]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(data), generator=gen)
        total = 0.0
        for i in range(0, len(data), batch):
            x = data[order[i:i + batch]]
            if len(x) < 2 and len(data) >= 2:  # BatchNorm needs two samples
                x = data[order[-2:]]
            loss = F.mse_loss(model(x), x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(x)
        log(f'autoencoder epoch {epoch + 1}/{epochs}: mse {total / len(data):.5f}')
    model.eval()
    with torch.no_grad():
        feats = [model.encoder(data[i:i + batch]).flatten(2).mean(2)
                 for i in range(0, len(data), batch)]
    return torch.cat(feats).numpy().astype(np.float64)


def backbone_features(vols: List[np.ndarray], config: str, checkpoint: Optional[str],
                      batch: int) -> np.ndarray:
    """GAP of the deepest encoder map of a dira_mm backbone built from ``config``."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    from dira_mm.registry import MODELS
    import dira_mm.models  # noqa: F401 (registers the models)
    from dira_mm.models.utils import unwrap

    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'dira_mm'))
    model = MODELS.build(cfg.model)
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    inner = getattr(model, 'ssl', model)
    backbone = unwrap(inner).backbone
    if getattr(backbone, 'spatial_dims', 2) != 3:
        raise SystemExit(f'transvw_discover: the backbone of "{config}" is not 3-D.')
    backbone.eval()
    data = torch.from_numpy(np.stack(vols))[:, None]
    in_ch = int((cfg.model.get('data_preprocessor') or {}).get('num_channels', 1) or 1)
    with torch.no_grad():
        feats = []
        for i in range(0, len(data), batch):
            x = data[i:i + batch]
            if in_ch > 1:
                x = x.expand(-1, in_ch, *x.shape[2:])
            feats.append(backbone.forward_encoder(x)[-1].flatten(2).mean(2))
    return torch.cat(feats).numpy().astype(np.float64)


# ----------------------------------------------------------------------------- planning
def nearest(features: np.ndarray, ref: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Indices of the ``k`` rows of ``features`` nearest to ``ref`` (L2, stable order) and
    their distances."""
    dist = np.linalg.norm(features - ref[None], axis=1)
    order = np.argsort(dist, kind='stable')[:k]
    return order, dist[order]


def coordinate_range(shapes: np.ndarray, crop: Sequence[int], border: Sequence[int],
                     extra_z: int) -> Tuple[np.ndarray, np.ndarray]:
    """Inclusive start range valid in every shape: ``[b, n - crop - 1 - b]`` per axis (the
    official ``randint`` bounds; z keeps ``extra_z`` more slices), with the border shrunk
    when the smallest volume has less room (at least 0)."""
    n = np.min(shapes, axis=0)
    room = n - np.asarray(crop) - 1 - np.array([0, 0, extra_z])
    b = np.minimum(np.asarray(border), np.maximum(room, 0) // 2)
    lo, hi = b, room - b
    return lo, hi


def pick_coordinate(rng: np.random.Generator, ref_vol: np.ndarray, lo: np.ndarray,
                    hi: np.ndarray, previous: List[np.ndarray], crop: Sequence[int],
                    args) -> Optional[np.ndarray]:
    """A start ``(x, y, z)`` in ``[lo, hi]``, ``>= min_distance`` from all previous ones and,
    with the air filter, whose crop of the reference is mostly air/lung; None after
    ``max_tries`` draws."""
    if (hi < lo).any():
        return None
    prev = np.asarray(previous, dtype=np.float64).reshape(-1, 3)
    air_thr = (args.air_hu - args.window[0]) / (args.window[1] - args.window[0])
    for _ in range(args.max_tries):
        c = rng.integers(lo, hi + 1)
        if len(prev) and np.linalg.norm(prev - c[None], axis=1).min() < args.min_distance:
            continue
        if args.air_filter:
            sub = ref_vol[c[0]:c[0] + crop[0], c[1]:c[1] + crop[1], c[2]:c[2] + crop[2] + 3]
            if genesis_air_score(sub, crop[2], air_hu=air_thr) > args.lung_max:
                continue
        return c
    return None


def multires_box(rng: np.random.Generator, c: np.ndarray, shape: Sequence[int],
                 crop: Sequence[int], args) -> Tuple[int, int, int]:
    """``(x, y, side)`` of a multi-resolution crop that fits the volume (redrawn up to
    ``max_tries`` times, then clamped inside)."""
    lo_s, hi_s = args.multi_res_size
    d = args.multi_res_offset
    for _ in range(args.max_tries):
        side = int(rng.integers(lo_s, hi_s))
        dx, dy = (int(v) for v in rng.integers(-d, d, size=2))
        x, y = int(c[0]) + dx, int(c[1]) + dy
        if 0 <= x and 0 <= y and x + side <= shape[0] and y + side <= shape[1]:
            return x, y, side
    side = int(min(side, shape[0], shape[1]))
    return (int(np.clip(x, 0, shape[0] - side)), int(np.clip(y, 0, shape[1] - side)), side)


def plan_classes(args, rng, train_feats, val_feats, train_shapes, val_shapes, load_ref, log):
    """Per class: reference, neighbours (train, val) and crop start."""
    n_train = len(train_feats)
    if args.top_k > n_train:
        raise SystemExit(f'transvw_discover: --top-k {args.top_k} exceeds the {n_train} '
                         'readable training volumes; lower it.')
    if val_feats is not None and args.top_k_val > len(val_feats):
        raise SystemExit(f'transvw_discover: --top-k-val {args.top_k_val} exceeds the '
                         f'{len(val_feats)} readable validation volumes; lower it.')
    used = np.zeros(n_train, dtype=bool)
    classes, coords = [], []
    crop = args.crop_size
    extra_z = 3 if args.air_filter else 0
    for cls in range(args.num_classes):
        coord = None
        while coord is None:
            free = np.flatnonzero(~used)
            if not len(free):
                raise SystemExit(
                    f'transvw_discover: no reference left for class {cls} (every training '
                    'volume was tried); lower --num-classes or --min-distance, raise '
                    '--lung-max (the air filter keeps crops with at most that tissue score) '
                    'or pass --no-air-filter.')
            ref = int(free[rng.integers(len(free))])
            used[ref] = True
            nb_train, d_train = nearest(train_feats, train_feats[ref], args.top_k)
            nb_val = d_val = np.zeros(0, dtype=np.int64)
            shapes = train_shapes[nb_train]
            if val_feats is not None:
                nb_val, d_val = nearest(val_feats, train_feats[ref], args.top_k_val)
                shapes = np.concatenate([shapes, val_shapes[nb_val]])
            lo, hi = coordinate_range(np.concatenate([shapes, train_shapes[[ref]]]), crop,
                                      args.border, extra_z)
            coord = pick_coordinate(rng, load_ref(ref), lo, hi, coords, crop, args)
            if coord is None:
                log(f'class {cls}: no coordinate for reference {ref} after {args.max_tries} '
                    'tries; drawing another reference')
        coords.append(coord)
        classes.append(dict(cls=cls, ref=ref, coord=[int(v) for v in coord],
                            train=nb_train.tolist(), train_dist=d_train.tolist(),
                            val=nb_val.tolist(), val_dist=d_val.tolist()))
    return classes


# ------------------------------------------------------------------------------ writing
def write_split(split: str, paths: List[str], classes: List[dict], key: str, args, rng,
                log) -> List[dict]:
    """Crop every planned instance of ``split``, reading each volume once."""
    crop = args.crop_size
    jobs: Dict[int, List[dict]] = {}
    for c in classes:
        for rank, idx in enumerate(c[key]):
            jobs.setdefault(idx, []).append(dict(cls=c['cls'], coord=c['coord'], rank=rank))
    rows = []
    res_count = 3 if (args.multi_res and split == 'train') else 1
    # the multi-resolution draws are made in (class, rank) order, independent of file order
    boxes = {}
    for c in classes:
        for rank, idx in enumerate(c[key]):
            boxes[(c['cls'], rank)] = [rng.integers(0, 2**63 - 1) for _ in range(res_count - 1)]
    for idx in sorted(jobs):
        vol = load_windowed(paths[idx], args.window)
        pid = patient_id(paths[idx])
        for job in jobs[idx]:
            x, y, z = job['coord']
            folder = osp.join(args.out, split, f'c{job["cls"]:03d}')
            os.makedirs(folder, exist_ok=True)
            cube = vol[x:x + crop[0], y:y + crop[1], z:z + crop[2]]
            items = [(0, (x, y, z), cube)]
            for r, s in enumerate(boxes[(job['cls'], job['rank'])], start=1):
                bx, by, side = multires_box(np.random.default_rng(s), np.array([x, y, z]),
                                            vol.shape, crop, args)
                patch = vol[bx:bx + side, by:by + side, z:z + crop[2]]
                items.append((r, (bx, by, z), resize(patch, crop)))
            for r, start, arr in items:
                if arr.shape != tuple(crop):
                    raise RuntimeError(f'crop {start} of {paths[idx]} has shape {arr.shape}')
                rel = osp.join(split, f'c{job["cls"]:03d}', f'{pid}_r{r}.npy')
                np.save(osp.join(args.out, rel), np.ascontiguousarray(arr, dtype=np.float32))
                rows.append(dict(path=rel, **{'class': job['cls']}, patient=pid,
                                 x=start[0], y=start[1], z=start[2], resolution=r))
    rows.sort(key=lambda r: (r['class'], r['patient'], r['resolution']))
    with open(osp.join(args.out, f'{split}.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=INDEX_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    log(f'{split}: {len(rows)} instances of {len(classes)} classes -> {split}.csv')
    return rows


# --------------------------------------------------------------------------------- main
def compute_features(paths: List[str], args, log, autoencoder_train=None):
    """Read every volume once: its shape and its feature input; unreadable ones skipped."""
    keep, shapes, inputs, skipped = [], [], [], []
    size = args.ae_size if args.feature_source == 'autoencoder' else args.feature_size
    min_shape = np.asarray(args.crop_size) + 1
    for p in paths:
        try:
            vol = load_windowed(p, args.window)
        except ImageReadError as err:
            log(f'skipping unreadable volume: {err}')
            skipped.append(dict(path=p, reason=str(err)))
            continue
        if (np.asarray(vol.shape) < min_shape).any():
            log(f'skipping {p}: shape {vol.shape} is smaller than the crop {args.crop_size} + 1')
            skipped.append(dict(path=p, reason=f'smaller than the crop: {vol.shape}'))
            continue
        keep.append(p)
        shapes.append(vol.shape)
        inputs.append(resize(vol, size))
    return keep, np.asarray(shapes, dtype=np.int64).reshape(-1, 3), inputs, skipped


def features_of(inputs: List[np.ndarray], args, log) -> np.ndarray:
    if args.feature_source == 'intensity':
        return np.stack([v.reshape(-1) for v in inputs]).astype(np.float64)
    if args.feature_source == 'checkpoint':
        return backbone_features(inputs, args.config, args.checkpoint, args.ae_batch)
    raise AssertionError


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('train', help='training volumes: a folder or a list file')
    p.add_argument('--val', help='validation volumes: a folder or a list file')
    p.add_argument('--prefix', help='folder the entries of list files are relative to '
                   '(default: the list file\'s folder)')
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--num-classes', type=int, default=44,
                   help='visual-word classes (TransVW training config: 44)')
    p.add_argument('--top-k', type=int, default=200, help='training instances per class')
    p.add_argument('--top-k-val', type=int, default=30, help='validation instances per class')
    p.add_argument('--crop-size', type=int, nargs=3, default=(64, 64, 32))
    p.add_argument('--border', type=int, nargs=3, default=(100, 100, 30),
                   help='Models Genesis borders (shrunk for small volumes)')
    p.add_argument('--min-distance', type=float, default=5.0,
                   help='least L2 distance between class coordinates (voxels)')
    p.add_argument('--window', type=float, nargs=2, default=(-1000.0, 1000.0),
                   help='HU window mapped to [0, 1]')
    p.add_argument('--air-filter', action=argparse.BooleanOptionalAction, default=True,
                   help="Genesis' air/lung test of the reference crop (official: on)")
    p.add_argument('--air-hu', type=float, default=-150.0)
    p.add_argument('--lung-max', type=float, default=0.15,
                   help='largest tissue score of an accepted crop')
    p.add_argument('--max-tries', type=int, default=200)
    p.add_argument('--multi-res', action='store_true',
                   help='two more crops per training instance (in-plane 50-79, offset +-10)')
    p.add_argument('--multi-res-size', type=int, nargs=2, default=(50, 80))
    p.add_argument('--multi-res-offset', type=int, default=10)
    p.add_argument('--feature-source', choices=('autoencoder', 'intensity', 'checkpoint'),
                   default='autoencoder')
    p.add_argument('--feature-size', type=int, nargs=3, default=(32, 32, 16),
                   help='resize for the intensity / checkpoint features')
    p.add_argument('--ae-size', type=int, nargs=3, default=(128, 128, 64),
                   help='resize for the autoencoder (paper: 128 x 128 x 64)')
    p.add_argument('--ae-epochs', type=int, default=20)
    p.add_argument('--ae-batch', type=int, default=4)
    p.add_argument('--ae-lr', type=float, default=1e-3)
    p.add_argument('--config', help='dira_mm config of the backbone (--feature-source '
                   'checkpoint)')
    p.add_argument('--checkpoint', help='its trained weights (implies --feature-source '
                   'checkpoint)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--quiet', action='store_true')
    args = p.parse_args(argv)
    if args.checkpoint:
        args.feature_source = 'checkpoint'
    if args.feature_source == 'checkpoint' and not args.config:
        p.error('--feature-source checkpoint needs --config (the model config of the '
                'checkpoint)')
    if args.num_classes < 1 or args.top_k < 1 or args.top_k_val < 0:
        p.error('--num-classes and --top-k must be >= 1, --top-k-val >= 0')
    if args.feature_source == 'autoencoder' and any(v % 16 for v in args.ae_size):
        p.error('--ae-size must be multiples of 16 (the autoencoder halves it four times)')
    if args.multi_res and args.multi_res_size[0] >= args.multi_res_size[1]:
        p.error('--multi-res-size needs low < high')
    args.crop_size = tuple(args.crop_size)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    log = (lambda *a: None) if args.quiet else (lambda m: print(f'[transvw_discover] {m}'))
    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    train_paths = list_volumes(args.train, args.prefix)
    val_paths = list_volumes(args.val, args.prefix) if args.val else []
    check_unique_ids(train_paths, 'training')
    check_unique_ids(val_paths, 'validation')
    check_formats(train_paths + val_paths)
    train_paths, train_shapes, train_in, skipped = compute_features(train_paths, args, log)
    val_paths, val_shapes, val_in, skipped_val = compute_features(val_paths, args, log)
    if not train_paths:
        raise SystemExit('transvw_discover: no readable training volume.')
    if args.feature_source == 'autoencoder':
        feats = autoencoder_features(train_in + val_in, args.ae_epochs, args.ae_batch,
                                     args.ae_lr, args.seed, log)
    else:
        feats = features_of(train_in + val_in, args, log)
    train_feats, val_feats = feats[:len(train_paths)], feats[len(train_paths):]
    if not val_paths:
        val_feats = None
    log(f'features ({args.feature_source}): {feats.shape[1]}-d for {len(train_paths)} train '
        f'+ {len(val_paths)} val volumes')
    cache = {}

    def load_ref(i):
        if i not in cache:
            cache.clear()
            cache[i] = load_windowed(train_paths[i], args.window)
        return cache[i]

    os.makedirs(args.out, exist_ok=True)
    classes = plan_classes(args, rng, train_feats, val_feats, train_shapes, val_shapes,
                           load_ref, log)
    write_split('train', train_paths, classes, 'train', args, rng, log)
    if val_feats is not None:
        write_split('val', val_paths, classes, 'val', args, rng, log)
    summary = dict(
        args={k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()},
        train_volumes=train_paths, val_volumes=val_paths,
        skipped=skipped + skipped_val,
        classes=[dict(c, ref_patient=patient_id(train_paths[c['ref']])) for c in classes],
        seconds=round(time.time() - t0, 2))
    with open(osp.join(args.out, 'discovery.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    log(f'done in {summary["seconds"]} s: {args.out}')
    return summary


if __name__ == '__main__':
    main()
