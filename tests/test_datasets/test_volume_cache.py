"""The decoded-volume cache: LoadVolume(cache_dir=...) and DecodedVolumeCache."""
import os
import shutil

import nibabel as nib
import numpy as np
import pytest

import dira_mm.datasets.transforms.volume_loading as vl
from dira_mm.datasets import DecodedVolumeCache, NonFinitePixelsWarning
from dira_mm.datasets.transforms import LoadVolume


def _ct(shape=(20, 18, 12), seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(-1300, 1300, size=shape).astype(np.int16)


def _nifti(path, data, spacing=(0.8, 0.8, 2.0)):
    nib.save(nib.Nifti1Image(data, np.diag(list(spacing) + [1.0])), str(path))
    return str(path)


@pytest.fixture
def reads(monkeypatch):
    """Counts the calls of the volume reader made by LoadVolume."""
    calls = []
    real = vl.read_volume

    def counting(path, **kwargs):
        calls.append(path)
        return real(path, **kwargs)

    monkeypatch.setattr(vl, 'read_volume', counting)
    return calls


def _entries(root):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)


def test_hit_equals_fresh_decode_and_reads_once(tmp_path, reads):
    path = _nifti(tmp_path / 'ct.nii.gz', _ct())
    cache = str(tmp_path / 'cache')
    fresh = LoadVolume(keep_hu=True, spacing=(1.6, 1.6, 2.0))(dict(img_path=path))
    assert len(reads) == 1
    t = LoadVolume(keep_hu=True, spacing=(1.6, 1.6, 2.0), cache_dir=cache)
    first = t(dict(img_path=path))
    assert len(reads) == 2  # a miss decodes
    assert len(_entries(cache)) == 4  # windowed + HU volumes, each .npy + .json
    for _ in range(3):
        hit = t(dict(img_path=path))
    assert len(reads) == 2  # hits do not read the file again
    for out in (first, hit):
        assert out['img'].dtype == np.float32 and out['img'].shape == (1, 11, 10, 12)
        np.testing.assert_array_equal(out['img'], fresh['img'])  # bit for bit
        np.testing.assert_array_equal(out['img_hu'], fresh['img_hu'])
        np.testing.assert_array_equal(out['affine'], fresh['affine'])
        for k in ('spacing', 'source_spacing', 'img_shape', 'hu_window', 'spatial_dims'):
            assert out[k] == fresh[k], k
    np.testing.assert_allclose(hit['spacing'], (1.6, 1.6, 2.0), rtol=1e-6)
    np.testing.assert_allclose(hit['source_spacing'], (0.8, 0.8, 2.0), rtol=1e-6)
    # memory-mapped, copy-on-write: writing into the array leaves the cache file unchanged
    assert isinstance(hit['img'].base, np.memmap) or isinstance(hit['img'], np.memmap)
    hit['img'][...] = 7
    np.testing.assert_array_equal(t(dict(img_path=path))['img'], fresh['img'])
    # other options are other entries: the window, the spacing
    LoadVolume(window=(-175, 250), cache_dir=cache)(dict(img_path=path))
    assert len(reads) == 3
    LoadVolume(spacing=(1.6, 1.6, 2.0), cache_dir=cache)(dict(img_path=path))
    assert len(reads) == 3  # same window + spacing as t: its windowed entry is shared


def test_changed_file_is_decoded_again(tmp_path, reads):
    path = _nifti(tmp_path / 'ct.nii', _ct())
    t = LoadVolume(cache_dir=str(tmp_path / 'cache'))
    t(dict(img_path=path))
    _nifti(path, _ct(seed=1))
    os.utime(path, ns=(1, 1))  # a new modification time
    out = t(dict(img_path=path))
    assert len(reads) == 2
    np.testing.assert_array_equal(out['img'], LoadVolume()(dict(img_path=path))['img'])


@pytest.mark.parametrize('damage', ['truncate', 'empty', 'garble', 'no_meta', 'bad_meta'])
def test_damaged_entry_removed_and_decoded_again(tmp_path, reads, mm_logs, damage):
    path = _nifti(tmp_path / 'ct.nii', _ct())
    cache = str(tmp_path / 'cache')
    t = LoadVolume(cache_dir=cache)
    fresh = t(dict(img_path=path))['img'].copy()
    npy = [e for e in _entries(cache) if e.endswith('.npy')][0]
    meta = npy[:-4] + '.json'
    if damage == 'truncate':
        with open(npy, 'r+b') as f:
            f.truncate(os.path.getsize(npy) - 100)
    elif damage == 'empty':
        open(npy, 'wb').close()
    elif damage == 'garble':
        with open(npy, 'r+b') as f:
            f.write(b'\x93NUMPY\x01\x00\xff\xffgarbage')
    elif damage == 'no_meta':
        os.remove(meta)
    else:
        with open(meta, 'w') as f:
            f.write('{"shape": [1, 2, 3]}')
    out = t(dict(img_path=path))
    assert len(reads) == 2  # decoded again
    np.testing.assert_array_equal(out['img'], fresh)
    assert any('is damaged' in m and npy in m for m in mm_logs.messages)
    assert os.path.isfile(npy) and os.path.isfile(meta)  # written anew
    out = t(dict(img_path=path))
    assert len(reads) == 2  # and used again


def test_dicom_series_folder_key_and_unwritable_cache(tmp_path):
    series = tmp_path / 'series'
    series.mkdir()
    (series / 'a.dcm').write_bytes(b'x')
    cache = DecodedVolumeCache(str(tmp_path / 'cache'))
    k1 = cache.key(str(series), 'o')
    (series / 'b.dcm').write_bytes(b'y')  # a slice added: another key
    k2 = cache.key(str(series), 'o')
    (series / 'b.dcm').write_bytes(b'yy')  # a slice rewritten: another key
    assert len({k1, k2, cache.key(str(series), 'o')}) == 3
    assert cache.key(str(series), 'p') != cache.key(str(series), 'o')
    # a cache that cannot be written is ignored
    vol = np.zeros((2, 3, 4), np.float32)
    shutil.rmtree(cache.root)
    open(cache.root, 'w').close()  # a file where the folder should be
    cache.store(str(series), 'o', vol, dict(affine=np.eye(4), spacing=(1, 1, 1)))
    assert cache.load(str(series), 'o') is None


def test_filled_volume_not_cached(tmp_path, reads):
    data = _ct().astype(np.float32)
    data[1, 2, 3] = np.nan
    path = _nifti(tmp_path / 'nan.nii', data)
    t = LoadVolume(nonfinite='fill', cache_dir=str(tmp_path / 'cache'))
    for n in (1, 2):
        with pytest.warns(NonFinitePixelsWarning):
            t(dict(img_path=path))
        assert len(reads) == n  # the warning recurs: never served from the cache
    assert _entries(str(tmp_path / 'cache')) == []


def test_metaimage_data_file_in_key(tmp_path, reads):
    """A re-exported .raw under an unchanged .mhd header is decoded again."""
    from dira_mm.datasets.ct_phantom_data import write_metaimage
    hdr = str(tmp_path / 'ct.mhd')
    first, second = _ct(seed=1), _ct(seed=2)
    write_metaimage(hdr, first, np.eye(4))
    raw_new = tmp_path / 'new'
    write_metaimage(str(raw_new) + '.mhd', second, np.eye(4))
    t = LoadVolume(window=None, cache_dir=str(tmp_path / 'cache'))
    np.testing.assert_array_equal(t(dict(img_path=hdr))['img'][0], first)
    assert len(t(dict(img_path=hdr))['img']) and len(reads) == 1  # a hit
    header_stat = os.stat(hdr)
    shutil.copyfile(str(raw_new) + '.raw', tmp_path / 'ct.raw')  # same size, new voxels
    os.utime(tmp_path / 'ct.raw', ns=(header_stat.st_atime_ns, header_stat.st_mtime_ns + 10**9))
    assert os.stat(hdr).st_mtime_ns == header_stat.st_mtime_ns
    np.testing.assert_array_equal(t(dict(img_path=hdr))['img'][0], second)
    assert len(reads) == 2
    os.remove(tmp_path / 'ct.raw')  # a missing data file: decoded, which reports it
    from dira_mm.datasets.readers import ImageReadError
    with pytest.raises(ImageReadError):
        t(dict(img_path=hdr))


def test_hit_keeps_max_voxels_check(tmp_path, reads):
    from dira_mm.datasets.readers import ImageReadError
    path = _nifti(tmp_path / 'ct.nii.gz', _ct())
    cache = str(tmp_path / 'cache')
    LoadVolume(cache_dir=cache, max_voxels=None)(dict(img_path=path))
    with pytest.raises(ImageReadError, match='max_voxels'):
        LoadVolume(cache_dir=cache, max_voxels=1000)(dict(img_path=path))
    LoadVolume(cache_dir=cache, max_voxels=None)(dict(img_path=path))
    assert len(reads) == 2  # the refused read, then a hit of the first entry
