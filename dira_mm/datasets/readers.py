"""Readers that turn a 2-D medical image file into a uint8 gray array.

Supported: PNG (8- and 16-bit), JPEG, TIFF/BMP (through OpenCV), DICOM (through pydicom) and
NumPy ``.npy`` arrays ``(H, W)`` of any real dtype.
Every image leaves :func:`read_image` as a 2-D ``uint8`` array ``(H, W)``, the data contract of
``docs/architecture.md``. Decoding is delegated to libraries; what is written here is only the
glue that no library offers in this form: format detection, the windowing rule that maps
16-bit and DICOM values to 8 bits, and error messages that name the file, the reason and what
to do.

Windowing rule (one rule for every format with more than 8 bits per pixel):

- A window is a value interval ``[lo, hi]``. It is given either as ``window=(center, width)``,
  with ``lo = center - width / 2`` and ``hi = center + width / 2`` (DICOM's window attributes,
  in the same units as the rescaled DICOM values, e.g. Hounsfield units for CT), or as
  ``value_range=(lo, hi)``.
- A value ``x`` maps to ``floor(clip(((x - lo) * 255) / (hi - lo), 0, 255) + 0.5)``, computed
  in float64: a linear ramp rounded half up, values below ``lo`` give 0 and above ``hi`` give
  255. This is DICOM's ``LINEAR_EXACT`` VOI function scaled to 8 bits.
- Which window: the configured one if given; else, for DICOM, the header's
  ``WindowCenter``/``WindowWidth`` (first value when multi-valued, ignored when the width is not
  positive); else the min-max of the image's values (per image, so brightness is normalised
  image by image). A flat image (``hi == lo``) maps to zeros.
- 8-bit images (PNG, JPEG, ...) are already display values and are returned unchanged: a
  configured window is not applied to them.

DICOM: the modality LUT (``RescaleSlope``/``RescaleIntercept`` or a Modality LUT Sequence,
applied by :func:`pydicom.pixels.apply_modality_lut`) comes first, then the window. A VOI LUT
Sequence and ``VOILUTFunction = SIGMOID`` are not used (the linear window is). ``MONOCHROME1``
images (where a high value is dark) are inverted after windowing (``255 - y``), so bone is bright
as in ``MONOCHROME2``, unless ``invert_monochrome1=False``. Colour images are converted to gray
with the ITU-R BT.601 luma weights (OpenCV's ``cvtColor``).

Bad pixels and huge images (both are refused with :class:`ImageReadError`, which a dataset with
``on_error='skip'`` skips, names in a warning and counts in ``SkippedSamplesHook``):

- Non-finite values (NaN, +-Inf: float TIFF/NPY/DICOM ``FloatPixelData``, or a broken
  modality LUT) would make the min-max window NaN and the whole image black. With
  ``nonfinite='skip'`` (default) such an image is an error naming the file and the number of
  bad values; with ``nonfinite='fill'`` they are replaced by the image's finite minimum before
  the window is chosen (so the other pixels come out as if the bad ones held that minimum),
  and the count is reported (a :class:`NonFinitePixelsWarning`, or ``return_filled=True``).
- ``max_pixels`` (default :data:`DEFAULT_MAX_PIXELS` = 50 million) is checked from the header,
  before any pixel is decoded: PNG/JPEG/TIFF/BMP through PIL's header parsers, DICOM's
  ``Rows``/``Columns``, the ``.npy`` header. The largest real radiographs are ~4-9 MP
  (CR/DR chest plates, e.g. 3000x3000) and mammograms up to ~30 MP (e.g. 4096x5625 pixels =
  23 MP, 5.4k x 5.6k tomosynthesis projections); 50 MP keeps every real image with a
  margin while a 30000x30000 "decompression bomb" PNG (900 MP, measured at a 3.2 GB decode
  peak) is refused. At 50 MP the peak per DataLoader worker is ~0.3 GB for a 16-bit PNG and
  ~1.2 GB for a float32 TIFF (float64 windowing), scaled from 10 MP measurements (60 MB and
  245 MB of peak RSS). ``max_pixels=None`` removes the limit. PIL only parses headers here (its
  plugin classes, so ``PIL.Image.MAX_IMAGE_PIXELS`` plays no part); OpenCV, which decodes,
  keeps its own cap of 2^30 pixels (environment variable ``OPENCV_IO_MAX_IMAGE_PIXELS``).

Speed: PNG and JPEG go through ``cv2.imdecode``, measured faster than PIL: for a 1024x1024
8-bit gray chest radiograph PNG (406 KB), 7.3 ms against 7.6 ms for PIL and 9.0 ms for the
official ``Image.open().convert('RGB')``, on one core of the development machine; most of it
is zlib's inflate. Integer images with more than 8 bits are windowed with a look-up table built over the
range of stored values, which avoids float arithmetic on every pixel.
"""
import io
import math
import os
import warnings
from typing import Any, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

__all__ = [
    'ImageReadError', 'read_image', 'decode_image', 'read_dicom_array', 'apply_window',
    'window_to_range', 'resolve_window', 'detect_format', 'check_read_options', 'image_size',
    'read_npy_header', 'NonFinitePixelsWarning', 'DEFAULT_MAX_PIXELS'
]

_PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
_JPEG_MAGIC = b'\xff\xd8\xff'
_TIFF_MAGICS = (b'II*\x00', b'MM\x00*')
_BMP_MAGIC = b'BM'
_NPY_MAGIC = b'\x93NUMPY'
_DICOM_EXTENSIONS = ('.dcm', '.dicom', '.dic', '.ima')
_DEFAULT_HINT = ('Check that the path is right and that the file is a complete PNG, JPEG or '
                 'DICOM image; re-export or remove it from the list file.')
# Integer images whose stored values span at most this many levels are windowed by a LUT.
_MAX_LUT_LEVELS = 1 << 16
#: Default pixel limit (H * W) of the readers; see the module docstring for why 50 MP.
DEFAULT_MAX_PIXELS = 50_000_000
_NONFINITE = ('skip', 'fill')
_NONFINITE_HINT = ('Fix or re-export the file, or set `nonfinite="fill"` in LoadMedicalImage '
                   'to replace such values by the image\'s finite minimum.')


class ImageReadError(Exception):
    """An image file is missing, empty, truncated, undecodable or of an unsupported kind.

    Datasets catch exactly this error to skip unreadable files (``on_error='skip'``); any other
    exception is a bug and propagates.

    Args:
        path (str): The file that could not be read. When ``reason`` is None, ``path`` is taken
            as the complete message instead; this one-argument form lets the error cross
            process boundaries (pickling, DataLoader workers) unchanged.
        reason (str, optional): What is wrong with the file.
        hint (str, optional): What the user can do about it.
    """

    def __init__(self, path: str, reason: Optional[str] = None, hint: Optional[str] = None):
        self.path = str(path) if reason is not None else None
        self.reason = reason
        self.hint = hint
        if reason is None:
            message = str(path)
        else:
            message = f'Cannot read image "{path}": {reason}. {hint or _DEFAULT_HINT}'
        super().__init__(message)

    def __reduce__(self):
        if self.reason is None:
            return (type(self), (self.args[0], ))
        return (type(self), (self.path, self.reason, self.hint))


class NonFinitePixelsWarning(UserWarning):
    """NaN/Inf pixel values were replaced (``nonfinite='fill'``); the message names the file."""


def check_read_options(nonfinite: str = 'skip',
                       max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
                       limit_key: str = 'max_pixels') -> None:
    """Check ``nonfinite`` and the size limit (raise ``ValueError`` naming the key;
    ``limit_key`` is the limit's name, e.g. ``'max_voxels'`` for volumes)."""
    if nonfinite not in _NONFINITE:
        raise ValueError(f'`nonfinite` must be one of {_NONFINITE}, got {nonfinite!r}.')
    if max_pixels is not None and (isinstance(max_pixels, bool) or not isinstance(
            max_pixels, (int, np.integer)) or max_pixels < 1):
        raise ValueError(f'`{limit_key}` must be a positive int or None (no limit), got '
                         f'{max_pixels!r}.')


def read_npy_header(fp) -> Tuple[Tuple[int, ...], bool, np.dtype, int]:
    """Parse a ``.npy`` header from the file object ``fp`` without reading the array.

    Returns:
        tuple: ``(shape, fortran_order, dtype, data_offset)``.

    Raises:
        ValueError: The header is not a valid ``.npy`` header (any parse failure, as the
            header of a damaged file can hold anything).
    """
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(fp)
        else:
            raise ValueError(f'unsupported .npy version {version}')
    except ValueError:
        raise
    except Exception as e:  # e.g. tokenize.TokenError from a garbled header dict
        raise ValueError(f'garbled .npy header ({type(e).__name__}: {e})') from None
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ValueError(f'invalid .npy shape {shape!r}')
    return tuple(shape), bool(fortran), np.dtype(dtype), fp.tell()


_PIL_PLUGINS = dict(
    png=('PngImagePlugin', 'PngImageFile'),
    jpeg=('JpegImagePlugin', 'JpegImageFile'),
    tiff=('TiffImagePlugin', 'TiffImageFile'),
    bmp=('BmpImagePlugin', 'BmpImageFile'))


def image_size(data: bytes, fmt: Optional[str] = None) -> Optional[Tuple[int, int]]:
    """``(H, W)`` of an encoded PNG/JPEG/TIFF/BMP/NPY image from its header, without decoding.

    PIL's plugin classes parse only the header (and, unlike ``PIL.Image.open``, do not apply
    ``PIL.Image.MAX_IMAGE_PIXELS``, so the size of a bomb can still be reported).

    Returns:
        tuple[int, int] | None: The size, or None when the header cannot be parsed (the
        decoder then reports the error) or the format has no such header here (DICOM).
    """
    fmt = fmt or detect_format(data)
    if fmt == 'npy':
        try:
            shape = read_npy_header(io.BytesIO(data))[0]
        except ValueError:
            return None
        return (shape[0], shape[1]) if len(shape) >= 2 else None
    if fmt not in _PIL_PLUGINS:
        return None
    import importlib
    module, cls = _PIL_PLUGINS[fmt]
    try:
        plugin = getattr(importlib.import_module(f'PIL.{module}'), cls)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            img = plugin(io.BytesIO(data))
        width, height = img.size
    except Exception:  # a header PIL cannot parse is left to the decoder to report
        return None
    return int(height), int(width)


def _check_pixels(path: str, height: int, width: int, max_pixels: Optional[int],
                  fmt: str) -> None:
    """Refuse an image of more than ``max_pixels`` pixels (before decoding it)."""
    if max_pixels is None or int(height) * int(width) <= max_pixels:
        return
    raise ImageReadError(
        path, f'the {fmt.upper()} image is {int(width)}x{int(height)} = '
        f'{int(height) * int(width)} pixels, more than max_pixels={max_pixels}; it was not '
        'decoded',
        'If images this large are expected, raise `max_pixels` of LoadMedicalImage in the '
        'pipeline config (e.g. dict(type="LoadMedicalImage", max_pixels=100_000_000); None: '
        'no limit); otherwise downsample or remove the file.')


def window_to_range(center: float, width: float) -> Tuple[float, float]:
    """Convert a DICOM-style window ``(center, width)`` to the value interval ``(lo, hi)``."""
    return float(center) - float(width) / 2.0, float(center) + float(width) / 2.0


def _window_values(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Apply the module's windowing rule to ``values`` (any real dtype) in float64."""
    if not hi > lo:
        return np.zeros(np.shape(values), dtype=np.uint8)
    out = np.subtract(values, lo, dtype=np.float64)
    out *= 255.0
    out /= (hi - lo)
    np.clip(out, 0.0, 255.0, out=out)
    out += 0.5
    return out.astype(np.uint8)  # truncation of a non-negative value is the floor


def apply_window(array: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map values to uint8 with the linear window ``[lo, hi]`` (see the module docstring).

    Args:
        array (np.ndarray): Values of any real dtype, e.g. Hounsfield units.
        lo (float): The value that maps to 0 (and everything below it).
        hi (float): The value that maps to 255 (and everything above it).

    Returns:
        np.ndarray: uint8 array of the same shape.
    """
    return _window_values(array, float(lo), float(hi))


def _check_interval(name: str, interval: Optional[Sequence[float]]) -> None:
    if interval is None:
        return
    if len(interval) != 2:
        raise ValueError(f'`{name}` must be a pair of numbers, got {interval!r}.')
    if name == 'window' and not float(interval[1]) > 0:
        raise ValueError(f'`window=(center, width)` needs a positive width, got {interval!r}.')
    if name == 'value_range' and not float(interval[1]) > float(interval[0]):
        raise ValueError(f'`value_range=(lo, hi)` needs hi > lo, got {interval!r}.')


def resolve_window(window: Optional[Sequence[float]],
                   value_range: Optional[Sequence[float]]) -> Optional[Tuple[float, float]]:
    """Check the window options and return the configured ``(lo, hi)``, or None.

    Raises:
        ValueError: A malformed window, or both ``window`` and ``value_range`` given.
    """
    _check_interval('window', window)
    _check_interval('value_range', value_range)
    if window is not None and value_range is not None:
        raise ValueError('Give either `window=(center, width)` or `value_range=(lo, hi)`, '
                         'not both.')
    if window is not None:
        return window_to_range(*window)
    if value_range is not None:
        return float(value_range[0]), float(value_range[1])
    return None


def _window_image(raw: np.ndarray,
                  to_values,
                  configured: Optional[Tuple[float, float]],
                  header: Optional[Tuple[float, float]],
                  invert: bool,
                  path: str = '<bytes>',
                  nonfinite: str = 'skip') -> Tuple[np.ndarray, int]:
    """Window ``to_values(raw)`` into uint8, with a LUT when ``raw`` holds few integer levels.

    ``to_values`` maps stored values to the values the window refers to (identity for PNG, the
    modality LUT for DICOM). It is applied element-wise, so applying it to the levels
    ``min..max`` and then looking every pixel up gives the same result as applying it to the
    whole image, much faster. Non-finite values are refused or filled per ``nonfinite``
    before the window is chosen (a NaN min-max would turn the whole image black).

    Returns:
        tuple[np.ndarray, int]: The uint8 image and how many pixels were filled.
    """
    use_lut = raw.dtype.kind in 'ui' and raw.dtype.itemsize <= 4 and raw.size > 0
    if use_lut:
        vmin, vmax = int(raw.min()), int(raw.max())
        use_lut = vmax - vmin < _MAX_LUT_LEVELS
    if use_lut:
        levels = np.arange(vmin, vmax + 1, dtype=np.int64).astype(raw.dtype)
        values = np.asarray(to_values(levels), dtype=np.float64)
    else:
        values = np.asarray(to_values(raw), dtype=np.float64)
    values, filled = _handle_nonfinite(values, raw, vmin if use_lut else None, path, nonfinite)
    lo_hi = configured or header
    if lo_hi is None:
        lo_hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    table = _window_values(values, *lo_hi)
    if invert:
        table = 255 - table
    if not use_lut:
        return table, filled
    return table[_lut_index(raw, vmin)], filled


def _lut_index(raw: np.ndarray, vmin: int) -> np.ndarray:
    """Index of every pixel of integer ``raw`` into a table over the levels ``vmin..max``."""
    if vmin == 0:
        return raw
    if raw.dtype.kind == 'u':
        return raw - raw.dtype.type(vmin)  # raw >= vmin, so no wrap-around
    return raw.astype(np.int64) - vmin


def _handle_nonfinite(values: np.ndarray, raw: np.ndarray, vmin: Optional[int], path: str,
                      nonfinite: str) -> Tuple[np.ndarray, int]:
    """Refuse (``'skip'``) or fill with the finite minimum (``'fill'``) NaN/Inf values.

    ``values`` is either the whole image or, when ``vmin`` is given, a table over the integer
    levels ``vmin..max`` of ``raw`` (then the bad pixels are counted through ``raw``).
    """
    finite = np.isfinite(values)
    if finite.all():
        return values, 0
    bad = ~finite
    bad_pixels = bad[_lut_index(raw, vmin)] if vmin is not None else bad
    num_bad = int(np.count_nonzero(bad_pixels))
    first = np.unravel_index(int(np.argmax(bad_pixels)), bad_pixels.shape)
    what = (f'{num_bad} of {bad_pixels.size} pixel values are not finite (NaN or Inf; the '
            f'first at (row, column) {tuple(int(i) for i in first)})')
    if nonfinite != 'fill':
        raise ImageReadError(
            path, f'{what}; windowing them would give a wrong (black) image '
            '(nonfinite="skip")', _NONFINITE_HINT)
    if not finite.any():
        raise ImageReadError(path, f'{what}: no finite value is left to fill them with',
                             'Fix or re-export the file.')
    if np.shares_memory(values, raw):
        values = values.copy()
    values[bad] = values[finite].min()
    return values, num_bad


def _to_gray(img: np.ndarray, order: str = 'BGR') -> np.ndarray:
    """Drop alpha and convert colour to gray (BT.601 luma); keeps the dtype."""
    if img.ndim == 2:
        return img
    channels = img.shape[2]
    if channels == 1:
        return img[..., 0]
    if channels == 2:  # gray + alpha
        return img[..., 0]
    if channels == 3:
        code = cv2.COLOR_BGR2GRAY if order == 'BGR' else cv2.COLOR_RGB2GRAY
        return cv2.cvtColor(img, code)
    code = cv2.COLOR_BGRA2GRAY if order == 'BGR' else cv2.COLOR_RGBA2GRAY
    return cv2.cvtColor(img[..., :4], code)


def detect_format(data: bytes, path: str = '') -> str:
    """Guess the format from the magic bytes, then from the file extension.

    Returns:
        str: One of ``'png'``, ``'jpeg'``, ``'tiff'``, ``'bmp'``, ``'dicom'``, ``'npy'``,
        ``'unknown'``.
    """
    if data.startswith(_PNG_MAGIC):
        return 'png'
    if data.startswith(_JPEG_MAGIC):
        return 'jpeg'
    if data[128:132] == b'DICM':
        return 'dicom'
    if data[:4] in _TIFF_MAGICS:
        return 'tiff'
    if data.startswith(_BMP_MAGIC):
        return 'bmp'
    if data.startswith(_NPY_MAGIC):
        return 'npy'
    if str(path).lower().endswith(_DICOM_EXTENSIONS):
        return 'dicom'  # DICOM files without the 128-byte preamble
    return 'unknown'


def _read_bytes(path: str) -> bytes:
    path = os.fspath(path)
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except FileNotFoundError:
        raise ImageReadError(
            path, 'the file does not exist',
            'Check `data_root`, `data_prefix` and the file names in the list file.') from None
    except IsADirectoryError:
        raise ImageReadError(path, 'the path is a directory, not an image file') from None
    except OSError as e:
        raise ImageReadError(path, f'the file cannot be opened ({e.strerror or e})',
                             'Check the file permissions and the disk.') from None
    return data


def read_image(path: str,
               *,
               window: Optional[Sequence[float]] = None,
               value_range: Optional[Sequence[float]] = None,
               invert_monochrome1: bool = True,
               nonfinite: str = 'skip',
               max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
               return_filled: bool = False) -> Union[np.ndarray, Tuple[np.ndarray, int]]:
    """Read a 2-D medical image file as a uint8 gray array ``(H, W)``.

    Args:
        path (str): The image file: PNG (8/16-bit), JPEG, TIFF, BMP, DICOM or NPY.
        window (tuple[float, float], optional): ``(center, width)`` applied to images with more
            than 8 bits (see the module docstring). Defaults to None (DICOM header, then
            min-max).
        value_range (tuple[float, float], optional): The same window given as ``(lo, hi)``.
            Mutually exclusive with ``window``.
        invert_monochrome1 (bool): Invert DICOM ``MONOCHROME1`` images after windowing so that
            bone is bright. Defaults to True.
        nonfinite (str): NaN/Inf pixel values: ``'skip'`` raises :class:`ImageReadError`;
            ``'fill'`` replaces them by the image's finite minimum. Defaults to 'skip'.
        max_pixels (int, optional): Refuse images with more pixels (``H * W``), checked from
            the header before decoding. None: no limit. Defaults to
            :data:`DEFAULT_MAX_PIXELS` (50 million; see the module docstring).
        return_filled (bool): Also return how many pixels ``'fill'`` replaced. Without it a
            fill emits a :class:`NonFinitePixelsWarning`. Defaults to False.

    Returns:
        np.ndarray | tuple[np.ndarray, int]: 2-D uint8 array (and the number of filled
        pixels with ``return_filled``).

    Raises:
        ImageReadError: The file is missing, empty, truncated, undecodable, unsupported,
            larger than ``max_pixels`` or has non-finite values (``nonfinite='skip'``).
    """
    return decode_image(
        _read_bytes(path),
        path=path,
        window=window,
        value_range=value_range,
        invert_monochrome1=invert_monochrome1,
        nonfinite=nonfinite,
        max_pixels=max_pixels,
        return_filled=return_filled)


def decode_image(data: bytes,
                 *,
                 path: str = '<bytes>',
                 window: Optional[Sequence[float]] = None,
                 value_range: Optional[Sequence[float]] = None,
                 invert_monochrome1: bool = True,
                 nonfinite: str = 'skip',
                 max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
                 return_filled: bool = False) -> Union[np.ndarray, Tuple[np.ndarray, int]]:
    """Decode the bytes of an image file; arguments as in :func:`read_image`.

    ``path`` is used for the error messages and, when the magic bytes say nothing, for the
    extension.
    """
    configured = resolve_window(window, value_range)
    check_read_options(nonfinite, max_pixels)
    if len(data) == 0:
        raise ImageReadError(path, 'the file is empty (0 bytes)',
                             'The download or copy was probably interrupted; copy it again.')
    fmt = detect_format(data, path)
    if fmt == 'dicom':
        img, filled = _decode_dicom(data, path, configured, invert_monochrome1, nonfinite,
                                    max_pixels)
    elif fmt == 'npy':
        img, filled = _decode_npy(data, path, configured, nonfinite, max_pixels)
    else:
        img, filled = _decode_with_opencv(data, path, fmt, configured, nonfinite, max_pixels)
    if return_filled:
        return img, filled
    if filled:
        warnings.warn(
            f'"{path}": {filled} non-finite (NaN/Inf) pixel values were replaced by the '
            'finite minimum (nonfinite="fill").', NonFinitePixelsWarning, stacklevel=2)
    return img


def _decode_npy(data: bytes, path: str, configured: Optional[Tuple[float, float]],
                nonfinite: str, max_pixels: Optional[int]) -> Tuple[np.ndarray, int]:
    """A ``.npy`` array ``(H, W)`` or ``(H, W, 1)`` of real values: header checked first."""
    try:
        shape, _, dtype, offset = read_npy_header(io.BytesIO(data))
    except ValueError as e:
        raise ImageReadError(path, f'not a readable .npy file ({e})') from None
    if not (len(shape) == 2 or (len(shape) == 3 and shape[2] == 1)) \
            or dtype.kind not in 'uifb' or dtype.hasobject:
        raise ImageReadError(path, f'the .npy array has shape {shape} and dtype {dtype}; a 2-D '
                             'image needs shape (H, W) and a real dtype',
                             'Save the image as a 2-D numeric array.')
    _check_pixels(path, shape[0], shape[1], max_pixels, 'npy')
    if len(data) < offset + math.prod(shape) * dtype.itemsize:
        raise ImageReadError(path, f'the .npy data is truncated ({len(data)} bytes for a '
                             f'{shape} {dtype} array)')
    try:
        img = np.load(io.BytesIO(data), allow_pickle=False).reshape(shape[:2])
    except (ValueError, EOFError, OSError) as e:
        raise ImageReadError(path, f'not a readable .npy file ({e})') from None
    if img.dtype == np.uint8:
        return np.ascontiguousarray(img), 0
    if img.dtype.kind == 'b' or img.dtype == np.float16:
        img = img.astype(np.float32)
    return _window_image(img, lambda v: v, configured, None, False, path, nonfinite)


def _decode_with_opencv(data: bytes, path: str, fmt: str,
                        configured: Optional[Tuple[float, float]], nonfinite: str,
                        max_pixels: Optional[int]) -> Tuple[np.ndarray, int]:
    size = image_size(data, fmt)
    if size is not None:
        _check_pixels(path, size[0], size[1], max_pixels, fmt)
    buf = np.frombuffer(data, dtype=np.uint8)
    # A JPEG is decoded straight to gray by libjpeg; other formats keep their bit depth.
    flag = cv2.IMREAD_GRAYSCALE if fmt == 'jpeg' else cv2.IMREAD_UNCHANGED
    try:
        img = cv2.imdecode(buf, flag)
    except cv2.error as e:
        raise ImageReadError(path, f'OpenCV failed to decode it ({e})') from None
    if img is None:
        if fmt == 'unknown':
            raise ImageReadError(
                path, f'unknown or unsupported format (first bytes {data[:8]!r})',
                'Supported are PNG, JPEG, TIFF, BMP and DICOM (.dcm); convert the file.')
        raise ImageReadError(
            path, f'the {fmt.upper()} data is truncated or corrupt ({len(data)} bytes; '
            'OpenCV could not decode it)')
    if size is None:  # no header size: check after decoding (nothing else to do)
        _check_pixels(path, img.shape[0], img.shape[1], max_pixels, fmt)
    img = _to_gray(img, 'BGR')
    if img.dtype == np.uint8:
        return np.ascontiguousarray(img), 0
    if img.dtype.kind not in 'uif' or img.dtype == np.float16:
        img = img.astype(np.float32)
    return _window_image(img, lambda v: v, configured, None, False, path, nonfinite)


def _first_value(value: Any) -> Optional[float]:
    """The first value of a possibly multi-valued DICOM number, or None."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or (hasattr(value, '__len__')
                                            and not isinstance(value, (str, bytes))):
        if len(value) == 0:
            return None
        value = value[0]
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _dicom_dataset(data: bytes, path: str, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS):
    try:
        import pydicom
    except ImportError:
        raise ImageReadError(path, 'pydicom is not installed',
                             'Install it with `pip install pydicom`.') from None
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as e:  # pydicom raises many types for broken files
        raise ImageReadError(path, f'not a readable DICOM file ({type(e).__name__}: {e})') \
            from None
    if 'PixelData' not in ds and 'FloatPixelData' not in ds \
            and 'DoubleFloatPixelData' not in ds:
        raise ImageReadError(path, 'the DICOM file holds no pixel data',
                             'Use a DICOM image (not a report or structured set).')
    frames = _first_value(ds.get('NumberOfFrames', 1)) or 1
    if int(frames) > 1:
        raise ImageReadError(path, f'multi-frame DICOM ({int(frames)} frames) is not a 2-D image',
                             'Use a 3-D dataset for volumes, or export one frame.')
    rows, columns = _first_value(ds.get('Rows')), _first_value(ds.get('Columns'))
    if rows is not None and columns is not None:
        _check_pixels(path, int(rows), int(columns), max_pixels, 'dicom')
    try:
        raw = ds.pixel_array
    except Exception as e:
        raise ImageReadError(
            path, f'the DICOM pixel data cannot be decoded ({type(e).__name__}: {e})',
            'The file may be truncated; compressed transfer syntaxes need a pydicom plugin '
            '(e.g. `pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg`).') from None
    return ds, raw


def read_dicom_array(path: str,
                     *,
                     return_dataset: bool = False,
                     max_pixels: Optional[int] = DEFAULT_MAX_PIXELS):
    """Read a DICOM image and return its values after the modality LUT, before any window.

    For CT these are Hounsfield units: ``raw * RescaleSlope + RescaleIntercept``.

    Args:
        path (str): The DICOM file.
        return_dataset (bool): Also return the ``pydicom.Dataset`` (header). Defaults to False.
        max_pixels (int, optional): Pixel limit, as in :func:`read_image`. Non-finite values
            are returned as they are (no window is applied here).

    Returns:
        np.ndarray | tuple[np.ndarray, pydicom.Dataset]: float64 array ``(H, W)`` (colour
        images are converted to gray), and the header when asked.
    """
    from pydicom.pixels import apply_modality_lut
    ds, raw = _dicom_dataset(_read_bytes(path), path, max_pixels)
    if raw.ndim == 3:
        values = _to_gray(raw.astype(np.float32), 'RGB').astype(np.float64)
    else:
        values = np.asarray(apply_modality_lut(raw, ds), dtype=np.float64)
    return (values, ds) if return_dataset else values


def _decode_dicom(data: bytes, path: str, configured: Optional[Tuple[float, float]],
                  invert_monochrome1: bool, nonfinite: str,
                  max_pixels: Optional[int]) -> Tuple[np.ndarray, int]:
    from pydicom.pixels import apply_modality_lut
    ds, raw = _dicom_dataset(data, path, max_pixels)
    photometric = str(ds.get('PhotometricInterpretation', 'MONOCHROME2')).strip().upper()
    if raw.ndim == 3:  # colour: pixel_array is RGB; no modality LUT or header window applies
        gray = _to_gray(raw, 'RGB')
        if gray.dtype == np.uint8:
            return np.ascontiguousarray(gray), 0
        return _window_image(gray, lambda v: v, configured, None, False, path, nonfinite)
    if raw.ndim != 2:
        raise ImageReadError(path, f'unexpected DICOM pixel array shape {raw.shape}')
    header = None
    center = _first_value(ds.get('WindowCenter'))
    width = _first_value(ds.get('WindowWidth'))
    if center is not None and width is not None and width > 0:
        header = window_to_range(center, width)
    invert = invert_monochrome1 and photometric == 'MONOCHROME1'
    return _window_image(raw, lambda v: apply_modality_lut(v, ds), configured, header, invert,
                         path, nonfinite)
