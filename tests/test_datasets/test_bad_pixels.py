"""Bad image files give no silent wrong result: NaN/Inf pixels are skipped and counted (or
filled and reported), images above ``max_pixels`` are refused from their header before any
decoding, and ``.npy`` images are read by value."""
import struct
import zlib

import cv2
import numpy as np
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dira_mm.datasets import (DEFAULT_MAX_PIXELS, ImageReadError, NonFinitePixelsWarning,
                              read_image)
from dira_mm.datasets.readers import apply_window, image_size
from dira_mm.engine.hooks.skipped_samples_hook import count_skipped
from dira_mm.registry import DATASETS, TRANSFORMS

CT_SMALL = get_testdata_file('CT_small.dcm')




def float_image():
    """3x4 float32 values -5..105; the NaN goes to (1, 2), whose value is 55."""
    return np.arange(12, dtype=np.float32).reshape(3, 4) * 10 - 5


def write_float_dicom(path, arr):
    """A DICOM with Float Pixel Data (e.g. a parametric map)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.30'
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = arr.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = 'MONOCHROME2'
    ds.BitsAllocated = 32
    ds.FloatPixelData = arr.astype('<f4').tobytes()
    ds.save_as(str(path), enforce_file_format=True)


WRITERS = {
    'tiff': lambda path, arr: cv2.imwrite(str(path), arr.astype(np.float32)),
    'npy': lambda path, arr: np.save(str(path), arr),
    'dcm': write_float_dicom,
}


@pytest.mark.parametrize('ext', sorted(WRITERS))
@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf])
def test_nonfinite_pixel_is_refused_or_filled(tmp_path, ext, bad):
    arr = float_image()
    clean = arr.copy()
    clean[1, 2] = arr.min()  # what 'fill' puts there: the finite minimum
    arr[1, 2] = bad
    path, clean_path = tmp_path / f'bad.{ext}', tmp_path / f'clean.{ext}'
    WRITERS[ext](path, arr)
    WRITERS[ext](clean_path, clean)
    # the old behaviour: a NaN min/max window makes the whole image black
    if np.isnan(bad):
        assert not apply_window(arr, float(arr.min()), float(arr.max())).any()
    with pytest.raises(ImageReadError, match='1 of 12 pixel values are not finite') as info:
        read_image(str(path))
    assert str(path) in str(info.value) and 'nonfinite="fill"' in str(info.value)
    assert '(1, 2)' in str(info.value)
    img, filled = read_image(str(path), nonfinite='fill', return_filled=True)
    expected = read_image(str(clean_path))
    assert filled == 1
    np.testing.assert_array_equal(img, expected)
    # min-max window of -5..105: (55 + 5) * 255 / 110 = 139.09 -> 139 at (1, 0) etc.
    assert expected[0, 0] == 0 and expected[2, 3] == 255 and expected[1, 2] == 0
    assert expected[1, 0] == 93  # (35 + 5) * 255 / 110 = 92.7 -> 93
    with pytest.warns(NonFinitePixelsWarning, match='bad'):
        read_image(str(path), nonfinite='fill')


def test_nonfinite_with_configured_window_and_all_nan(tmp_path):
    arr = float_image()
    arr[0, 0] = np.nan
    np.save(tmp_path / 'a.npy', arr)
    # a configured window does not hide a NaN either
    with pytest.raises(ImageReadError, match='not finite'):
        read_image(str(tmp_path / 'a.npy'), value_range=(0, 100))
    np.save(tmp_path / 'nan.npy', np.full((2, 2), np.nan, np.float32))
    with pytest.raises(ImageReadError, match='no finite value'):
        read_image(str(tmp_path / 'nan.npy'), nonfinite='fill')
    with pytest.raises(ValueError, match='nonfinite'):
        TRANSFORMS.build(dict(type='LoadMedicalImage', nonfinite='zero'))
    with pytest.raises(ValueError, match='max_pixels'):
        TRANSFORMS.build(dict(type='LoadMedicalImage', max_pixels=0))


def test_npy_images_by_value(tmp_path):
    img8 = np.arange(20, dtype=np.uint8).reshape(4, 5)
    np.save(tmp_path / 'u8.npy', img8)
    np.testing.assert_array_equal(read_image(str(tmp_path / 'u8.npy')), img8)
    np.save(tmp_path / 'u16.npy', np.array([[0, 1000, 2000, 3000, 65535]], np.uint16))
    np.testing.assert_array_equal(read_image(str(tmp_path / 'u16.npy'), value_range=(1000, 3000)),
                                  [[0, 0, 128, 255, 255]])
    np.save(tmp_path / 'rgb.npy', np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(ImageReadError, match=r'shape \(4, 5, 3\)'):
        read_image(str(tmp_path / 'rgb.npy'))
    data = (tmp_path / 'u16.npy').read_bytes()
    (tmp_path / 'cut.npy').write_bytes(data[:-3])
    with pytest.raises(ImageReadError, match='truncated'):
        read_image(str(tmp_path / 'cut.npy'))


def test_dataset_skips_and_counts_nonfinite_image(tmp_path, mm_logs):
    good = float_image()
    bad = good.copy()
    bad[2, 2] = np.nan
    np.save(tmp_path / 'a_bad.npy', bad)
    np.save(tmp_path / 'b_good.npy', good)
    pipeline = [dict(type='LoadMedicalImage'), dict(type='PackClsInputs')]
    ds = DATASETS.build(
        dict(type='MedicalImageFolder', data_root=str(tmp_path), extensions=('.npy', ),
             pipeline=pipeline))
    out = ds[0]
    # the NaN image was skipped for the next one, counted and named
    assert out['data_samples'].img_path == str(tmp_path / 'b_good.npy')
    assert count_skipped(dict(data_samples=[out['data_samples']])) == 1
    assert any('a_bad.npy' in m and 'not finite' in m for m in mm_logs.messages)
    # with 'fill' it is kept, and the fill is logged with the file and the count
    fill = [dict(type='LoadMedicalImage', nonfinite='fill'), dict(type='PackClsInputs')]
    ds = DATASETS.build(
        dict(type='MedicalImageFolder', data_root=str(tmp_path), extensions=('.npy', ),
             pipeline=fill))
    out = ds[0]
    assert count_skipped(dict(data_samples=[out['data_samples']])) == 0
    assert out['inputs'].shape[-2:] == (3, 4) and int(out['inputs'][..., 2, 2].max()) == 0
    assert any('a_bad.npy' in m and '1 non-finite' in m for m in mm_logs.messages)


def png_claiming(tmp_path, width, height):
    """A tiny valid PNG whose IHDR (and its CRC) claims ``width`` x ``height``."""
    ok, buf = cv2.imencode('.png', np.zeros((8, 8), np.uint8))
    data = bytearray(buf.tobytes())
    assert data[12:16] == b'IHDR'
    data[16:24] = struct.pack('>II', width, height)
    data[29:33] = struct.pack('>I', zlib.crc32(bytes(data[12:29])))
    path = tmp_path / 'bomb.png'
    path.write_bytes(bytes(data))
    return path


def test_pixel_limit_refuses_bomb_without_decoding(tmp_path, monkeypatch):
    path = png_claiming(tmp_path, 30000, 30000)
    assert image_size(path.read_bytes()) == (30000, 30000)

    def no_decode(*args, **kwargs):
        raise AssertionError('cv2.imdecode must not run for an image above max_pixels')

    monkeypatch.setattr(cv2, 'imdecode', no_decode)
    with pytest.raises(ImageReadError) as info:
        read_image(str(path))
    message = str(info.value)
    assert str(path) in message and '30000x30000 = 900000000 pixels' in message
    assert f'max_pixels={DEFAULT_MAX_PIXELS}' in message and 'not decoded' in message
    assert 'LoadMedicalImage' in message
    with pytest.raises(ImageReadError, match='max_pixels'):
        TRANSFORMS.build(dict(type='LoadMedicalImage'))(dict(img_path=str(path)))


@pytest.mark.parametrize('ext', ['png', 'jpg', 'tiff', 'npy'])
def test_pixel_limit_is_configurable(tmp_path, ext):
    img = np.random.default_rng(0).integers(0, 256, (60, 100), dtype=np.uint8)
    path = tmp_path / f'a.{ext}'
    np.save(path, img) if ext == 'npy' else cv2.imwrite(str(path), img)
    with pytest.raises(ImageReadError, match=r'100x60 = 6000 pixels, more than '
                       r'max_pixels=5999'):
        TRANSFORMS.build(dict(type='LoadMedicalImage', max_pixels=5999))(
            dict(img_path=str(path)))
    for limit in (6000, None):
        out = TRANSFORMS.build(dict(type='LoadMedicalImage', max_pixels=limit))(
            dict(img_path=str(path)))['img']
        assert out.shape == (60, 100)
        if ext != 'jpg':
            np.testing.assert_array_equal(out, img)


def test_pixel_limit_dicom_from_header(tmp_path, monkeypatch):
    # Rows x Columns = 128 x 128 = 16384, refused before the pixel data is decoded
    monkeypatch.setattr(Dataset, 'pixel_array',
                        property(lambda self: pytest.fail('pixel data decoded')))
    with pytest.raises(ImageReadError, match='128x128 = 16384 pixels, more than max_pixels=16383'):
        read_image(CT_SMALL, max_pixels=16383)
    monkeypatch.undo()
    assert read_image(CT_SMALL, max_pixels=16384).shape == (128, 128)


def test_pixel_limit_npy_header(tmp_path):
    # a header claiming 30000 x 30000 float64 (7.2 GB) over a few bytes of data
    header = {'descr': '<f8', 'fortran_order': False, 'shape': (30000, 30000)}
    path = tmp_path / 'big.npy'
    with open(path, 'wb') as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b'\0' * 64)
    with pytest.raises(ImageReadError, match='30000x30000 = 900000000 pixels'):
        read_image(str(path))
    with pytest.raises(ImageReadError, match='truncated'):
        read_image(str(path), max_pixels=None)
