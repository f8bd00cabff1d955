"""Readers: formats, windowing values, DICOM modality LUT / MONOCHROME1, bad files."""
import os.path as osp
import pickle
from fractions import Fraction

import cv2
import numpy as np
import pydicom
import pytest

from dira_mm.datasets.readers import (ImageReadError, apply_window, decode_image,
                                      detect_format, read_dicom_array, read_image,
                                      window_to_range)
from dira_mm.datasets.transforms.loading import LoadMedicalImage

data_store = pytest.importorskip('data_store')
RG1 = osp.join(osp.dirname(data_store.__file__), 'data', 'RG1_UNCI.dcm')
CT_SMALL = pydicom.data.get_testdata_file('CT_small.dcm')


def exact_window(x, lo, hi):
    """The documented rule in exact arithmetic: floor(clip((x - lo) * 255 / (hi - lo)) + 1/2)."""
    v = (Fraction(int(x)) - Fraction(lo)) * 255 / (Fraction(hi) - Fraction(lo))
    v = min(max(v, Fraction(0)), Fraction(255))
    return int(v + Fraction(1, 2))  # int() of a non-negative Fraction is the floor


def test_png_8bit_round_trip(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (37, 53), dtype=np.uint8)
    path = str(tmp_path / 'a.png')
    cv2.imwrite(path, img)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (37, 53)
    np.testing.assert_array_equal(out, img)
    # a configured window is not applied to 8-bit images
    np.testing.assert_array_equal(read_image(path, window=(100, 10)), img)


def test_png_16bit_window_values(tmp_path):
    raw = np.array([[0, 1000, 2000, 3000, 65535]], dtype=np.uint16)
    path = str(tmp_path / 'b.png')
    cv2.imwrite(path, raw)
    assert cv2.imread(path, cv2.IMREAD_UNCHANGED).dtype == np.uint16
    # value_range (lo, hi): 2000 -> 127.5 -> rounds half up to 128
    np.testing.assert_array_equal(read_image(path, value_range=(1000, 3000)),
                                  [[0, 0, 128, 255, 255]])
    # the same window as (center, width)
    np.testing.assert_array_equal(read_image(path, window=(2000, 2000)),
                                  [[0, 0, 128, 255, 255]])
    # default: the image's min-max, 0..65535
    expected = [[exact_window(v, 0, 65535) for v in raw[0]]]
    assert expected == [[0, 4, 8, 12, 255]]
    np.testing.assert_array_equal(read_image(path), expected)


def test_png_16bit_flat_image_is_zero(tmp_path):
    path = str(tmp_path / 'flat.png')
    cv2.imwrite(path, np.full((4, 4), 777, np.uint16))
    np.testing.assert_array_equal(read_image(path), np.zeros((4, 4), np.uint8))


def test_window_arguments_are_checked():
    with pytest.raises(ValueError, match='either'):
        LoadMedicalImage(window=(0, 10), value_range=(0, 10))
    with pytest.raises(ValueError, match='positive width'):
        LoadMedicalImage(window=(0, 0))
    with pytest.raises(ValueError, match='hi > lo'):
        LoadMedicalImage(value_range=(5, 1))


def test_jpeg_colour_to_gray(tmp_path):
    bgr = np.zeros((32, 32, 3), np.uint8)
    bgr[:] = (30, 120, 200)  # B, G, R
    path = str(tmp_path / 'c.jpg')
    cv2.imwrite(path, bgr, [cv2.IMWRITE_JPEG_QUALITY, 100])
    out = read_image(path)
    assert out.shape == (32, 32) and out.dtype == np.uint8
    luma = 0.299 * 200 + 0.587 * 120 + 0.114 * 30  # 133.66
    assert abs(float(out.mean()) - luma) < 2.0
    assert detect_format(open(path, 'rb').read()) == 'jpeg'


def test_colour_png_to_gray(tmp_path):
    bgr = np.zeros((8, 8, 3), np.uint8)
    bgr[:] = (0, 0, 255)  # pure red
    path = str(tmp_path / 'red.png')
    cv2.imwrite(path, bgr)
    np.testing.assert_array_equal(read_image(path), np.full((8, 8), 76, np.uint8))


def test_dicom_monochrome1_inversion_and_orientation():
    ds = pydicom.dcmread(RG1, stop_before_pixels=True)
    assert ds.PhotometricInterpretation == 'MONOCHROME1'
    shown = read_image(RG1)
    raw = read_image(RG1, invert_monochrome1=False)
    assert shown.shape == (1955, 1841) and shown.dtype == np.uint8
    np.testing.assert_array_equal(shown.astype(np.int16), 255 - raw.astype(np.int16))
    # the header window (center 15000, width 30000) on the (un-rescaled) stored values
    values = read_dicom_array(RG1)
    np.testing.assert_array_equal(raw, apply_window(values, *window_to_range(15000, 30000)))
    # orientation: bone (spine/mediastinum column) brighter than the lungs
    h, w = shown.shape
    rows = slice(int(0.30 * h), int(0.50 * h))
    centre = shown[rows, int(0.47 * w):int(0.53 * w)].mean()
    lungs = np.r_[shown[rows, int(0.22 * w):int(0.32 * w)].ravel(),
                  shown[rows, int(0.68 * w):int(0.78 * w)].ravel()].mean()
    assert centre > lungs + 20


def test_dicom_config_window_overrides_header():
    values = read_dicom_array(RG1)
    out = read_image(RG1, window=(8000, 4000), invert_monochrome1=False)
    np.testing.assert_array_equal(out, apply_window(values, 6000, 10000))


def test_dicom_rescale_gives_hounsfield_units_and_window_is_exact():
    values, ds = read_dicom_array(CT_SMALL, return_dataset=True)
    raw = ds.pixel_array
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    assert (slope, intercept) == (1.0, -1024.0)
    for r, c in [(0, 0), (64, 64), (10, 100), (127, 3)]:
        assert values[r, c] == raw[r, c] * slope + intercept
    assert values.min() < 0 < values.max()  # HU: air/fat negative, bone positive
    # configured window (40, 400) -> [-160, 240], in exact arithmetic, for every pixel
    out = read_image(CT_SMALL, window=(40, 400))
    expected = np.vectorize(lambda x: exact_window(int(x), -160, 240))(values)
    np.testing.assert_array_equal(out, expected)
    # CT_small has no header window: min-max of the HU values
    out = read_image(CT_SMALL)
    assert out.min() == 0 and out.max() == 255


def test_missing_file(tmp_path):
    path = str(tmp_path / 'nope.png')
    with pytest.raises(ImageReadError, match='does not exist') as info:
        read_image(path)
    assert path in str(info.value) and info.value.path == path


def test_zero_byte_file(tmp_path):
    path = tmp_path / 'empty.png'
    path.write_bytes(b'')
    with pytest.raises(ImageReadError, match='empty') as info:
        read_image(str(path))
    assert str(path) in str(info.value)


@pytest.mark.parametrize('ext', ['png', 'jpg'])
def test_truncated_file(tmp_path, ext):
    img = np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8)
    ok, buf = cv2.imencode(f'.{ext}', img)
    path = tmp_path / f'cut.{ext}'
    path.write_bytes(buf.tobytes()[:len(buf) // 2])
    with pytest.raises(ImageReadError, match='truncated or corrupt') as info:
        read_image(str(path))
    assert str(path) in str(info.value)


def test_truncated_dicom(tmp_path):
    path = tmp_path / 'cut.dcm'
    path.write_bytes(open(CT_SMALL, 'rb').read()[:20000])
    with pytest.raises(ImageReadError) as info:
        read_image(str(path))
    assert str(path) in str(info.value)


def test_garbage_and_directory(tmp_path):
    path = tmp_path / 'junk.png'
    path.write_bytes(b'this is not an image' * 10)
    with pytest.raises(ImageReadError, match='unknown or unsupported') as info:
        read_image(str(path))
    assert str(path) in str(info.value)
    with pytest.raises(ImageReadError, match='directory'):
        read_image(str(tmp_path))


def test_error_pickles_and_reraises_from_message():
    err = ImageReadError('/x/y.png', 'the file is empty (0 bytes)', 'Copy it again.')
    back = pickle.loads(pickle.dumps(err))
    assert (back.path, back.reason, str(back)) == (err.path, err.reason, str(err))
    # the one-argument form (used by DataLoader workers to re-raise) keeps the message
    assert str(ImageReadError('whole message')) == 'whole message'


def test_decode_image_from_bytes(tmp_path):
    img = np.arange(64, dtype=np.uint8).reshape(8, 8)
    ok, buf = cv2.imencode('.png', img)
    np.testing.assert_array_equal(decode_image(buf.tobytes(), path='mem.png'), img)


def test_load_medical_image_transform(tmp_path):
    path = str(tmp_path / 'd.png')
    cv2.imwrite(path, np.full((10, 12), 7, np.uint8))
    results = LoadMedicalImage()(dict(img_path=path))
    assert results['img'].shape == (10, 12) and results['img'].dtype == np.uint8
    assert results['img_shape'] == (10, 12) and results['ori_shape'] == (10, 12)
    with pytest.raises(ImageReadError):
        LoadMedicalImage()(dict(img_path=str(tmp_path / 'missing.png')))
    assert 'LoadMedicalImage' in repr(LoadMedicalImage(window=(1, 2)))
