"""The restorative distortion of DiRA: in-painting, out-painting or block swapping."""
from typing import Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from dira_mm.registry import TRANSFORMS
from .utils import get_rng

__all__ = ['DiRADistortion']

BRANCHES = ('inpaint', 'outpaint', 'swap', 'none')


def _scaled_range(value: Tuple[int, int], scale: float) -> Tuple[int, int]:
    """An inclusive integer range defined at the reference size, scaled to the image."""
    lo = max(1, int(round(value[0] * scale)))
    return lo, max(lo, int(round(value[1] * scale)))


@TRANSFORMS.register_module()
class DiRADistortion(BaseTransform):
    """Distort a view for the restorative branch of DiRA (the official
    ``Custom_Distoration``), with all of its numbers as defaults.

    One branch is drawn per call (``r ~ U[0, 1)``, thresholds in this order):

    - ``'inpaint'`` (``inpaint_prob=0.30``): up to ``inpaint_max_blocks`` blocks of
      ``randint(10, 70) x randint(10, 70)`` pixels are set to ``fill_value``; after each
      block the loop stops with probability ``inpaint_stop_prob``, so
      ``P(k blocks) = 0.9**(k-1) * 0.1`` for ``k < 10`` and ``P(10) = 0.9**9``.
    - ``'outpaint'`` (``outpaint_prob=0.05``): the image is set to ``fill_value``, then up
      to ``outpaint_max_windows`` windows of side ``H - randint(50, 70)`` per axis are
      copied back from the original, with the same stop rule.
    - ``'swap'`` (``swap_prob=0.30``): exactly ``swap_pairs`` pairs of
      ``randint(10, 15) x randint(10, 15)`` blocks (sizes drawn per axis) swap places;
      the source is always the image before any swap.
    - ``'none'`` (the remaining 0.35): unchanged.

    Every block lies at ``randint(border, H - size - border)`` per axis, ``border=3``.
    Ranges are inclusive on both ends like Python's ``random.randint``. They are defined
    for a ``reference_size`` x ``reference_size`` (224) image and scale with the image
    (rows with ``H``, columns with ``W``), rounded to integers: at 224 they are exactly the
    official integers.

    The official code means the two blocks of a swap pair not to overlap, but its test is
    always true (its last two terms compare in the wrong direction), so they may. By
    default (``official_overlap_check=False``) a correct test is used, and a pair is
    redrawn (sizes and positions, as the official loop does) up to ``max_swap_tries``
    times; a pair still overlapping after that (only possible on tiny images) is
    skipped. Blocks of *different* pairs may overlap, as in the official code.
    ``official_overlap_check=True`` restores the official always-true test.

    The draws are vectorised with numpy and each block is one slice assignment, which is
    why this is hand-written rather than taken from a library (Models Genesis and
    TransVW fill with noise and shuffle pixels, which DiRA does not).

    Required keys: ``img`` (``(H, W)`` or ``(H, W, C)``). Modified keys: ``img`` (a new
    array; the input is not written). Added keys: ``distortion`` (the branch name) and
    ``distortion_boxes`` (``int64 (k, 4)`` rows ``[top, left, height, width]``; for
    ``'swap'`` rows ``2i`` and ``2i + 1`` are the two blocks of pair ``i``).

    Args:
        inpaint_prob (float): Probability of the in-painting branch.
        outpaint_prob (float): Probability of the out-painting branch.
        swap_prob (float): Probability of the block-swapping branch.
        inpaint_max_blocks (int): Most in-painted blocks.
        inpaint_size (tuple[int, int]): Inclusive block side range, per axis.
        inpaint_stop_prob (float): Probability to stop after each block.
        outpaint_max_windows (int): Most windows kept by out-painting.
        outpaint_shrink (tuple[int, int]): A window's side is ``H - randint(*range)``.
        outpaint_stop_prob (float): Probability to stop after each window.
        swap_pairs (int): Number of swapped block pairs.
        swap_size (tuple[int, int]): Inclusive swapped block side range, per axis.
        border (int): Smallest distance of a block from the image edge.
        fill_value (int): Value of in-painted blocks and of the out-painted outside.
        official_overlap_check (bool): Use the official (always true) overlap test.
        max_swap_tries (int): Draws per swap pair with the correct overlap test.
        reference_size (int): Image side at which the sizes above are defined.
    """

    def __init__(self,
                 inpaint_prob: float = 0.30,
                 outpaint_prob: float = 0.05,
                 swap_prob: float = 0.30,
                 inpaint_max_blocks: int = 10,
                 inpaint_size: Tuple[int, int] = (10, 70),
                 inpaint_stop_prob: float = 0.1,
                 outpaint_max_windows: int = 10,
                 outpaint_shrink: Tuple[int, int] = (50, 70),
                 outpaint_stop_prob: float = 0.1,
                 swap_pairs: int = 10,
                 swap_size: Tuple[int, int] = (10, 15),
                 border: int = 3,
                 fill_value: int = 0,
                 official_overlap_check: bool = False,
                 max_swap_tries: int = 100,
                 reference_size: int = 224) -> None:
        probs = (inpaint_prob, outpaint_prob, swap_prob)
        if min(probs) < 0 or sum(probs) > 1 + 1e-9:
            raise ValueError(f'branch probabilities must be >= 0 with sum <= 1, got {probs}')
        for name, rng_ in (('inpaint_size', inpaint_size), ('outpaint_shrink', outpaint_shrink),
                           ('swap_size', swap_size)):
            if not 0 <= rng_[0] <= rng_[1]:
                raise ValueError(f'{name} must be 0 <= min <= max, got {rng_}')
        for name, p in (('inpaint_stop_prob', inpaint_stop_prob),
                        ('outpaint_stop_prob', outpaint_stop_prob)):
            if not 0 < p <= 1:
                raise ValueError(f'{name} must be in (0, 1], got {p}')
        if min(inpaint_max_blocks, outpaint_max_windows, max_swap_tries) < 1 or swap_pairs < 0:
            raise ValueError('block counts and max_swap_tries must be positive')
        self.inpaint_prob = float(inpaint_prob)
        self.outpaint_prob = float(outpaint_prob)
        self.swap_prob = float(swap_prob)
        self.inpaint_max_blocks = int(inpaint_max_blocks)
        self.inpaint_size = tuple(inpaint_size)
        self.inpaint_stop_prob = float(inpaint_stop_prob)
        self.outpaint_max_windows = int(outpaint_max_windows)
        self.outpaint_shrink = tuple(outpaint_shrink)
        self.outpaint_stop_prob = float(outpaint_stop_prob)
        self.swap_pairs = int(swap_pairs)
        self.swap_size = tuple(swap_size)
        self.border = int(border)
        self.fill_value = fill_value
        self.official_overlap_check = bool(official_overlap_check)
        self.max_swap_tries = int(max_swap_tries)
        self.reference_size = int(reference_size)
        # Cumulative thresholds: r <= t0 in-paint, <= t1 out-paint, <= t2 swap, else none.
        self._thresholds = np.cumsum(probs)

    # ------------------------------------------------------------------ sampling
    def _draw_positions(self, rng: np.random.Generator, sizes: np.ndarray, extent: int,
                        border: int) -> np.ndarray:
        """``randint(border, extent - size - border)`` per block, clamped to the image."""
        hi = extent - sizes - border
        lo = np.minimum(border, np.maximum(extent - sizes, 0))
        return rng.integers(lo, np.maximum(hi, lo) + 1)

    def _draw_blocks(self, rng: np.random.Generator, num: int, size_h: Tuple[int, int],
                     size_w: Tuple[int, int], shape: Tuple[int, int],
                     borders: Tuple[int, int]) -> Tuple[np.ndarray, ...]:
        """Sizes then positions of ``num`` blocks: ``(tops, lefts, heights, widths)``."""
        heights = np.minimum(rng.integers(size_h[0], size_h[1] + 1, num), shape[0])
        widths = np.minimum(rng.integers(size_w[0], size_w[1] + 1, num), shape[1])
        tops = self._draw_positions(rng, heights, shape[0], borders[0])
        lefts = self._draw_positions(rng, widths, shape[1], borders[1])
        return tops, lefts, heights, widths

    def _num_blocks(self, rng: np.random.Generator, max_blocks: int, stop_prob: float) -> int:
        """Blocks done before the first stop, with a stop check after each block."""
        return int(min(rng.geometric(stop_prob), max_blocks))

    def _overlap_free(self, t1: np.ndarray, l1: np.ndarray, t2: np.ndarray, l2: np.ndarray,
                      h: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The pair test: official (always true) or correct (boxes are half-open)."""
        if self.official_overlap_check:
            return (t1 > t2 + h) | (t2 > t1 + h) | (l1 < l2 + w) | (l2 < l1 + w)
        return (t1 >= t2 + h) | (t2 >= t1 + h) | (l1 >= l2 + w) | (l2 >= l1 + w)

    # ------------------------------------------------------------------ branches
    def inpaint(self, img: np.ndarray, rng: np.random.Generator,
                scale: Tuple[float, float], borders: Tuple[int, int]):
        num = self._num_blocks(rng, self.inpaint_max_blocks, self.inpaint_stop_prob)
        tops, lefts, heights, widths = self._draw_blocks(
            rng, num, _scaled_range(self.inpaint_size, scale[0]),
            _scaled_range(self.inpaint_size, scale[1]), img.shape[:2], borders)
        out = img.copy()
        for t, l, h, w in zip(tops, lefts, heights, widths):
            out[t:t + h, l:l + w] = self.fill_value
        return out, np.stack([tops, lefts, heights, widths], axis=1)

    def outpaint(self, img: np.ndarray, rng: np.random.Generator,
                 scale: Tuple[float, float], borders: Tuple[int, int]):
        height, width = img.shape[:2]
        num = self._num_blocks(rng, self.outpaint_max_windows, self.outpaint_stop_prob)
        shrink_h = _scaled_range(self.outpaint_shrink, scale[0])
        shrink_w = _scaled_range(self.outpaint_shrink, scale[1])
        # A window's side is the image side minus the shrink: the inclusive size range
        # is [H - max_shrink, H - min_shrink].
        tops, lefts, heights, widths = self._draw_blocks(
            rng, num, (max(1, height - shrink_h[1]), max(1, height - shrink_h[0])),
            (max(1, width - shrink_w[1]), max(1, width - shrink_w[0])),
            (height, width), borders)
        out = np.full_like(img, self.fill_value)
        for t, l, h, w in zip(tops, lefts, heights, widths):
            out[t:t + h, l:l + w] = img[t:t + h, l:l + w]
        return out, np.stack([tops, lefts, heights, widths], axis=1)

    def swap(self, img: np.ndarray, rng: np.random.Generator,
             scale: Tuple[float, float], borders: Tuple[int, int]):
        shape = img.shape[:2]
        size_h = _scaled_range(self.swap_size, scale[0])
        size_w = _scaled_range(self.swap_size, scale[1])
        n = self.swap_pairs
        heights = np.minimum(rng.integers(size_h[0], size_h[1] + 1, n), shape[0])
        widths = np.minimum(rng.integers(size_w[0], size_w[1] + 1, n), shape[1])
        t1 = self._draw_positions(rng, heights, shape[0], borders[0])
        l1 = self._draw_positions(rng, widths, shape[1], borders[1])
        t2 = self._draw_positions(rng, heights, shape[0], borders[0])
        l2 = self._draw_positions(rng, widths, shape[1], borders[1])
        ok = self._overlap_free(t1, l1, t2, l2, heights, widths)
        for _ in range(self.max_swap_tries - 1):
            bad = np.flatnonzero(~ok)
            if bad.size == 0:
                break
            k = bad.size
            heights[bad] = np.minimum(rng.integers(size_h[0], size_h[1] + 1, k), shape[0])
            widths[bad] = np.minimum(rng.integers(size_w[0], size_w[1] + 1, k), shape[1])
            t1[bad] = self._draw_positions(rng, heights[bad], shape[0], borders[0])
            l1[bad] = self._draw_positions(rng, widths[bad], shape[1], borders[1])
            t2[bad] = self._draw_positions(rng, heights[bad], shape[0], borders[0])
            l2[bad] = self._draw_positions(rng, widths[bad], shape[1], borders[1])
            ok[bad] = self._overlap_free(
                t1[bad], l1[bad], t2[bad], l2[bad], heights[bad], widths[bad])
        keep = np.flatnonzero(ok)
        out = img.copy()
        for i in keep:
            a, b, c, d, h, w = t1[i], l1[i], t2[i], l2[i], heights[i], widths[i]
            out[a:a + h, b:b + w] = img[c:c + h, d:d + w]
            out[c:c + h, d:d + w] = img[a:a + h, b:b + w]
        boxes = np.empty((2 * keep.size, 4), dtype=np.int64)
        boxes[0::2] = np.stack([t1, l1, heights, widths], axis=1)[keep]
        boxes[1::2] = np.stack([t2, l2, heights, widths], axis=1)[keep]
        return out, boxes

    def transform(self, results: dict) -> dict:
        rng = get_rng(results)
        img = results['img']
        branch = BRANCHES[int(np.searchsorted(self._thresholds, rng.random(), side='left'))]
        if branch == 'none':
            boxes = np.zeros((0, 4), dtype=np.int64)
        else:
            height, width = img.shape[:2]
            scale = (height / self.reference_size, width / self.reference_size)
            borders = (int(round(self.border * scale[0])), int(round(self.border * scale[1])))
            img, boxes = getattr(self, branch)(img, rng, scale, borders)
            boxes = boxes.astype(np.int64, copy=False)
        results['img'] = img
        results['distortion'] = branch
        results['distortion_boxes'] = boxes
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(inpaint_prob={self.inpaint_prob}, '
                f'outpaint_prob={self.outpaint_prob}, swap_prob={self.swap_prob}, '
                f'inpaint_max_blocks={self.inpaint_max_blocks}, '
                f'inpaint_size={self.inpaint_size}, '
                f'inpaint_stop_prob={self.inpaint_stop_prob}, '
                f'outpaint_max_windows={self.outpaint_max_windows}, '
                f'outpaint_shrink={self.outpaint_shrink}, '
                f'outpaint_stop_prob={self.outpaint_stop_prob}, '
                f'swap_pairs={self.swap_pairs}, swap_size={self.swap_size}, '
                f'border={self.border}, fill_value={self.fill_value}, '
                f'official_overlap_check={self.official_overlap_check}, '
                f'max_swap_tries={self.max_swap_tries}, '
                f'reference_size={self.reference_size})')
