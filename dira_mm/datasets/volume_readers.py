"""Readers that turn a 3-D medical volume into a float32 array in RAS orientation.

Supported: NIfTI (``.nii``, ``.nii.gz``, through nibabel), a DICOM series folder (through
pydicom) and MetaImage (``.mhd`` + ``.raw`` or ``.mha``-style ``LOCAL`` data, as LUNA16 ships;
the header is parsed here).

Axis order (one convention for every format): the returned array is channel-less
``(X, Y, Z)`` with its axes in RAS+ order, as nibabel's :func:`nibabel.as_closest_canonical`
and MONAI's ``Orientation("RAS")`` give it: index 0 increases towards the patient's Right,
index 1 towards Anterior, index 2 towards Superior (for an oblique acquisition: the closest
such axes, the affine keeps the obliqueness). For a CT this is ``(x, y, z)`` with z the slice
axis, the order Models Genesis uses (it transposes SimpleITK's ``(z, y, x)`` by ``(2, 1, 0)``).
DICOM and MetaImage, whose physical space is LPS, are converted to RAS (x and y negated) and
then reoriented exactly as a NIfTI is.

``meta`` (a dict):

- ``affine``: 4x4 float64 voxel-to-world matrix in RAS+ millimetres for the returned array.
- ``spacing``: ``(sx, sy, sz)`` in mm along the returned array's axes (column norms of the
  affine).
- ``orientation``: the axis codes of the returned array (``('R', 'A', 'S')``).
- ``source_orientation``: the axis codes of the data as stored (e.g. ``('L', 'A', 'S')``).
- ``format``: ``'nifti'``, ``'dicom'`` or ``'metaimage'``; ``path``: the file or folder.
- DICOM also: ``num_slices``, ``skipped_files`` (files in the folder that are not DICOM
  images), ``series_uid``.

Values: NIfTI ``scl_slope``/``scl_inter`` and DICOM ``RescaleSlope``/``RescaleIntercept`` are
applied (CT comes out in Hounsfield units); no window is applied (see :func:`hu_window`).
Resampling to a target spacing is a separate step, :func:`resample_volume` (MONAI's
``Spacing``), which :class:`~dira_mm.datasets.transforms.LoadVolume` applies with its
``spacing`` option.

Bad input (the conventions of :mod:`dira_mm.datasets.readers`): every unreadable volume raises
:class:`~dira_mm.datasets.readers.ImageReadError` naming the file or folder, the reason and what
to do, so datasets with ``on_error='skip'`` skip and count it. NaN/Inf voxels are refused with
``nonfinite='skip'`` (default) or replaced by the volume's finite minimum with
``nonfinite='fill'`` (a :class:`~dira_mm.datasets.readers.NonFinitePixelsWarning`).
``max_voxels`` (default :data:`DEFAULT_MAX_VOXELS` = 500 million, 2 GB as float32; a large
chest CT is 512x512x1000 = 262 M voxels) is checked from the header(s) before any voxel is read;
None removes it.
"""
import math
import os
import warnings
import zlib
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .readers import ImageReadError, NonFinitePixelsWarning, check_read_options

__all__ = [
    'read_volume', 'read_nifti', 'read_dicom_series', 'read_metaimage', 'read_mhd_header',
    'hu_window', 'DEFAULT_MAX_VOXELS', 'check_volume_options', 'resample_volume',
    'check_spacing'
]

#: Default voxel limit (X * Y * Z) of the volume readers; see the module docstring.
DEFAULT_MAX_VOXELS = 500_000_000
_NIFTI_EXT = ('.nii', '.nii.gz')
_MHD_EXT = ('.mhd', '.mha')
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_VOLUME_HINT = ('Check that the path is right and that the volume is complete; re-export it or '
                'remove it from the list.')


def _err(path, reason: str, hint: Optional[str] = None) -> ImageReadError:
    return ImageReadError(os.fspath(path), reason, hint or _VOLUME_HINT)


def check_volume_options(nonfinite: str, max_voxels: Optional[int]) -> None:
    """:func:`~dira_mm.datasets.readers.check_read_options` with the volume limit's name."""
    check_read_options(nonfinite, max_voxels, limit_key='max_voxels')


def _check_voxels(path, shape: Sequence[int], max_voxels: Optional[int], fmt: str) -> None:
    """Refuse a volume of more than ``max_voxels`` voxels (before reading it)."""
    n = math.prod(int(s) for s in shape)
    if max_voxels is None or n <= max_voxels:
        return
    raise _err(
        path, f'the {fmt} volume is {"x".join(str(int(s)) for s in shape)} = {n} voxels, more '
        f'than max_voxels={max_voxels}; it was not read',
        'If volumes this large are expected, raise `max_voxels` (None: no limit); otherwise '
        'downsample or remove the volume.')


def _check_finite(path, vol: np.ndarray, nonfinite: str) -> np.ndarray:
    finite = np.isfinite(vol)
    if finite.all():
        return vol
    bad = ~finite
    num_bad = int(np.count_nonzero(bad))
    first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))
    what = (f'{num_bad} of {vol.size} voxel values are not finite (NaN or Inf; the first at '
            f'(x, y, z) {first})')
    if nonfinite != 'fill':
        raise _err(path, f'{what} (nonfinite="skip")',
                   'Fix or re-export the volume, or pass `nonfinite="fill"` to replace such '
                   'values by the volume\'s finite minimum.')
    if not finite.any():
        raise _err(path, f'{what}: no finite value is left to fill them with',
                   'Fix or re-export the volume.')
    vol = vol.copy()
    vol[bad] = vol[finite].min()
    warnings.warn(f'"{os.fspath(path)}": {num_bad} non-finite (NaN/Inf) voxel values were '
                  'replaced by the finite minimum (nonfinite="fill").', NonFinitePixelsWarning,
                  stacklevel=3)
    return vol


def _to_ras(path, data: np.ndarray, affine_ras: np.ndarray, fmt: str, nonfinite: str,
            extra: Optional[Dict[str, Any]] = None,
            check_finite: bool = True) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Reorient ``data`` (with its RAS+ affine) to the closest canonical RAS axes.

    The reorientation is a view; the conversion to a C-contiguous, writable float32 array is
    the one copy (none when ``data`` already is one). ``check_finite=False`` (integer
    sources) skips the NaN/Inf test, which integers cannot fail.
    """
    import nibabel as nib
    from nibabel.orientations import (apply_orientation, aff2axcodes, inv_ornt_aff,
                                      io_orientation)
    source = aff2axcodes(affine_ras)
    ornt = io_orientation(affine_ras)
    affine = affine_ras @ inv_ornt_aff(ornt, data.shape)
    data = apply_orientation(data, ornt)
    vol = np.ascontiguousarray(data, dtype=np.float32)
    if not vol.flags.writeable:  # a view of a read-only buffer (e.g. np.frombuffer)
        vol = vol.copy()
    if check_finite:
        vol = _check_finite(path, vol, nonfinite)
    meta = dict(
        affine=affine,
        spacing=tuple(float(s) for s in np.sqrt((affine[:3, :3]**2).sum(axis=0))),
        orientation=tuple(nib.aff2axcodes(affine)),
        source_orientation=tuple(source),
        format=fmt,
        path=os.fspath(path))
    meta.update(extra or {})
    return vol, meta


# ----------------------------------------------------------------------------- NIfTI


def read_nifti(path, *, nonfinite: str = 'skip',
               max_voxels: Optional[int] = DEFAULT_MAX_VOXELS):
    """Read a NIfTI ``.nii``/``.nii.gz`` volume; see :func:`read_volume`."""
    check_volume_options(nonfinite, max_voxels)
    import nibabel as nib
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise _err(path, 'the file does not exist' if not os.path.exists(path) else
                   'the path is not a file', 'Check the path and the file names in the list.')
    try:
        img = nib.load(path)
    except Exception as e:  # nibabel raises many types for broken files
        raise _err(path, f'not a readable NIfTI file ({type(e).__name__}: {e})') from None
    shape = tuple(int(s) for s in img.shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        raise _err(path, f'the NIfTI image has shape {tuple(img.shape)}, not a single 3-D volume',
                   'Split 4-D series into 3-D volumes (e.g. nibabel.four_to_three).')
    _check_voxels(path, shape, max_voxels, 'NIfTI')
    try:
        data = np.asarray(img.get_fdata(dtype=np.float32)).reshape(shape)
    except Exception as e:  # truncated or corrupt data block
        raise _err(path, f'the NIfTI voxel data cannot be read ({type(e).__name__}: {e})') \
            from None
    # integers scaled by finite scl_slope/scl_inter cannot be NaN/Inf
    scaling = (getattr(img.dataobj, 'slope', 1.0), getattr(img.dataobj, 'inter', 0.0))
    integral = np.issubdtype(img.get_data_dtype(), np.integer) and \
        bool(np.all(np.isfinite(np.asarray(scaling, dtype=np.float64))))
    return _to_ras(path, data, np.asarray(img.affine, dtype=np.float64), 'nifti', nonfinite,
                   check_finite=not integral)


# ----------------------------------------------------------------------------- DICOM


def _floats(ds, key: str, n: int, path) -> np.ndarray:
    value = ds.get(key)
    try:
        out = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        out = None
    if out is None or out.shape != (n, ):
        raise _err(path, f'the DICOM attribute {key} is missing or malformed ({value!r})',
                   'Only series with ImagePositionPatient, ImageOrientationPatient and '
                   'PixelSpacing can be stacked into a volume.')
    return out


#: Values larger than this are deferred by pydicom (read on access): the pixel data.
_DICOM_DEFER = '64 KB'


def _finite_rescale(headers) -> bool:
    """Whether every slice's RescaleSlope/RescaleIntercept is finite (or absent)."""
    for _, ds in headers:
        for key in ('RescaleSlope', 'RescaleIntercept'):
            try:
                if key in ds and not math.isfinite(float(ds[key].value)):
                    return False
            except (TypeError, ValueError):
                return False
    return True


def read_dicom_series(folder, *, nonfinite: str = 'skip',
                      max_voxels: Optional[int] = DEFAULT_MAX_VOXELS,
                      spacing_tolerance: float = 0.1):
    """Read a folder holding one DICOM series as a volume; see :func:`read_volume`.

    The slices are sorted by ``ImagePositionPatient`` projected on the slice normal
    (``row cosine x column cosine``), not by file name or ``InstanceNumber``. Files that are not
    DICOM images (no pixel data, unreadable) are skipped and counted in ``meta['skipped_files']``.

    Raises:
        ImageReadError: naming the folder, for: no DICOM image, several series (different
            ``SeriesInstanceUID``), slices of different sizes, orientations or pixel spacings,
            two slices at the same position, a gap between neighbouring slices that differs
            from the median gap by more than ``spacing_tolerance`` (relative; missing slices),
            multi-frame files, and undecodable pixel data.
    """
    check_volume_options(nonfinite, max_voxels)
    import pydicom
    from pydicom.pixels import apply_modality_lut
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise _err(folder, 'the DICOM series folder does not exist' if not os.path.exists(folder)
                   else 'the path is not a folder (a DICOM series is read from a folder)',
                   'Pass the folder that holds the slices of one series.')
    headers, skipped = [], 0
    for name in sorted(os.listdir(folder)):
        fpath = os.path.join(folder, name)
        if not os.path.isfile(fpath):
            continue
        try:
            # parsed once: the pixel data (and any other large value) is deferred, read from
            # the file only when the slice is decoded, after the checks below
            ds = pydicom.dcmread(fpath, force=True, defer_size=_DICOM_DEFER)
        except Exception:
            skipped += 1
            continue
        if 'PixelData' not in ds and 'FloatPixelData' not in ds \
                and 'DoubleFloatPixelData' not in ds and 'Rows' not in ds:
            skipped += 1  # not an image (report, DICOMDIR, text file read with force=True)
            continue
        headers.append((fpath, ds))
    if not headers:
        raise _err(folder, f'the folder holds no DICOM image ({skipped} other files)',
                   'Pass the folder that holds the slices of one series.')
    uids: Dict[str, int] = {}
    for _, ds in headers:
        uid = str(ds.get('SeriesInstanceUID', '?'))
        uids[uid] = uids.get(uid, 0) + 1
    if len(uids) > 1:
        listing = ', '.join(f'{u} ({n} files)' for u, n in uids.items())
        raise _err(folder, f'the folder mixes {len(uids)} DICOM series: {listing}',
                   'Put each series (SeriesInstanceUID) in its own folder.')
    first_path, first = headers[0]
    iop0 = _floats(first, 'ImageOrientationPatient', 6, first_path)
    ps0 = _floats(first, 'PixelSpacing', 2, first_path)
    size0 = (int(first.get('Rows', 0)), int(first.get('Columns', 0)))
    normal = np.cross(iop0[:3], iop0[3:])
    positions = []
    for fpath, ds in headers:
        frames = ds.get('NumberOfFrames', 1)
        if int(frames or 1) > 1:
            raise _err(folder, f'"{os.path.basename(fpath)}" is a multi-frame DICOM '
                       f'({int(frames)} frames); only series of single-frame slices are read',
                       'Convert the file to a NIfTI volume (e.g. with dcm2niix).')
        size = (int(ds.get('Rows', 0)), int(ds.get('Columns', 0)))
        if size != size0:
            raise _err(folder, f'mixed slice sizes: "{os.path.basename(first_path)}" is '
                       f'{size0[0]}x{size0[1]} but "{os.path.basename(fpath)}" is '
                       f'{size[0]}x{size[1]}', 'Put each series in its own folder.')
        iop = _floats(ds, 'ImageOrientationPatient', 6, fpath)
        if not np.allclose(iop, iop0, atol=1e-4):
            raise _err(folder, f'mixed slice orientations: "{os.path.basename(first_path)}" has '
                       f'ImageOrientationPatient {iop0.tolist()} but '
                       f'"{os.path.basename(fpath)}" has {iop.tolist()}',
                       'Put each series in its own folder.')
        ps = _floats(ds, 'PixelSpacing', 2, fpath)
        if not np.allclose(ps, ps0, rtol=1e-4, atol=1e-6):
            raise _err(folder, f'mixed pixel spacings: {ps0.tolist()} and {ps.tolist()} '
                       f'("{os.path.basename(fpath)}")', 'Put each series in its own folder.')
        positions.append(float(_floats(ds, 'ImagePositionPatient', 3, fpath) @ normal))
    _check_voxels(folder, (size0[1], size0[0], len(headers)), max_voxels, 'DICOM series')
    order = np.argsort(positions, kind='stable')
    headers = [headers[i] for i in order]
    pos = np.asarray(positions, dtype=np.float64)[order]
    gaps = np.diff(pos)
    if len(gaps):
        dup = np.flatnonzero(gaps < 1e-3)
        if len(dup):
            i = int(dup[0])
            raise _err(folder, f'{len(dup)} duplicate slice position(s): '
                       f'"{os.path.basename(headers[i][0])}" and '
                       f'"{os.path.basename(headers[i + 1][0])}" are both at {pos[i]:.3f} mm '
                       'along the slice normal', 'Remove the duplicates or split the series.')
        step = float(np.median(gaps))
        irregular = np.flatnonzero(np.abs(gaps - step) > spacing_tolerance * step)
        if len(irregular):
            i = int(irregular[0])
            raise _err(
                folder, f'irregular slice spacing (missing slices?): the median gap is '
                f'{step:.4g} mm but the gap between {pos[i]:.4g} and {pos[i + 1]:.4g} mm '
                f'("{os.path.basename(headers[i][0])}", "{os.path.basename(headers[i + 1][0])}") '
                f'is {gaps[i]:.4g} mm ({len(irregular)} irregular gap(s), tolerance '
                f'{spacing_tolerance:g})', 'Complete the series (copy the missing slices again) '
                'or remove it.')
    else:
        step = float(first.get('SliceThickness', 1.0) or 1.0)
    data = np.empty((size0[1], size0[0], len(headers)), dtype=np.float32)
    origin = _floats(headers[0][1], 'ImagePositionPatient', 3, headers[0][0])
    integral = _finite_rescale(headers)
    for k, (fpath, ds) in enumerate(headers):
        try:
            raw = ds.pixel_array
        except Exception as e:
            raise _err(folder, f'the pixel data of "{os.path.basename(fpath)}" cannot be decoded '
                       f'({type(e).__name__}: {e})',
                       'The file may be truncated; compressed transfer syntaxes need a pydicom '
                       'plugin (e.g. `pip install pylibjpeg pylibjpeg-libjpeg`).') from None
        if raw.shape != size0:
            raise _err(folder, f'"{os.path.basename(fpath)}" decodes to shape {raw.shape}, not '
                       f'the {size0} of its header')
        integral = integral and raw.dtype.kind in 'iub'
        # (rows, columns) -> (column index i, row index j): i runs along the row cosine
        data[:, :, k] = np.asarray(apply_modality_lut(raw, ds), dtype=np.float64).T
        headers[k] = (fpath, None)  # the slice is in `data`: free its bytes and array
    affine_lps = np.eye(4)
    affine_lps[:3, 0] = iop0[:3] * ps0[1]  # column spacing along the row direction
    affine_lps[:3, 1] = iop0[3:] * ps0[0]  # row spacing along the column direction
    affine_lps[:3, 2] = normal * step
    affine_lps[:3, 3] = origin
    return _to_ras(folder, data, _LPS_TO_RAS @ affine_lps, 'dicom', nonfinite,
                   dict(num_slices=len(headers), skipped_files=skipped,
                        series_uid=next(iter(uids))),
                   check_finite=not integral)


# ----------------------------------------------------------------------------- MetaImage

_MET_TYPES = {
    'MET_CHAR': 'i1', 'MET_UCHAR': 'u1', 'MET_SHORT': 'i2', 'MET_USHORT': 'u2',
    'MET_INT': 'i4', 'MET_UINT': 'u4', 'MET_LONG': 'i4', 'MET_ULONG': 'u4',
    'MET_LONG_LONG': 'i8', 'MET_ULONG_LONG': 'u8', 'MET_FLOAT': 'f4', 'MET_DOUBLE': 'f8'
}
_MHD_HINT = 'Fix the header (a text file of "Key = Value" lines) or re-export the volume.'


def _mhd_bool(path, key: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ('true', '1'):
        return True
    if v in ('false', '0'):
        return False
    raise _err(path, f'the MetaImage key {key} must be True or False, got {value!r}', _MHD_HINT)


def _mhd_numbers(path, key: str, value: str, n: int, kind=float) -> List:
    try:
        out = [kind(v) for v in value.split()]
    except ValueError:
        out = []
    if len(out) != n:
        raise _err(path, f'the MetaImage key {key} must hold {n} numbers, got {value!r}',
                   _MHD_HINT)
    return out


def read_mhd_header(path) -> Tuple[Dict[str, Any], int]:
    """Parse a MetaImage header (``.mhd``, or the header of a ``.mha``).

    Only the header lines are read (not the voxel data of a ``.mha``).

    Returns:
        tuple[dict, int]: The parsed header (``shape`` (x, y, z), ``spacing``, ``offset``,
        ``direction`` (3x3, column i = direction of axis i, LPS), ``dtype``, ``compressed``,
        ``data_file`` (absolute path, or ``'LOCAL'``), ``header_size``) and the byte offset
        just after the ``ElementDataFile`` line (where ``LOCAL`` data starts).
    """
    path = os.fspath(path)
    with _open_mhd(path) as f:
        return _parse_mhd_header(f, path)


def _open_mhd(path: str):
    try:
        return open(path, 'rb')
    except FileNotFoundError:
        raise _err(path, 'the file does not exist', 'Check the path.') from None
    except OSError as e:
        raise _err(path, f'the file cannot be opened ({e.strerror or e})') from None


#: Longest MetaImage header line read (a binary ``.mha`` without a header stops here).
_MHD_MAX_LINE = 1 << 16


def _parse_mhd_header(f, path: str) -> Tuple[Dict[str, Any], int]:
    """:func:`read_mhd_header` on an open binary file, left just after ``ElementDataFile``."""
    fields: Dict[str, str] = {}
    data_start = None
    while True:
        line = f.readline(_MHD_MAX_LINE)
        if not line:
            break
        try:
            text = line.decode('ascii').strip()
        except UnicodeDecodeError:
            raise _err(path, 'not a MetaImage header (non-text bytes before ElementDataFile)',
                       _MHD_HINT) from None
        if not text:
            continue
        if '=' not in text:
            raise _err(path, f'malformed MetaImage header line {text[:60]!r} (no "=")', _MHD_HINT)
        key, value = (s.strip() for s in text.split('=', 1))
        fields[key] = value
        if key == 'ElementDataFile':  # always the last key; LOCAL data follows
            data_start = f.tell()
            break
    if data_start is None:
        raise _err(path, 'the MetaImage header has no ElementDataFile key', _MHD_HINT)
    if fields.get('ObjectType', 'Image').lower() != 'image':
        raise _err(path, f'the MetaImage key ObjectType is {fields["ObjectType"]!r}, not Image',
                   _MHD_HINT)
    for key in ('NDims', 'DimSize', 'ElementType'):
        if key not in fields:
            raise _err(path, f'the MetaImage header has no {key} key', _MHD_HINT)
    try:
        ndims = int(fields['NDims'])
    except ValueError:
        ndims = -1
    if ndims != 3:
        raise _err(path, f'the MetaImage key NDims is {fields["NDims"]!r}; only 3-D volumes are '
                   'read', 'Use a 3-D volume.')
    shape = _mhd_numbers(path, 'DimSize', fields['DimSize'], 3, int)
    if min(shape) < 1:
        raise _err(path, f'the MetaImage key DimSize has a non-positive size {shape}', _MHD_HINT)
    spacing_key = 'ElementSpacing' if 'ElementSpacing' in fields else 'ElementSize'
    spacing = _mhd_numbers(path, spacing_key, fields.get(spacing_key, '1 1 1'), 3)
    if min(spacing) <= 0:
        raise _err(path, f'the MetaImage key {spacing_key} must be positive, got {spacing}',
                   _MHD_HINT)
    offset_key = next((k for k in ('Offset', 'Origin', 'Position') if k in fields), 'Offset')
    offset = _mhd_numbers(path, offset_key, fields.get(offset_key, '0 0 0'), 3)
    matrix_key = 'TransformMatrix' if 'TransformMatrix' in fields else 'Rotation'
    matrix = _mhd_numbers(path, matrix_key, fields.get(matrix_key, '1 0 0 0 1 0 0 0 1'), 9)
    # MetaIO stores the direction of axis i as matrix[3i:3i+3] (ITK's MetaImageIO).
    direction = np.asarray(matrix, dtype=np.float64).reshape(3, 3).T
    if abs(np.linalg.det(direction)) < 1e-6:
        raise _err(path, f'the MetaImage key {matrix_key} is singular ({matrix})', _MHD_HINT)
    etype = fields['ElementType'].upper()
    if etype not in _MET_TYPES:
        raise _err(path, f'the MetaImage key ElementType is {fields["ElementType"]!r}; supported '
                   f'are {", ".join(_MET_TYPES)}', _MHD_HINT)
    channels = fields.get('ElementNumberOfChannels', '1')
    if channels.strip() != '1':
        raise _err(path, f'the MetaImage key ElementNumberOfChannels is {channels!r}; only '
                   'single-channel volumes are read', 'Use a gray-value volume.')
    msb = False
    for key in ('ElementByteOrderMSB', 'BinaryDataByteOrderMSB'):
        if key in fields:
            msb = msb or _mhd_bool(path, key, fields[key])
    dtype = np.dtype(('>' if msb else '<') + _MET_TYPES[etype])
    compressed = _mhd_bool(path, 'CompressedData', fields.get('CompressedData', 'False'))
    try:
        header_size = int(fields.get('HeaderSize', '0'))
    except ValueError:
        raise _err(path, f'the MetaImage key HeaderSize must be an integer, got '
                   f'{fields["HeaderSize"]!r}', _MHD_HINT) from None
    data_file = fields['ElementDataFile']
    if data_file.upper() == 'LOCAL':
        data_file = 'LOCAL'
    elif data_file.upper().startswith('LIST') or '%' in data_file:
        raise _err(path, f'the MetaImage key ElementDataFile is {data_file!r}; slice lists and '
                   'patterns are not supported', 'Merge the slices into one .raw file.')
    else:
        data_file = os.path.join(os.path.dirname(os.path.abspath(path)), data_file)
    return dict(shape=tuple(shape), spacing=tuple(spacing), offset=tuple(offset),
                direction=direction, dtype=dtype, compressed=compressed, data_file=data_file,
                header_size=header_size), data_start


def read_metaimage(path, *, nonfinite: str = 'skip',
                   max_voxels: Optional[int] = DEFAULT_MAX_VOXELS):
    """Read a MetaImage volume (``.mhd`` + data file, or ``LOCAL`` data); see
    :func:`read_volume`. ``CompressedData = True`` (zlib) is supported; the physical space is
    LPS, as in ITK."""
    check_volume_options(nonfinite, max_voxels)
    path = os.fspath(path)
    with _open_mhd(path) as f:  # a .mha is opened and read once: header, then its data
        hdr, _ = _parse_mhd_header(f, path)
        shape = hdr['shape']
        _check_voxels(path, shape, max_voxels, 'MetaImage')
        dtype = hdr['dtype']
        nbytes = math.prod(shape) * dtype.itemsize
        data_path = path if hdr['data_file'] == 'LOCAL' else hdr['data_file']
        if hdr['data_file'] == 'LOCAL':
            try:
                blob = f.read()
            except OSError as e:
                raise _err(path, f'the data cannot be read ({e.strerror or e})') from None
    if hdr['data_file'] != 'LOCAL':
        try:
            with open(data_path, 'rb') as f:
                blob = f.read()
        except FileNotFoundError:
            raise _err(path, f'the data file "{data_path}" named by ElementDataFile does not '
                       'exist', 'Keep the .raw file next to its .mhd header, with the name the '
                       'header gives.') from None
        except OSError as e:
            raise _err(path, f'the data file "{data_path}" cannot be opened '
                       f'({e.strerror or e})') from None
    blob = memoryview(blob)  # slices below are views, not copies
    if hdr['compressed']:
        try:
            blob = zlib.decompress(blob[max(hdr['header_size'], 0):])
        except zlib.error as e:
            raise _err(path, f'the compressed voxel data cannot be inflated ({e})') from None
    elif hdr['header_size'] == -1:
        blob = blob[len(blob) - nbytes:] if len(blob) >= nbytes else blob
    else:
        blob = blob[hdr['header_size']:]
    if len(blob) < nbytes:
        raise _err(path, f'the voxel data in "{data_path}" is truncated ({len(blob)} bytes for '
                   f'{"x".join(map(str, shape))} {dtype.name} voxels = {nbytes} bytes)')
    # x runs fastest on disk: C order (z, y, x), transposed to (x, y, z)
    data = np.frombuffer(blob, dtype=dtype, count=math.prod(shape)).reshape(shape[::-1])
    data = data.transpose(2, 1, 0)  # a view: _to_ras makes the one float32 copy
    affine_lps = np.eye(4)
    affine_lps[:3, :3] = hdr['direction'] * np.asarray(hdr['spacing'])[None, :]
    affine_lps[:3, 3] = hdr['offset']
    return _to_ras(path, data, _LPS_TO_RAS @ affine_lps, 'metaimage', nonfinite,
                   check_finite=dtype.kind == 'f')


# ----------------------------------------------------------------------------- entry points


def read_volume(path, *, nonfinite: str = 'skip',
                max_voxels: Optional[int] = DEFAULT_MAX_VOXELS,
                spacing_tolerance: float = 0.1) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Read a 3-D volume as a float32 ``(X, Y, Z)`` array in RAS+ axis order, and its meta.

    Args:
        path (str): A ``.nii``/``.nii.gz`` file, a ``.mhd``/``.mha`` MetaImage header, or a
            folder holding one DICOM series.
        nonfinite (str): NaN/Inf voxels: ``'skip'`` raises ``ImageReadError``; ``'fill'``
            replaces them by the finite minimum (with a warning). Defaults to 'skip'.
        max_voxels (int, optional): Refuse larger volumes, checked from the header(s) before
            any voxel is read. None: no limit. Defaults to :data:`DEFAULT_MAX_VOXELS`.
        spacing_tolerance (float): DICOM only: the relative deviation of a slice gap from the
            median gap above which the series is refused (missing slices). Defaults to 0.1.

    Returns:
        tuple[np.ndarray, dict]: The volume (values in the file's units after its rescale:
        Hounsfield units for CT) and ``meta`` (``affine``, ``spacing``, ``orientation``,
        ``source_orientation``, ``format``, ``path``; see the module docstring).

    Raises:
        ImageReadError: The volume is missing, corrupt, unsupported, too large or has non-finite
            voxels (``nonfinite='skip'``); the message names the file or folder.
    """
    p = os.fspath(path)
    low = p.lower()
    if os.path.isdir(p):
        return read_dicom_series(p, nonfinite=nonfinite, max_voxels=max_voxels,
                                 spacing_tolerance=spacing_tolerance)
    if low.endswith(_NIFTI_EXT):
        return read_nifti(p, nonfinite=nonfinite, max_voxels=max_voxels)
    if low.endswith(_MHD_EXT):
        return read_metaimage(p, nonfinite=nonfinite, max_voxels=max_voxels)
    if not os.path.exists(p):
        raise _err(p, 'the file does not exist', 'Check the path and the names in the list.')
    raise _err(p, 'unknown volume format (expected .nii, .nii.gz, .mhd, .mha or a DICOM series '
               'folder)', 'Convert the volume to NIfTI or pass the folder of a DICOM series.')


def hu_window(volume: np.ndarray, low: float = -1000.0, high: float = 1000.0) -> np.ndarray:
    """Clip values to ``[low, high]`` and scale them linearly to ``[0, 1]`` (float32).

    The Models Genesis / TransVW convention for CT (``[-1000, 1000]`` HU by default):
    ``(clip(x, low, high) - low) / (high - low)``.
    """
    low, high = float(low), float(high)
    if not high > low:
        raise ValueError(f'hu_window needs high > low, got low={low}, high={high}.')
    out = np.clip(np.asarray(volume, dtype=np.float32), low, high)
    out -= np.float32(low)
    out /= np.float32(high - low)
    return out


def check_spacing(spacing) -> Optional[Tuple[Optional[float], ...]]:
    """Validate a target spacing: None, or 3 values in mm, each positive or None (keep)."""
    if spacing is None:
        return None
    if isinstance(spacing, (int, float)):
        spacing = (spacing, ) * 3
    out = tuple(None if s is None else float(s) for s in spacing)
    if len(out) != 3 or any(s is not None and not s > 0 for s in out):
        raise ValueError(f'spacing must be None or 3 positive values in mm (None keeps an '
                         f'axis), got {spacing!r}')
    return out


def resample_volume(volume: np.ndarray, meta: Dict[str, Any], spacing,
                    mode: str = 'bilinear') -> Tuple[np.ndarray, Dict[str, Any]]:
    """Resample an ``(X, Y, Z)`` volume to ``spacing`` (mm per axis) with MONAI's ``Spacing``.

    ``mode='bilinear'`` is trilinear interpolation in 3-D (images); ``'nearest'`` for label
    volumes. An axis whose target is None keeps its spacing. The field of view is MONAI's
    (voxel centres of the first and last voxel kept; ``padding_mode='border'``). The returned
    ``meta`` is a copy with the new ``affine`` and ``spacing`` and ``source_spacing`` (the
    spacing before resampling). A volume already at ``spacing`` (within 1e-6 mm) is returned
    unchanged.

    Args:
        volume (np.ndarray): float32 ``(X, Y, Z)`` in RAS (as :func:`read_volume` gives it).
        meta (dict): Its meta (``affine`` and ``spacing`` are used).
        spacing: Target ``(sx, sy, sz)`` in mm (a number: isotropic).
        mode (str): ``'bilinear'`` (trilinear) or ``'nearest'``. Defaults to 'bilinear'.
    """
    import torch
    from monai.data import MetaTensor
    from monai.transforms import Spacing
    target = check_spacing(spacing)
    source = tuple(float(s) for s in meta['spacing'])
    pixdim = tuple(src if t is None else t for src, t in zip(source, target))
    meta = dict(meta, source_spacing=source)
    if np.allclose(pixdim, source, rtol=0, atol=1e-6):
        return volume, meta
    data = MetaTensor(torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None],
                      affine=torch.as_tensor(np.asarray(meta['affine'], dtype=np.float64)))
    out = Spacing(pixdim=pixdim, mode=mode, padding_mode='border', dtype=torch.float32)(data)
    affine = out.affine.numpy().astype(np.float64)
    meta.update(affine=affine,
                spacing=tuple(float(s) for s in np.sqrt((affine[:3, :3]**2).sum(axis=0))))
    return np.ascontiguousarray(out.as_tensor().numpy()[0], dtype=np.float32), meta
