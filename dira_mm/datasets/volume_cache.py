"""A disk cache of decoded volumes: read, reorient, resample and window once, memory-map after.

Decoding a chest CT (a gzipped NIfTI, a DICOM series of hundreds of files, a LUNA16 ``.mhd``),
resampling it and windowing it costs seconds; a cube of 64x64x32 is a few thousandths of the
volume. Each entry is the float32 volume exactly as :class:`~dira_mm.datasets.transforms.
LoadVolume` puts it into ``results`` (after resampling and, when set, the HU window), stored as
an uncompressed ``.npy`` and **memory-mapped** on a hit (copy-on-write: a transform that writes
into the array never changes the file), so cropping a cube reads only the pages it covers. The
meta (affine, spacing, orientation, ...) is a JSON file next to it.

Keys (the 2-D cache's :meth:`DecodedImageCache.key`): the source's absolute path, size and
modification time (for a MetaImage header also those of its data file) plus the decoding options
(window, spacing, reader options, ``max_voxels``: a hit must not bypass the voxel limit that a
fresh read enforces). A DICOM series
folder is keyed by the names, sizes and modification times of its files, so a slice added,
removed or rewritten is decoded again. Writes are atomic (the 2-D cache's ``_store``: temporary
file + ``os.replace``; the JSON is written before the array, so an array entry always has its
meta). A damaged entry (a truncated or garbled array, a 0-byte file, a missing or unreadable
JSON, an array that is not float32 3-D, a shape that disagrees with the meta) is removed with a
warning naming it and the volume decoded again.

Disk use: 4 bytes per voxel (a 512x512x300 CT: 315 MB; LUNA16's 888 scans about 230 GB, the
five training subsets about half), so point ``cache_dir`` at a large local disk.
"""
import hashlib
import json
import math
import os
import os.path as osp
import tempfile
from typing import Any, Dict, Optional, Tuple

import numpy as np
from mmengine.logging import MMLogger

from .decoded_cache import DecodedImageCache
from .readers import ImageReadError, read_npy_header
from .volume_readers import read_mhd_header

__all__ = ['DecodedVolumeCache']


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


class DecodedVolumeCache(DecodedImageCache):
    """Decoded float32 ``(X, Y, Z)`` volumes stored as memory-mapped ``.npy`` under ``root``.

    Reuses the 2-D :class:`DecodedImageCache` for the key, the entry path and the atomic
    write; adds folder keys (DICOM series), the meta sidecar and the memory-mapped read.

    Args:
        root: cache folder (created if missing).
    """

    def key(self, path: str, options: str) -> str:
        """Cache key of ``path`` (a file, or a DICOM series folder) as it is now.

        A MetaImage header (``.mhd``/``.mha``) naming a separate data file (``.raw``) is keyed
        by that file's path, size and modification time too, so re-exported voxels under an
        unchanged header are decoded again. Raises ``OSError`` when the header or its data
        file cannot be read (the caller then decodes, which reports the problem).
        """
        if not osp.isdir(path):
            if path.lower().endswith(('.mhd', '.mha')):
                try:
                    data_file = read_mhd_header(path)[0]['data_file']
                except ImageReadError as e:
                    raise OSError(str(e)) from e
                if data_file != 'LOCAL':
                    st = os.stat(data_file)
                    options = (f'{options}|data:{osp.abspath(data_file)}:{st.st_size}:'
                               f'{st.st_mtime_ns}')
            return super().key(path, options)
        listing = []
        for name in sorted(os.listdir(path)):
            st = os.stat(osp.join(path, name))
            listing.append(f'{name}:{st.st_size}:{st.st_mtime_ns}')
        ident = f'{osp.abspath(path)}|dir|{"/".join(listing)}|{options}'
        return hashlib.sha1(ident.encode('utf-8')).hexdigest()

    @staticmethod
    def meta_entry(entry: str) -> str:
        """The JSON sidecar of an array entry."""
        return entry[:-len('.npy')] + '.json'

    def load(self, path: str, options: str) -> Optional[Tuple[np.ndarray, Dict[str, Any]]]:
        """``(volume, meta)`` of ``path`` decoded with ``options``, or None (not cached, or
        damaged: then removed with a warning). The volume is a copy-on-write memory map."""
        try:
            entry = self.entry(self.key(path, options))
        except OSError:
            return None
        if not osp.lexists(entry):
            return None
        problem = None
        try:
            with open(entry, 'rb') as f:
                shape, fortran, dtype, offset = read_npy_header(f)
                size = os.fstat(f.fileno()).st_size
            expected = offset + math.prod(shape) * dtype.itemsize
            if len(shape) != 3 or dtype != np.float32 or fortran:
                problem = f'it holds a {shape} {dtype} array, not a float32 (X, Y, Z) volume'
            elif size != expected:
                problem = f'it has {size} bytes, its header says {expected}'
            else:
                with open(self.meta_entry(entry), encoding='utf-8') as f:
                    meta = json.load(f)
                if not isinstance(meta, dict) or list(meta.get('shape', ())) != list(shape):
                    problem = f'its meta file does not describe a {shape} volume'
                else:
                    vol = np.memmap(entry, dtype=dtype, mode='c', offset=offset, shape=shape)
                    meta.pop('shape')
                    meta['affine'] = np.asarray(meta['affine'], dtype=np.float64)
                    for k in ('spacing', 'source_spacing', 'orientation',
                              'source_orientation'):
                        if k in meta:
                            meta[k] = tuple(meta[k])
                    return vol, meta
        except FileNotFoundError as e:
            if e.filename == entry:  # removed by another worker meanwhile
                return None
            problem = 'its meta file is missing'
        except (OSError, ValueError, EOFError, KeyError, TypeError) as e:
            problem = f'{type(e).__name__}: {e}' if str(e) else type(e).__name__
        MMLogger.get_current_instance().warning(
            f'DecodedVolumeCache: the entry "{entry}" of "{path}" is damaged ({problem}); it '
            'was removed and the volume is decoded again.')
        for f in (entry, self.meta_entry(entry)):
            try:
                os.remove(f)
            except OSError:
                pass
        return None

    def store(self, path: str, options: str, volume: np.ndarray,
              meta: Dict[str, Any]) -> None:
        """Store ``volume`` (float32 ``(X, Y, Z)``) and its ``meta``; failures (a full or
        read-only disk) are ignored: the cache is an optimisation."""
        try:
            entry = self.entry(self.key(path, options))
            folder = osp.dirname(entry)
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
            with os.fdopen(fd, 'w', encoding='utf-8') as f:
                json.dump(_jsonable(dict(meta, shape=list(volume.shape))), f)
            os.replace(tmp, self.meta_entry(entry))
        except (OSError, TypeError, ValueError):
            return
        self._store(entry, np.asarray(volume, dtype=np.float32))
