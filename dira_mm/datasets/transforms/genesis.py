"""Models Genesis and TransVW distortions, n-dimensional (2-D images and 3-D volumes).

Array contract: every function takes a channel-first float array ``(C, *spatial)`` with
values in ``[0, 1]``; ``spatial_dims = x.ndim - 1`` must be 2 (``(C, H, W)``) or 3
(``(C, X, Y, Z)``). The spatial rank is read from ``ndim`` explicitly and the first axis is
*always* the channel axis: a ``(H, W, C)`` or a channel-less ``(D, H, W)`` array is never
guessed at (a 3-D array is ``(C, H, W)``; add the channel axis before calling). All
randomness comes from the passed ``numpy.random.Generator`` (the transforms draw it from
``results['rng']`` through :func:`dira_mm.datasets.transforms.utils.get_rng`), so a sample's
distortion is a pure function of the seed.

Sources (``/work/shared/reference/dira_3d_transvw.md`` §2.3 and §3.2): Models Genesis
``pytorch/utils.py`` (``generate_pair``, ``data_augmentation``, ``local_pixel_shuffling``,
``nonlinear_transformation``, ``image_in_painting``, ``image_out_painting``) and TransVW
``utils/purturbation.py``. Ranges are inclusive like Python's ``random.randint``.

Deviation with a flag restoring the official behaviour: the official flip picks its axis
from ``[0, 1, 2]`` of the per-sample ``(1, X, Y, Z)`` array, so one flip in three flips the
channel axis (a no-op) and the depth axis is never flipped. Here the axis is drawn from the
spatial axes; ``official_axes=True`` restores the official choice.
"""
from functools import lru_cache
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from dira_mm.registry import TRANSFORMS
from .utils import get_rng

__all__ = [
    'spatial_dims_of', 'genesis_flip', 'local_pixel_shuffling', 'bezier_intensity_map',
    'nonlinear_transformation', 'image_in_painting', 'image_out_painting',
    'GenesisDistortion', 'TransVWDistortion'
]


def spatial_dims_of(x: np.ndarray) -> int:
    """``x.ndim - 1`` for a channel-first ``(C, *spatial)`` array; 2 or 3, else an error."""
    sd = x.ndim - 1
    if sd not in (2, 3):
        raise ValueError(
            f'expected a channel-first (C, H, W) or (C, X, Y, Z) array, got shape {x.shape}')
    return sd


def _randint(rng: np.random.Generator, lo, hi):
    """Inclusive ``randint(lo, hi)`` (vectorised), with ``hi`` clamped to ``>= lo``."""
    lo = np.asarray(lo)
    return rng.integers(lo, np.maximum(hi, lo) + 1)


# ---------------------------------------------------------------------------- flip
def genesis_flip(x: np.ndarray, y: np.ndarray, rng: np.random.Generator,
                 prob: float = 0.4, max_flips: int = 3,
                 official_axes: bool = False) -> Tuple[np.ndarray, np.ndarray, List[int]]:
    """Flip input and target together: while ``rng.random() < prob``, at most
    ``max_flips`` times, flip one axis.

    The axis is uniform over the spatial axes ``1 .. ndim - 1`` (default), or, with
    ``official_axes=True``, uniform over ``[0, 1, 2]`` as the official code (axis 0 being
    the channel axis; for a 3-D volume the last spatial axis is then never flipped).

    Returns:
        tuple: ``(x, y, axes)``, new arrays and the list of flipped axes in order.
    """
    spatial_dims_of(x)
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(f'input {x.shape} and target {y.shape} differ spatially')
    choices = (0, 1, 2) if official_axes else tuple(range(1, x.ndim))
    axes = []
    while len(axes) < max_flips and rng.random() < prob:
        axes.append(int(choices[rng.integers(len(choices))]))
    for ax in axes:
        x = np.flip(x, axis=ax)
        y = np.flip(y, axis=ax)
    return np.ascontiguousarray(x), np.ascontiguousarray(y), axes


# ----------------------------------------------------------------- local shuffling
_OFFSET_TABLE_MAX = 2**22   # largest (max window volume)**2 served by an offset table


def _shuffle_window_draws(rng: np.random.Generator, spatial: Sequence[int], num_windows: int,
                          size_div: int):
    """Sizes ``(N, d)``, starts ``(N, d)`` and one uniform permutation key per window voxel
    (``sum(prod(sizes, 1))`` keys, window after window, C order inside a window)."""
    spatial = np.asarray(spatial, dtype=np.int64)
    max_side = np.maximum(spatial // size_div, 1)
    sizes = rng.integers(1, max_side + 1, size=(num_windows, spatial.size))
    starts = rng.integers(0, spatial - sizes + 1)
    keys = rng.random(int(np.prod(sizes, axis=1).sum()))
    return sizes, starts, keys


def _shuffle_from_draws(x: np.ndarray, sizes: np.ndarray, starts: np.ndarray,
                        keys: np.ndarray) -> np.ndarray:
    """Apply drawn windows: window ``n``'s voxel at local C-order index ``j`` receives the
    original voxel at local index ``argsort(keys_n)[j]``; the last window wins."""
    spatial = x.shape[1:]
    n, d = sizes.shape
    n_vox = int(np.prod(spatial))
    idx_t = np.int32 if n_vox < 2**31 - 1 and len(keys) < 2**31 - 1 else np.int64
    vol = np.prod(sizes, axis=1)
    total = int(vol.sum())
    win = np.repeat(np.arange(n, dtype=idx_t), vol)                  # window of each entry
    offsets = (np.cumsum(vol) - vol).astype(idx_t)
    local = np.arange(total, dtype=idx_t) - offsets[win]             # C-order index inside
    gstrides = np.cumprod((1, ) + tuple(spatial[:0:-1]))[::-1]       # C strides of spatial
    base = (starts @ gstrides.astype(np.int64)).astype(idx_t)        # (n,)
    max_sizes = tuple(int(m) for m in sizes.max(axis=0))
    m = int(np.prod(max_sizes))
    if m * m <= _OFFSET_TABLE_MAX:
        # Table: rel[t * m + j] = flat offset (global strides) of local C-order index j
        # in a window of size tuple t = ravel_multi_index(sizes - 1, max_sizes).
        all_sizes = np.stack(np.unravel_index(np.arange(m), max_sizes), axis=1) + 1
        rem = np.broadcast_to(np.arange(m), (m, m))
        rel = np.zeros((m, m), dtype=np.int64)
        for k in range(d):
            lstride = np.prod(all_sizes[:, k + 1:], axis=1, dtype=np.int64)[:, None]
            coord, rem = np.divmod(rem, lstride)
            rel += coord * int(gstrides[k])
        rel = rel.ravel().astype(idx_t)
        tid = np.ravel_multi_index(tuple((sizes - 1).T), max_sizes).astype(idx_t) * idx_t(m)

        def to_flat(local_idx, w):
            return base[w] + rel[tid[w] + local_idx]
    else:
        # Large windows: unravel each entry's local index with its window's strides.
        lstrides = np.cumprod(np.concatenate([np.ones((n, 1), np.int64), sizes[:, :0:-1]],
                                             axis=1), axis=1)[:, ::-1].astype(idx_t)

        def to_flat(local_idx, w):
            flat = base[w].copy()
            rem = local_idx
            for k in range(d):
                coord, rem = np.divmod(rem, lstrides[w, k])
                flat += coord * idx_t(gstrides[k])
            return flat

    dest = to_flat(local, win)
    # Last write wins: the entry index of the last write to each voxel (exact: ufunc.at
    # applies every entry, and max picks the latest).
    last = np.full(n_vox, -1, dtype=idx_t)
    np.maximum.at(last, dest, np.arange(total, dtype=idx_t))
    written = np.flatnonzero(last >= 0)
    winner = last[written]
    # Segmented argsort: windows stay in order, keys permute inside each window; entry j
    # of window n reads the original voxel at local index perm_n[j].
    order = np.argsort(win + keys, kind='stable')
    w = win[winner]
    src = to_flat(local[order[winner]], w)
    flat_in = x.reshape(x.shape[0], n_vox)
    out = flat_in.copy()
    out[:, written] = flat_in[:, src]
    return out.reshape(x.shape)


def local_pixel_shuffling(x: np.ndarray, rng: np.random.Generator, num_windows: int = 10000,
                          size_div: int = 10) -> np.ndarray:
    """Models Genesis' local pixel shuffling, vectorised.

    ``num_windows`` windows, each of side ``randint(1, dim // size_div)`` per spatial axis
    (at least 1) at a uniform position; the voxels of each window are permuted uniformly
    at random. Windows are read from the *original* array and later windows overwrite
    earlier ones, as in the official loop. Every channel moves with its voxel (the official
    code has one channel).

    The result has the official loop's distribution exactly: the permutation of a window
    is the argsort of i.i.d. uniform keys (uniform over permutations), and each voxel
    takes its value from the *last* window covering it. Only the order in which the
    random numbers are drawn differs from a loop.
    """
    spatial_dims_of(x)
    if num_windows <= 0:
        return x.copy()
    sizes, starts, keys = _shuffle_window_draws(rng, x.shape[1:], num_windows, size_div)
    return _shuffle_from_draws(x, sizes, starts, keys)


# ------------------------------------------------------------------- non-linear
@lru_cache(maxsize=4)
def _bernstein_basis(n_times: int) -> np.ndarray:
    """``(4, n_times)`` cubic Bernstein basis in the official (reversed) order:
    ``B_i(t) = C(3, i) t^(3 - i) (1 - t)^i``, so ``t = 0`` gives the last control point."""
    t = np.linspace(0.0, 1.0, n_times)
    coef = (1, 3, 3, 1)
    return np.stack([coef[i] * t**(3 - i) * (1 - t)**i for i in range(4)])


def _sort(v: np.ndarray) -> np.ndarray:
    """``np.sort(v)``, fast for the curve samples: with control values in ``[0, 1]`` a
    coordinate of the cubic is monotone in ``t`` (its derivative's Bernstein coefficients
    ``a, b - a, 1 - b`` have ``b - a >= -sqrt(a (1 - b))``), so the samples are usually
    already sorted one way or the other; the result is the same array either way."""
    for cand in (v, v[::-1]):
        if (cand[1:] >= cand[:-1]).all():
            return cand.copy()
    return np.sort(v)


def bezier_intensity_map(rng: np.random.Generator, invert_prob: float = 0.5,
                         n_times: int = 100000) -> Tuple[np.ndarray, np.ndarray, bool]:
    """Draw the official Bézier intensity curve.

    Control points ``[0, 0], [u1, u2], [u3, u4], [1, 1]`` with four independent
    ``U(0, 1)``; the curve is sampled at ``n_times`` points with the reversed Bernstein
    order. With probability ``invert_prob`` only x is sorted (the map decreases: it
    inverts intensities, ``0 -> 1`` and ``1 -> 0``), otherwise both (the map increases,
    ``0 -> 0`` and ``1 -> 1``).

    Returns:
        tuple: ``(xvals, yvals, inverted)`` for ``np.interp(x, xvals, yvals)``.
    """
    u = rng.random(4)
    xs = np.array([0.0, u[0], u[2], 1.0])
    ys = np.array([0.0, u[1], u[3], 1.0])
    basis = _bernstein_basis(int(n_times))
    xvals, yvals = xs @ basis, ys @ basis
    inverted = bool(rng.random() < invert_prob)
    if inverted:
        xvals = _sort(xvals)
    else:
        xvals, yvals = _sort(xvals), _sort(yvals)
    return xvals, yvals, inverted


#: intervals of the uniform look-up table of :func:`nonlinear_transformation`
NONLINEAR_LUT_SIZE = 65536


def nonlinear_transformation(x: np.ndarray, rng: np.random.Generator,
                             invert_prob: float = 0.5, n_times: int = 100000,
                             lut_size: Optional[int] = NONLINEAR_LUT_SIZE) -> np.ndarray:
    """Apply a drawn :func:`bezier_intensity_map` to every voxel.

    The official code runs ``np.interp`` over the 100,000 curve samples for every voxel,
    which costs most of the step. By default the curve is interpolated once onto a
    uniform table of ``lut_size + 1`` points over [0, 1] and each voxel is linearly
    interpolated in that table (values outside [0, 1] clamp, as ``np.interp`` clamps at the
    curve's end points (0 and 1)). In float32 the result differs from ``np.interp`` by at
    most one rounding step (6e-8 measured); ``lut_size=None`` is ``np.interp`` per voxel.
    """
    spatial_dims_of(x)
    xvals, yvals, _ = bezier_intensity_map(rng, invert_prob, n_times)
    if lut_size is None:
        return np.interp(x, xvals, yvals).astype(x.dtype, copy=False)
    lut = np.interp(np.linspace(0.0, 1.0, lut_size + 1), xvals, yvals)
    pos = np.clip(x, 0.0, 1.0).astype(np.float64) * lut_size
    idx = np.minimum(pos.astype(np.int64), lut_size - 1)
    low = lut[idx]
    return (low + (lut[idx + 1] - low) * (pos - idx)).astype(x.dtype, copy=False)


# ---------------------------------------------------------------------- painting
def _block_count(rng: np.random.Generator, max_blocks: int, continue_prob: float) -> int:
    """Blocks of ``while cnt > 0 and random() < continue_prob``: ``min(G - 1, max)`` with
    ``G ~ Geometric(1 - continue_prob)``."""
    if continue_prob >= 1:
        return max_blocks
    return int(min(rng.geometric(1.0 - continue_prob) - 1, max_blocks))


def _paint_boxes(rng: np.random.Generator, spatial: Sequence[int], num: int,
                 size_lo: np.ndarray, size_hi: np.ndarray, border: int) -> np.ndarray:
    """``(num, 2, d)`` boxes: row 0 the starts, row 1 the sizes. Sizes inclusive in
    ``[size_lo, size_hi]`` per axis (clamped to the image); starts in
    ``[border, dim - size - border]`` (clamped when the image is too small)."""
    spatial = np.asarray(spatial, dtype=np.int64)
    d = spatial.size
    size_lo = np.clip(size_lo, 1, spatial)
    size_hi = np.clip(size_hi, size_lo, spatial)
    sizes = rng.integers(size_lo, size_hi + 1, size=(num, d))
    lo = np.minimum(border, spatial - sizes)
    starts = _randint(rng, lo, spatial - sizes - border)
    return np.stack([starts, sizes], axis=1).astype(np.int64)


def _box_slices(box: np.ndarray):
    return tuple(slice(int(s), int(s + n)) for s, n in zip(box[0], box[1]))


def image_in_painting(x: np.ndarray, rng: np.random.Generator, max_blocks: int = 5,
                      continue_prob: float = 0.95, size_frac: Tuple[int, int] = (6, 3),
                      border: int = 3, return_boxes: bool = False):
    """Models Genesis in-painting: ``while cnt > 0 and random() < continue_prob`` (at most
    ``max_blocks``), a cuboid of side ``randint(dim // 6, dim // 3)`` per axis, at least
    ``border`` voxels from the edge, is filled with ``U(0, 1)`` noise (the same noise in
    every channel, as the official one-channel code). ``x`` is not written."""
    spatial_dims_of(x)
    spatial = np.asarray(x.shape[1:])
    num = _block_count(rng, max_blocks, continue_prob)
    boxes = _paint_boxes(rng, spatial, num, spatial // size_frac[0], spatial // size_frac[1],
                         border)
    out = x.copy()
    for box in boxes:
        out[(slice(None),) + _box_slices(box)] = rng.random(tuple(box[1])).astype(x.dtype)
    return (out, boxes) if return_boxes else out


def image_out_painting(x: np.ndarray, rng: np.random.Generator, max_extra: int = 4,
                       continue_prob: float = 0.95, shrink_frac: Tuple[int, int] = (3, 4),
                       shrink_div: int = 7, border: int = 3, return_boxes: bool = False):
    """Models Genesis out-painting: the whole array becomes ``U(0, 1)`` noise, then one
    window plus up to ``max_extra`` more (``while random() < continue_prob``) are copied
    back from the original; a window's side is
    ``dim - randint(3 * dim // 7, 4 * dim // 7)`` per axis, ``border`` from the edge."""
    spatial_dims_of(x)
    spatial = np.asarray(x.shape[1:])
    num = 1 + _block_count(rng, max_extra, continue_prob)
    # The official draws the first window before the continue loop; the count is drawn
    # first here, which changes the draw order, not the distribution.
    shrink_lo = shrink_frac[0] * spatial // shrink_div
    shrink_hi = shrink_frac[1] * spatial // shrink_div
    out = rng.random(x.shape).astype(x.dtype)
    boxes = _paint_boxes(rng, spatial, num, spatial - shrink_hi, spatial - shrink_lo, border)
    for box in boxes:
        sl = (slice(None),) + _box_slices(box)
        out[sl] = x[sl]
    return (out, boxes) if return_boxes else out


# -------------------------------------------------------------------- transforms
def _check_input(img) -> np.ndarray:
    img = np.asarray(img)
    spatial_dims_of(img)
    if not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f'expected a float array in [0, 1], got dtype {img.dtype}')
    return img


@TRANSFORMS.register_module()
class GenesisDistortion(BaseTransform):
    """Models Genesis' ``generate_pair`` for one sample, 2-D or 3-D.

    ``results['img']`` (channel-first ``(C, *spatial)`` float in ``[0, 1]``, spatial
    rank ``img.ndim - 1`` in {2, 3}) is copied to ``results['target']``; then in order:
    flip (input and target together, :func:`genesis_flip`), local pixel shuffling
    (``shuffle_prob``), non-linear intensity (``nonlinear_prob``), painting
    (``paint_prob``; in-painting with ``inpaint_prob``, otherwise out-painting). Only
    the flip touches the target. Defaults are the published rates (flip 0.4, shuffle
    0.5, non-linear 0.9, paint 0.9, in-paint 0.2).

    Added keys: ``target``, ``distortion`` (the list of applied step names, e.g.
    ``['flip', 'nonlinear', 'outpaint']``) and ``flip_axes``.

    Args:
        flip_prob (float): Continue probability of the flip loop.
        max_flips (int): Most flips.
        official_axes (bool): Draw the flip axis from ``[0, 1, 2]`` as the official code
            (it may flip the channel axis and never flips depth). Default: spatial axes.
        shuffle_prob (float): Probability of local pixel shuffling.
        shuffle_windows (int): Windows per shuffle (official 10,000).
        nonlinear_prob (float): Probability of the Bézier intensity map.
        invert_prob (float): Probability that the intensity map is decreasing.
        paint_prob (float): Probability of painting.
        inpaint_prob (float): Probability of in- (vs out-) painting, given painting.
        inpaint_max_blocks (int): Most in-painted cuboids.
        outpaint_max_extra (int): Most out-painting windows after the first.
        paint_continue_prob (float): Continue probability of both painting loops.
    """

    def __init__(self, flip_prob: float = 0.4, max_flips: int = 3, official_axes: bool = False,
                 shuffle_prob: float = 0.5, shuffle_windows: int = 10000,
                 nonlinear_prob: float = 0.9, invert_prob: float = 0.5,
                 paint_prob: float = 0.9, inpaint_prob: float = 0.2,
                 inpaint_max_blocks: int = 5, outpaint_max_extra: int = 4,
                 paint_continue_prob: float = 0.95) -> None:
        for name, p in (('flip_prob', flip_prob), ('shuffle_prob', shuffle_prob),
                        ('nonlinear_prob', nonlinear_prob), ('invert_prob', invert_prob),
                        ('paint_prob', paint_prob), ('inpaint_prob', inpaint_prob),
                        ('paint_continue_prob', paint_continue_prob)):
            if not 0 <= p <= 1:
                raise ValueError(f'{name} must be in [0, 1], got {p}')
        self.flip_prob = float(flip_prob)
        self.max_flips = int(max_flips)
        self.official_axes = bool(official_axes)
        self.shuffle_prob = float(shuffle_prob)
        self.shuffle_windows = int(shuffle_windows)
        self.nonlinear_prob = float(nonlinear_prob)
        self.invert_prob = float(invert_prob)
        self.paint_prob = float(paint_prob)
        self.inpaint_prob = float(inpaint_prob)
        self.inpaint_max_blocks = int(inpaint_max_blocks)
        self.outpaint_max_extra = int(outpaint_max_extra)
        self.paint_continue_prob = float(paint_continue_prob)

    def transform(self, results: dict) -> dict:
        rng = get_rng(results)
        img = _check_input(results['img'])
        x, y, axes = genesis_flip(img, img, rng, self.flip_prob, self.max_flips,
                                  self.official_axes)
        y = y.copy() if np.shares_memory(x, y) else y
        steps = ['flip'] if axes else []
        if rng.random() < self.shuffle_prob:
            x = local_pixel_shuffling(x, rng, self.shuffle_windows)
            steps.append('shuffle')
        if rng.random() < self.nonlinear_prob:
            x = nonlinear_transformation(x, rng, self.invert_prob)
            steps.append('nonlinear')
        if rng.random() < self.paint_prob:
            if rng.random() < self.inpaint_prob:
                x = image_in_painting(x, rng, self.inpaint_max_blocks, self.paint_continue_prob)
                steps.append('inpaint')
            else:
                x = image_out_painting(x, rng, self.outpaint_max_extra,
                                       self.paint_continue_prob)
                steps.append('outpaint')
        results['img'] = x
        results['target'] = y
        results['distortion'] = steps
        results['flip_axes'] = axes
        return results

    def __repr__(self) -> str:
        keys = ('flip_prob', 'max_flips', 'official_axes', 'shuffle_prob', 'shuffle_windows',
                'nonlinear_prob', 'invert_prob', 'paint_prob', 'inpaint_prob',
                'inpaint_max_blocks', 'outpaint_max_extra', 'paint_continue_prob')
        return f'{self.__class__.__name__}(' + ', '.join(
            f'{k}={getattr(self, k)}' for k in keys) + ')'


@TRANSFORMS.register_module()
class TransVWDistortion(BaseTransform):
    """TransVW's perturbation for one sample, 2-D or 3-D: *exactly one* of local
    shuffle / non-linear / in-paint / out-paint (``probs``, 0.25 each), no flip.

    Differences from :class:`GenesisDistortion` (reference §3.2): 5 shuffle windows, one
    in-painted cuboid, one out-painting window, and the non-linear map always applies
    once chosen. Block sizes and the Bézier map are Models Genesis' (assumed the same
    functions). TransVW's optional elastic deformation (before the perturbation, after
    the target copy) is not part of this transform.

    Added keys: ``target`` (an untouched copy of ``img``), ``distortion`` (``[name]``)
    and ``flip_axes`` (always ``[]``).
    """

    BRANCHES = ('shuffle', 'nonlinear', 'inpaint', 'outpaint')

    def __init__(self, probs: Sequence[float] = (0.25, 0.25, 0.25, 0.25),
                 shuffle_windows: int = 5, invert_prob: float = 0.5) -> None:
        probs = np.asarray(probs, dtype=float)
        if probs.shape != (4, ) or probs.min() < 0 or abs(probs.sum() - 1) > 1e-6:
            raise ValueError(f'probs must be 4 non-negative values summing to 1, got {probs}')
        self.probs = tuple(float(p) for p in probs)
        self.shuffle_windows = int(shuffle_windows)
        self.invert_prob = float(invert_prob)
        self._cum = np.cumsum(probs)

    def transform(self, results: dict) -> dict:
        rng = get_rng(results)
        img = _check_input(results['img'])
        branch = self.BRANCHES[min(int(np.searchsorted(self._cum, rng.random(), side='right')),
                                   3)]
        if branch == 'shuffle':
            x = local_pixel_shuffling(img, rng, self.shuffle_windows)
        elif branch == 'nonlinear':
            x = nonlinear_transformation(img, rng, self.invert_prob)
        elif branch == 'inpaint':
            x = image_in_painting(img, rng, max_blocks=1, continue_prob=1.0)
        else:
            x = image_out_painting(img, rng, max_extra=0)
        results['img'] = x
        results['target'] = img.copy()
        results['distortion'] = [branch]
        results['flip_axes'] = []
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(probs={self.probs}, '
                f'shuffle_windows={self.shuffle_windows}, invert_prob={self.invert_prob})')
