"""The decoded-image cache returns the decoder's exact pixels and stays correct."""
import os
import time

import cv2
import numpy as np
import pytest

from dira_mm.datasets import DecodedImageCache, ImageReadError, LoadMedicalImage


def _png(path, value=None, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (40, 50), dtype=np.uint8) if value is None else \
        np.full((40, 50), value, np.uint8)
    cv2.imwrite(str(path), img)
    return img


def test_cache_returns_identical_pixels_and_hits(tmp_path):
    img = _png(tmp_path / 'a.png')
    plain = LoadMedicalImage()
    cached = LoadMedicalImage(cache_dir=str(tmp_path / 'cache'))
    first = cached(dict(img_path=str(tmp_path / 'a.png')))['img']
    assert np.array_equal(first, img)
    entries = [f for _, _, fs in os.walk(tmp_path / 'cache') for f in fs]
    assert len(entries) == 1 and entries[0].endswith('.npy')
    # a hit does not decode: prove it by replacing the decoder with one that fails
    calls = []
    out = cached._cache.get(str(tmp_path / 'a.png'), repr(sorted(dict(
        window=None, value_range=None, invert_monochrome1=True).items())),
        lambda p: calls.append(p))
    assert calls == [] and np.array_equal(out, img)
    assert np.array_equal(plain(dict(img_path=str(tmp_path / 'a.png')))['img'], first)


def test_edited_file_and_other_options_are_decoded_again(tmp_path):
    path = tmp_path / 'a.png'
    _png(path, value=10)
    cache_dir = str(tmp_path / 'cache')
    t = LoadMedicalImage(cache_dir=cache_dir)
    assert t(dict(img_path=str(path)))['img'].max() == 10
    time.sleep(0.01)
    _png(path, value=200)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert t(dict(img_path=str(path)))['img'].max() == 200
    cache = DecodedImageCache(cache_dir)
    assert cache.key(str(path), 'a') != cache.key(str(path), 'b')


def test_damaged_entry_is_replaced(tmp_path):
    img = _png(tmp_path / 'a.png')
    t = LoadMedicalImage(cache_dir=str(tmp_path / 'cache'))
    t(dict(img_path=str(tmp_path / 'a.png')))
    entry = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path / 'cache') for f in fs][0]
    with open(entry, 'wb') as f:
        f.write(b'\x93NUMPY garbage')
    assert np.array_equal(t(dict(img_path=str(tmp_path / 'a.png')))['img'], img)
    assert np.array_equal(np.load(entry), img)


def test_missing_file_still_names_the_file_and_remote_is_refused(tmp_path):
    t = LoadMedicalImage(cache_dir=str(tmp_path / 'cache'))
    with pytest.raises(ImageReadError, match='missing.png'):
        t(dict(img_path=str(tmp_path / 'missing.png')))
    with pytest.raises(ValueError, match='local files only'):
        LoadMedicalImage(cache_dir=str(tmp_path), backend_args=dict(backend='local'))


def test_unwritable_cache_does_not_stop_reading(tmp_path, monkeypatch):
    img = _png(tmp_path / 'a.png')
    cache = DecodedImageCache(str(tmp_path / 'cache'))
    monkeypatch.setattr('tempfile.mkstemp', lambda **k: (_ for _ in ()).throw(OSError('full')))
    out = cache.get(str(tmp_path / 'a.png'), 'o', lambda p: img)
    assert np.array_equal(out, img)
    assert not [f for _, _, fs in os.walk(tmp_path / 'cache') for f in fs]


def _entry_bytes(img, shape=None, descr=None):
    """A .npy entry; ``shape``/``descr`` forge its header."""
    import io
    f = io.BytesIO()
    np.save(f, img)
    data = f.getvalue()
    if shape is None and descr is None:
        return data
    header = {'descr': descr or '|u1', 'fortran_order': False, 'shape': shape or img.shape}
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue() + img.tobytes()


DAMAGED = {
    'empty': lambda img, good: b'',
    'truncated': lambda img, good: good[:len(good) - 7],
    'header_only': lambda img, good: good[:128],
    # crashed np.load with tokenize.TokenError before the header was checked first
    'garbled_header': lambda img, good: good.replace(b'(40, 50)', b'(4000000'),
    'wrong_dtype': lambda img, good: _entry_bytes(img.astype(np.float64)),
    'wrong_shape': lambda img, good: _entry_bytes(img[None]),
    'forged_huge_shape': lambda img, good: _entry_bytes(img, shape=(10**7, 10**7)),
    'too_long': lambda img, good: good + b'\0' * 10,
}


@pytest.mark.parametrize('damage', sorted(DAMAGED))
def test_damaged_entry_is_redecoded_with_a_warning(tmp_path, damage):
    import logging

    from mmengine.logging import MMLogger

    img = _png(tmp_path / 'a.png')
    t = LoadMedicalImage(cache_dir=str(tmp_path / 'cache'))
    t(dict(img_path=str(tmp_path / 'a.png')))
    entry = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path / 'cache') for f in fs][0]
    good = open(entry, 'rb').read()
    with open(entry, 'wb') as f:
        f.write(DAMAGED[damage](img, good))
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        out = t(dict(img_path=str(tmp_path / 'a.png')))['img']
    finally:
        logger.removeHandler(handler)
    assert out.dtype == np.uint8 and np.array_equal(out, img)
    messages = [r.getMessage() for r in records]
    assert any('damaged' in m and entry in m and 'a.png' in m for m in messages), messages
    # the entry was rewritten with the fresh decode
    assert open(entry, 'rb').read() == good


def test_filled_images_are_not_cached(tmp_path):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    arr[0, 1] = np.nan
    np.save(tmp_path / 'a.npy', arr)
    t = LoadMedicalImage(cache_dir=str(tmp_path / 'cache'), nonfinite='fill')
    out = t(dict(img_path=str(tmp_path / 'a.npy')))['img']
    assert out[0, 1] == 0 and out[2, 3] == 255
    assert not [f for _, _, fs in os.walk(tmp_path / 'cache') for f in fs]
    # a clean float image is cached as usual
    np.save(tmp_path / 'b.npy', np.nan_to_num(arr))
    t(dict(img_path=str(tmp_path / 'b.npy')))
    assert len([f for _, _, fs in os.walk(tmp_path / 'cache') for f in fs]) == 1
