"""Run-length encoding of binary masks in the SIIM-ACR pneumothorax format.

The SIIM-ACR challenge (``train-rle.csv``: ``ImageId, EncodedPixels``) stores a mask as
space-separated integer pairs ``gap length gap length ...`` over the pixels in
**column-major** order (down the first column, then the next; the image transposed with
respect to numpy's row-major order). Unlike the usual Kaggle RLE, the first number of a
pair is **relative**: the count of background pixels since the end of the previous run
(since pixel 0 for the first run), not an absolute start. ``-1`` (in the CSV often
``' -1'``) means an empty mask. An image with several pneumothorax regions has several
rows; their masks are merged by union.

Hand-written and vectorised (numpy): the challenge's reference ``rle2mask``/``mask2rle``
loop over every pixel in Python, and its ``mask2rle`` drops a run that ends on the last
pixel.
"""
from typing import Iterable, Optional, Tuple

import numpy as np

__all__ = ['EMPTY_RLE', 'is_empty_rle', 'rle_decode', 'rle_encode', 'rle_decode_union']

#: The encoding of an empty mask.
EMPTY_RLE = '-1'


def is_empty_rle(rle: Optional[str]) -> bool:
    """Whether ``rle`` encodes an empty mask (``'-1'``, ``' -1'``, blank or None)."""
    if rle is None:
        return True
    text = str(rle).strip()
    return text in ('', EMPTY_RLE) or text.lower() == 'nan'


def _parse(rle: str) -> np.ndarray:
    try:
        values = np.array([int(v) for v in str(rle).split()], dtype=np.int64)
    except ValueError:
        raise ValueError(f'RLE "{str(rle)[:60]}" holds a value that is not an integer.') \
            from None
    if values.size % 2:
        raise ValueError(f'RLE "{str(rle)[:60]}" has an odd number of values ({values.size}); '
                         'it must be pairs of (gap, length).')
    if (values < 0).any():
        raise ValueError(f'RLE "{str(rle)[:60]}" has a negative gap or length.')
    return values


def _runs(rle: str, height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    """``(starts, ends)`` (exclusive) of the runs of one non-empty RLE, flat column-major.

    Raises:
        ValueError: malformed text, or runs past the end of the ``height x width`` image.
    """
    total = height * width
    values = _parse(rle)
    gaps, lengths = values[0::2], values[1::2]
    ends = np.cumsum(gaps + lengths)  # exclusive end of each run
    starts = ends - lengths
    if ends.size and ends[-1] > total:
        raise ValueError(f'RLE runs end at pixel {int(ends[-1])}, past the {height}x{width} '
                         f'image ({total} pixels): is the image size right?')
    return starts, ends


def _paint(starts: np.ndarray, ends: np.ndarray, height: int, width: int) -> np.ndarray:
    """The bool ``(H, W)`` mask covered by the runs (they may overlap: union)."""
    # +1 where a run starts, -1 after it ends; the running sum counts the covering runs
    edges = np.zeros(height * width + 1, dtype=np.int32)
    np.add.at(edges, starts, 1)
    np.add.at(edges, ends, -1)
    flat = np.cumsum(edges[:-1]) > 0
    return flat.reshape((height, width), order='F')


def rle_decode(rle: Optional[str], shape: Tuple[int, int]) -> np.ndarray:
    """Decode one SIIM-ACR RLE string into a uint8 mask (0/1) of ``shape = (H, W)``.

    Raises:
        ValueError: malformed text, or runs that go past the end of the image (the usual
            sign of a wrong image size).
    """
    height, width = int(shape[0]), int(shape[1])
    if is_empty_rle(rle):
        return np.zeros((height, width), dtype=np.uint8)
    starts, ends = _runs(rle, height, width)
    return _paint(starts, ends, height, width).astype(np.uint8)


def rle_decode_union(rles: Iterable[Optional[str]], shape: Tuple[int, int]) -> np.ndarray:
    """The union (uint8 0/1) of several RLE masks of one image (its rows in the CSV).

    All the runs go into one edge array and one running sum (a pixel is foreground when
    any run covers it), not one full-image decode per region.
    """
    height, width = int(shape[0]), int(shape[1])
    runs = [_runs(rle, height, width) for rle in rles if not is_empty_rle(rle)]
    if not runs:
        return np.zeros((height, width), dtype=np.uint8)
    starts = np.concatenate([s for s, _ in runs])
    ends = np.concatenate([e for _, e in runs])
    return _paint(starts, ends, height, width).astype(np.uint8, order='C')


def rle_encode(mask: np.ndarray) -> str:
    """Encode a 2-D mask (non-zero = foreground) as a SIIM-ACR RLE string; ``'-1'`` if empty."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'rle_encode expects a 2-D mask, got shape {mask.shape}.')
    flat = np.concatenate([[False], mask.ravel(order='F') != 0, [False]])
    changes = np.flatnonzero(flat[1:] != flat[:-1])
    if changes.size == 0:
        return EMPTY_RLE
    starts, ends = changes[0::2], changes[1::2]
    previous_ends = np.concatenate([[0], ends[:-1]])
    pairs = np.stack([starts - previous_ends, ends - starts], axis=1).ravel()
    return ' '.join(str(int(v)) for v in pairs)
