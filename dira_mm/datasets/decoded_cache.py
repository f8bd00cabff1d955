"""A disk cache of decoded images: decode a PNG/DICOM once, read raw pixels afterwards.

Decoding a 1024² chest-X-ray PNG (zlib inflate) costs ~10 ms on one core, about 80 % of
the whole two-view DiRA pipeline; reading the same pixels from an uncompressed ``.npy``
costs a fraction of a millisecond. Each entry is keyed by the file's absolute path, size
and modification time and by the reader options, so an edited image or another window is
decoded again. Writes are atomic (temporary file + ``os.replace``), so concurrent
DataLoader workers and processes can share one cache folder. A damaged entry (0 bytes,
truncated, a garbled header, or not a 2-D uint8 array as every decoded image is) is
removed with a warning naming it and the image decoded again; reading it never crashes.
The pixels are exactly the decoder's, so augmentation outputs are identical with or without
the cache.

Disk use is the raw image size (1 MB for a 1024² 8-bit image: ~112 GB for all of
ChestX-ray14), so point ``cache_dir`` at a fast local disk with room to spare.
"""
import hashlib
import math
import os
import os.path as osp
import tempfile
from typing import Callable, Optional

import numpy as np
from mmengine.logging import MMLogger

from .readers import read_npy_header

__all__ = ['DecodedImageCache']


class DecodedImageCache:
    """Decoded 2-D images stored as ``.npy`` under ``root`` (hand-written: no library does
    this for a per-sample DataLoader pipeline without an extra service).

    Args:
        root: cache folder (created if missing).
    """

    def __init__(self, root: str) -> None:
        self.root = osp.abspath(osp.expanduser(root))
        os.makedirs(self.root, exist_ok=True)

    def key(self, path: str, options: str) -> str:
        """Cache key of ``path`` as it is on disk now, decoded with ``options``."""
        st = os.stat(path)
        ident = f'{osp.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{options}'
        return hashlib.sha1(ident.encode('utf-8')).hexdigest()

    def entry(self, key: str) -> str:
        """File that holds the entry ``key`` (two-level fan-out keeps folders small)."""
        return osp.join(self.root, key[:2], key + '.npy')

    def get(self,
            path: str,
            options: str,
            decode: Callable[[str], np.ndarray],
            cache_if: Optional[Callable[[np.ndarray], bool]] = None) -> np.ndarray:
        """The decoded image of ``path``: from the cache, or decoded and stored.

        A missing source file is left to ``decode`` (so its error names the file).
        ``cache_if(img)`` False keeps a freshly decoded image out of the cache (e.g. one whose
        NaN pixels were filled, so that it is reported at every decode).
        """
        try:
            key = self.key(path, options)
        except OSError:
            return decode(path)
        entry = self.entry(key)
        if osp.lexists(entry):
            img = self._load(entry, path)
            if img is not None:
                return img
        img = decode(path)
        if cache_if is None or cache_if(img):
            self._store(entry, img)
        return img

    @staticmethod
    def _load(entry: str, path: str) -> Optional[np.ndarray]:
        """The image of ``entry``, or None after removing a damaged entry (with a warning)."""
        try:
            with open(entry, 'rb') as f:
                shape, fortran, dtype, offset = read_npy_header(f)
                size = os.fstat(f.fileno()).st_size
                expected = offset + math.prod(shape) * dtype.itemsize
                if len(shape) != 2 or dtype != np.uint8:
                    problem = f'it holds a {shape} {dtype} array, not a 2-D uint8 image'
                elif size != expected:
                    problem = f'it has {size} bytes, its header says {expected}'
                else:  # the file is at the data: read it without a second header parse
                    img = np.fromfile(f, dtype=np.uint8, count=math.prod(shape))
                    return img.reshape(shape, order='F' if fortran else 'C')
        except FileNotFoundError:  # removed by another worker meanwhile
            return None
        except (OSError, ValueError, EOFError) as e:
            problem = f'{type(e).__name__}: {e}' if str(e) else type(e).__name__
        MMLogger.get_current_instance().warning(
            f'DecodedImageCache: the entry "{entry}" of "{path}" is damaged ({problem}); it '
            'was removed and the image is decoded again.')
        try:
            os.remove(entry)  # e.g. a disk that filled up mid-write, or an edited file
        except OSError:
            pass
        return None

    @staticmethod
    def _store(entry: str, img: np.ndarray) -> None:
        # a full or read-only disk must not stop training: the cache is an optimisation
        tmp = None
        try:
            folder = osp.dirname(entry)
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
            with os.fdopen(fd, 'wb') as f:
                np.save(f, np.ascontiguousarray(img), allow_pickle=False)
            os.replace(tmp, entry)
        except OSError:
            if tmp is not None and osp.exists(tmp):
                try:
                    os.remove(tmp)
                except OSError:
                    pass
