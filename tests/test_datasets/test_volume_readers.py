"""Tests of the 3-D volume readers (NIfTI, DICOM series, MetaImage) and ``hu_window``."""
import os
import random

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from dira_mm.datasets import ImageReadError, NonFinitePixelsWarning, hu_window, read_volume
from dira_mm.datasets.volume_readers import read_mhd_header

ANATOMICAL = os.path.join(os.path.dirname(nib.__file__), 'tests', 'data', 'anatomical.nii')


# ----------------------------------------------------------------------------- NIfTI


def test_nifti_las_reoriented_to_ras_by_value():
    vol, meta = read_volume(ANATOMICAL)
    img = nib.load(ANATOMICAL)
    assert nib.aff2axcodes(img.affine) == ('L', 'A', 'S')
    canon = nib.as_closest_canonical(img)
    expected = canon.get_fdata(dtype=np.float32)
    assert vol.dtype == np.float32 and vol.shape == expected.shape == (33, 41, 25)
    np.testing.assert_array_equal(vol, expected)
    # the first axis is flipped relative to the stored data
    np.testing.assert_array_equal(vol, img.get_fdata(dtype=np.float32)[::-1])
    np.testing.assert_allclose(meta['affine'], canon.affine)
    assert meta['orientation'] == ('R', 'A', 'S')
    assert meta['source_orientation'] == ('L', 'A', 'S')
    assert meta['format'] == 'nifti'
    np.testing.assert_allclose(meta['spacing'], (2.0, 2.0, 2.0))


def test_nifti_gz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.normal(0, 100, size=(5, 6, 7)).astype(np.float32)
    affine = np.diag([0.7, 0.8, 2.5, 1.0])
    affine[:3, 3] = (-10, 20, 30)
    path = str(tmp_path / 'v.nii.gz')
    nib.save(nib.Nifti1Image(data, affine), path)
    vol, meta = read_volume(path)
    np.testing.assert_array_equal(vol, data)
    np.testing.assert_allclose(meta['affine'], affine)
    np.testing.assert_allclose(meta['spacing'], (0.7, 0.8, 2.5))
    assert meta['source_orientation'] == ('R', 'A', 'S')


def test_nifti_nan_refused_and_filled(tmp_path):
    data = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    data[1, 2, 3] = np.nan
    path = str(tmp_path / 'nan.nii')
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    with pytest.raises(ImageReadError, match=r'nan\.nii.*1 of 60 voxel values are not finite'):
        read_volume(path)
    with pytest.warns(NonFinitePixelsWarning):
        vol, _ = read_volume(path, nonfinite='fill')
    assert vol[1, 2, 3] == 0.0 and np.isfinite(vol).all()


def test_max_voxels_refused_before_reading(tmp_path):
    path = str(tmp_path / 'big.nii')
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), np.eye(4)), path)
    # truncate the data: a reader that read the voxels would fail differently
    with open(path, 'r+b') as f:
        f.truncate(352 + 10)
    with pytest.raises(ImageReadError, match=r'big\.nii.*64 voxels, more than max_voxels=10'):
        read_volume(path, max_voxels=10)
    with pytest.raises(ImageReadError, match='cannot be read'):
        read_volume(path)
    # MetaImage: the header alone (no .raw file) is enough to refuse
    mhd = tmp_path / 'big.mhd'
    mhd.write_text('ObjectType = Image\nNDims = 3\nDimSize = 100 100 100\n'
                   'ElementType = MET_SHORT\nElementDataFile = missing.raw\n')
    with pytest.raises(ImageReadError, match=r'1000000 voxels, more than max_voxels'):
        read_volume(str(mhd), max_voxels=1000)
    with pytest.raises(ImageReadError, match='missing.raw'):
        read_volume(str(mhd))
    with pytest.raises(ValueError, match='max_voxels'):
        read_volume(str(mhd), max_voxels=0)


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / 'bad.nii.gz'
    bad.write_bytes(b'not gzip at all')
    with pytest.raises(ImageReadError, match=r'bad\.nii\.gz.*not a readable NIfTI'):
        read_volume(str(bad))
    with pytest.raises(ImageReadError, match='does not exist'):
        read_volume(str(tmp_path / 'nope.nii'))
    other = tmp_path / 'x.png'
    other.write_bytes(b'x')
    with pytest.raises(ImageReadError, match='unknown volume format'):
        read_volume(str(other))


# ----------------------------------------------------------------------------- DICOM

CT_SMALL = get_testdata_file('CT_small.dcm')


def _write_series(folder, n=6, step=2.5, z0=-75.7, slope=1.0, intercept=-1024.0, skip=(),
                  positions=None, seed=0):
    """Copies of CT_small as ``n`` axial slices, written in shuffled file order.

    Slice k holds the stored pixels + 10 * k (to identify it) at z = z0 + k * step.
    Returns the stored arrays per slice index (in position order).
    """
    os.makedirs(folder, exist_ok=True)
    base = pydicom.dcmread(CT_SMALL)
    stored = []
    order = list(range(n))
    random.Random(seed).shuffle(order)
    for k in range(n):
        ds = base.copy()
        arr = (base.pixel_array.astype(np.int32) + 10 * k).astype(np.int16)
        ds.PixelData = arr.tobytes()
        z = z0 + k * step if positions is None else positions[k]
        ds.ImagePositionPatient = [-158.135803, -179.035797, z]
        ds.SliceLocation = z
        ds.InstanceNumber = k + 1
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept
        ds.SOPInstanceUID = f'{base.SOPInstanceUID}.{k}'
        stored.append(arr)
        if k in skip:
            continue
        ds.save_as(os.path.join(folder, f'file{order[k]:03d}.dcm'))
    return stored


def test_dicom_series_sorted_and_hu(tmp_path):
    folder = str(tmp_path / 'series')
    stored = _write_series(folder, n=6, slope=2.0, intercept=-1024.0)
    with open(os.path.join(folder, 'README.txt'), 'w') as f:
        f.write('not a dicom file')
    vol, meta = read_volume(folder)
    assert vol.dtype == np.float32 and vol.shape == (128, 128, 6)
    assert meta['format'] == 'dicom' and meta['num_slices'] == 6
    assert meta['skipped_files'] == 1
    # LPS input (x to the Left, y Posterior) -> RAS: both in-plane axes are flipped.
    assert meta['source_orientation'] == ('L', 'P', 'S')
    assert meta['orientation'] == ('R', 'A', 'S')
    for k in range(6):
        expected = (stored[k].astype(np.float64) * 2.0 - 1024.0).T[::-1, ::-1]
        np.testing.assert_array_equal(vol[:, :, k], expected.astype(np.float32))
    np.testing.assert_allclose(meta['spacing'], (0.661468, 0.661468, 2.5), rtol=1e-6)
    # the world position of voxel (0, 0, 0) is the far corner of the first slice, in RAS
    ps = 0.661468
    corner_lps = np.array([-158.135803 + 127 * ps, -179.035797 + 127 * ps, -75.7])
    np.testing.assert_allclose(meta['affine'][:3, 3], corner_lps * [-1, -1, 1], atol=1e-4)


def test_dicom_series_hu_range_of_ct_small(tmp_path):
    folder = str(tmp_path / 's')
    _write_series(folder, n=3)
    vol, _ = read_volume(folder)
    raw = pydicom.dcmread(CT_SMALL).pixel_array
    assert vol[:, :, 0].min() == raw.min() - 1024 and vol[:, :, 0].max() == raw.max() - 1024


def test_dicom_missing_slice(tmp_path):
    folder = str(tmp_path / 'gap')
    _write_series(folder, n=6, skip=(3, ))
    with pytest.raises(ImageReadError, match=r'gap.*irregular slice spacing \(missing slices'):
        read_volume(folder)


def test_dicom_duplicate_positions(tmp_path):
    folder = str(tmp_path / 'dup')
    _write_series(folder, n=4, positions=[0.0, 2.5, 2.5, 5.0])
    with pytest.raises(ImageReadError, match=r'dup.*duplicate slice position'):
        read_volume(folder)


def test_dicom_mixed_series(tmp_path):
    folder = str(tmp_path / 'mixed')
    _write_series(folder, n=4)
    ds = pydicom.dcmread(os.path.join(folder, 'file000.dcm'))
    ds.SeriesInstanceUID = '1.2.3.4.5'
    ds.save_as(os.path.join(folder, 'file000.dcm'))
    with pytest.raises(ImageReadError, match=r'mixed.*mixes 2 DICOM series'):
        read_volume(folder)
    # same series, another orientation
    folder2 = str(tmp_path / 'mixed2')
    _write_series(folder2, n=4)
    ds = pydicom.dcmread(os.path.join(folder2, 'file001.dcm'))
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    ds.save_as(os.path.join(folder2, 'file001.dcm'))
    with pytest.raises(ImageReadError, match='mixed slice orientations'):
        read_volume(folder2)


def test_dicom_empty_folder_and_max_voxels(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ImageReadError, match='no DICOM image'):
        read_volume(str(tmp_path / 'empty'))
    folder = str(tmp_path / 's')
    _write_series(folder, n=3)
    with pytest.raises(ImageReadError, match=r'128x128x3 = 49152 voxels'):
        read_volume(folder, max_voxels=1000)


# ----------------------------------------------------------------------------- MetaImage


def _mhd_text(shape, etype, msb, data_file, spacing=(0.7, 0.8, 2.5), offset=(-1, 2, 3)):
    return ('ObjectType = Image\nNDims = 3\nBinaryData = True\n'
            f'BinaryDataByteOrderMSB = {msb}\nCompressedData = False\n'
            'TransformMatrix = 1 0 0 0 1 0 0 0 1\n'
            f'Offset = {" ".join(map(str, offset))}\nCenterOfRotation = 0 0 0\n'
            'AnatomicalOrientation = RAI\n'
            f'ElementSpacing = {" ".join(map(str, spacing))}\n'
            f'DimSize = {" ".join(map(str, shape))}\n'
            f'ElementType = {etype}\nElementDataFile = {data_file}\n')


@pytest.mark.parametrize('etype,dt', [('MET_SHORT', 'i2'), ('MET_USHORT', 'u2'),
                                      ('MET_FLOAT', 'f4')])
@pytest.mark.parametrize('msb', [False, True])
@pytest.mark.parametrize('local', [False, True])
def test_metaimage_round_trip(tmp_path, etype, dt, msb, local):
    rng = np.random.default_rng(1)
    shape = (5, 4, 3)  # x, y, z
    xyz = rng.integers(0, 3000, size=shape).astype(dt)
    raw = np.ascontiguousarray(xyz.transpose(2, 1, 0)).astype(('>' if msb else '<') + dt)
    mhd = tmp_path / 'vol.mhd'
    if local:
        mhd.write_bytes(_mhd_text(shape, etype, msb, 'LOCAL').encode() + raw.tobytes())
    else:
        mhd.write_text(_mhd_text(shape, etype, msb, 'vol.raw'))
        (tmp_path / 'vol.raw').write_bytes(raw.tobytes())
    vol, meta = read_volume(str(mhd))
    assert meta['format'] == 'metaimage'
    assert meta['source_orientation'] == ('L', 'P', 'S')  # identity matrix in LPS space
    # LPS -> RAS flips x and y
    np.testing.assert_array_equal(vol, xyz.astype(np.float32)[::-1, ::-1, :])
    np.testing.assert_allclose(meta['spacing'], (0.7, 0.8, 2.5))
    # voxel (0, 0, 0) of the result is stored voxel (4, 3, 0): LPS (-1 + 4*.7, 2 + 3*.8, 3)
    np.testing.assert_allclose(meta['affine'][:3, 3], (-(-1 + 2.8), -(2 + 2.4), 3.0))


def test_metaimage_header_errors(tmp_path):
    mhd = tmp_path / 'h.mhd'
    mhd.write_text(_mhd_text((2, 2, 2), 'MET_WEIRD', False, 'h.raw'))
    with pytest.raises(ImageReadError, match=r'h\.mhd.*ElementType'):
        read_volume(str(mhd))
    mhd.write_text(_mhd_text((2, 2, 2), 'MET_SHORT', False, 'h.raw').replace(
        'DimSize = 2 2 2', 'DimSize = 2 2'))
    with pytest.raises(ImageReadError, match='DimSize'):
        read_volume(str(mhd))
    mhd.write_text(_mhd_text((2, 2, 2), 'MET_SHORT', False, 'h.raw').replace(
        'BinaryDataByteOrderMSB = False', 'BinaryDataByteOrderMSB = maybe'))
    with pytest.raises(ImageReadError, match='BinaryDataByteOrderMSB'):
        read_volume(str(mhd))
    mhd.write_text(_mhd_text((2, 2, 2), 'MET_SHORT', False, 'h.raw'))
    (tmp_path / 'h.raw').write_bytes(b'\x00' * 10)
    with pytest.raises(ImageReadError, match='truncated'):
        read_volume(str(mhd))
    hdr, _ = read_mhd_header(str(mhd))
    assert hdr['shape'] == (2, 2, 2) and hdr['dtype'] == np.dtype('<i2')


def test_metaimage_nan_refused(tmp_path):
    xyz = np.zeros((2, 3, 4), np.float32)
    xyz[1, 1, 1] = np.inf
    mhd = tmp_path / 'n.mhd'
    mhd.write_bytes(_mhd_text((2, 3, 4), 'MET_FLOAT', False, 'LOCAL').encode() +
                    xyz.transpose(2, 1, 0).astype('<f4').tobytes())
    with pytest.raises(ImageReadError, match=r'n\.mhd.*not finite'):
        read_volume(str(mhd))


# ----------------------------------------------------------------------------- hu_window


def test_hu_window_values():
    x = np.array([-2000, -1000, -500, 0, 250, 1000, 3000], dtype=np.float32)
    np.testing.assert_allclose(hu_window(x), [0, 0, 0.25, 0.5, 0.625, 1, 1])
    out = hu_window(x, low=-200, high=200)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0, 0, 0, 0.5, 1, 1, 1])
    with pytest.raises(ValueError):
        hu_window(x, low=1, high=1)


# ----------------------------------------------------------------------------- review fixes


def test_metaimage_local_file_opened_and_read_once(tmp_path, monkeypatch):
    import builtins

    import dira_mm.datasets.volume_readers as vr
    shape = (5, 4, 3)
    xyz = np.arange(60, dtype=np.int16).reshape(shape)
    raw = np.ascontiguousarray(xyz.transpose(2, 1, 0)).tobytes()
    mha = tmp_path / 'vol.mha'
    mha.write_bytes(_mhd_text(shape, 'MET_SHORT', False, 'LOCAL').encode() + raw)
    opened = []

    def counting_open(path, *args, **kwargs):
        opened.append(os.fspath(path))
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(vr, 'open', counting_open, raising=False)
    vol, _ = read_volume(str(mha))
    assert opened == [str(mha)]  # header and data from one open file
    np.testing.assert_array_equal(vol, xyz.astype(np.float32)[::-1, ::-1, :])
    hdr, start = read_mhd_header(str(mha))  # header only: stops at ElementDataFile
    assert start == len(mha.read_bytes()) - len(raw) and hdr['shape'] == shape


@pytest.mark.parametrize('etype,dt,checks', [('MET_SHORT', 'i2', 0), ('MET_FLOAT', 'f4', 1)])
def test_integer_volumes_one_copy_no_finite_check(tmp_path, monkeypatch, etype, dt, checks):
    import dira_mm.datasets.volume_readers as vr
    xyz = np.arange(60).reshape(5, 4, 3).astype(dt)
    (tmp_path / 'v.raw').write_bytes(np.ascontiguousarray(xyz.transpose(2, 1, 0)).tobytes())
    (tmp_path / 'v.mhd').write_text(_mhd_text((5, 4, 3), etype, False, 'v.raw'))
    calls = []
    real = vr._check_finite
    monkeypatch.setattr(vr, '_check_finite', lambda *a: calls.append(1) or real(*a))
    vol, _ = read_volume(str(tmp_path / 'v.mhd'))
    assert len(calls) == checks  # integers cannot be NaN/Inf
    assert vol.dtype == np.float32 and vol.flags.c_contiguous and vol.flags.writeable
    assert vol.base is None or vol.base.base is None  # owns its memory: one conversion
    np.testing.assert_array_equal(vol, xyz.astype(np.float32)[::-1, ::-1, :])


def test_dicom_series_parsed_once_and_truncated_slice(tmp_path, monkeypatch):
    import dira_mm.datasets.volume_readers as vr  # noqa: F401
    folder = str(tmp_path / 'series')
    stored = _write_series(folder, n=5)
    expected, _ = read_volume(folder)
    calls = []
    real = pydicom.dcmread
    monkeypatch.setattr(pydicom, 'dcmread', lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    vol, meta = read_volume(folder)
    assert len(calls) == 5 and len(set(calls)) == 5  # each file parsed once
    np.testing.assert_array_equal(vol, expected)
    assert vol[:, :, 2].max() == stored[2].max() - 1024  # HU by value, slice order kept
    # a slice whose pixel data is cut short: an error naming the folder
    name = sorted(os.listdir(folder))[0]
    data = open(os.path.join(folder, name), 'rb').read()
    with open(os.path.join(folder, name), 'wb') as f:
        f.write(data[:-5000])
    with pytest.raises(ImageReadError, match='series'):
        read_volume(folder)


def test_resample_volume_spacing_and_values():
    from dira_mm.datasets import resample_volume
    x = np.arange(8, dtype=np.float32)
    vol = np.broadcast_to((x[:, None, None] * 10 + np.arange(4)[None, None, :]),
                          (8, 6, 4)).astype(np.float32)
    aff = np.diag([1.0, 1.0, 2.0, 1.0])
    aff[:3, 3] = (5, 6, 7)
    out, meta = resample_volume(vol, dict(affine=aff, spacing=(1.0, 1.0, 2.0)), (2.0, None, 1.0))
    assert out.shape == (4, 6, 7) and out.dtype == np.float32
    assert meta['spacing'] == (2.0, 1.0, 1.0) and meta['source_spacing'] == (1.0, 1.0, 2.0)
    np.testing.assert_allclose(meta['affine'][:3, 3], (5, 6, 7))  # first voxel centre kept
    # x: every second voxel; z: linear interpolation half-way between the slices
    np.testing.assert_allclose(out[:, 0, 0], [0, 20, 40, 60], atol=1e-4)
    np.testing.assert_allclose(out[0, 0, :], [0, 0.5, 1, 1.5, 2, 2.5, 3], atol=1e-4)
    same, meta2 = resample_volume(vol, dict(affine=aff, spacing=(1.0, 1.0, 2.0)), (1, 1, 2))
    assert same is vol and meta2['spacing'] == (1.0, 1.0, 2.0)
    with pytest.raises(ValueError, match='positive'):
        resample_volume(vol, dict(affine=aff, spacing=(1, 1, 2)), (1, 0, 1))
