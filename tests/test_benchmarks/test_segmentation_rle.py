"""SIIM-ACR run-length encoding: a known example, round trips, errors."""
import numpy as np
import pytest

from dira_mm.datasets import rle_decode, rle_decode_union, rle_encode


def test_known_small_example_is_column_major_with_relative_gaps():
    # 3x4 image, pixels numbered down the columns:  0 3 6 9 / 1 4 7 10 / 2 5 8 11
    # "1 2 3 1": skip 1 (pixel 0), 2 on (1, 2), skip 3 (3, 4, 5), 1 on (6)
    mask = rle_decode('1 2 3 1', (3, 4))
    expected = np.array([[0, 0, 1, 0],
                         [1, 0, 0, 0],
                         [1, 0, 0, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(mask, expected)
    assert rle_encode(expected) == '1 2 3 1'
    # a run touching the last pixel is kept (the challenge's mask2rle drops it)
    last = np.zeros((3, 4), np.uint8)
    last[2, 3] = 1
    assert rle_encode(last) == '11 1'
    np.testing.assert_array_equal(rle_decode('11 1', (3, 4)), last)


@pytest.mark.parametrize('empty', ['-1', ' -1', '', None, 'nan'])
def test_empty_encodings(empty):
    assert not rle_decode(empty, (5, 6)).any()
    assert rle_encode(np.zeros((5, 6))) == '-1'


def test_round_trip_random_masks():
    rng = np.random.default_rng(0)
    for shape, density in (((7, 5), 0.5), ((64, 48), 0.05), ((32, 32), 0.95), ((1, 9), 0.3)):
        mask = (rng.random(shape) < density).astype(np.uint8)
        text = rle_encode(mask)
        np.testing.assert_array_equal(rle_decode(text, shape), mask)
    full = np.ones((4, 4), np.uint8)
    assert rle_encode(full) == '0 16'


def test_union_of_rows_and_bad_input():
    a, b = np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8)
    a[0:2, 0] = 1
    b[1:3, 0] = 1
    b[3, 3] = 1
    union = rle_decode_union([rle_encode(a), ' -1', rle_encode(b)], (4, 4))
    np.testing.assert_array_equal(union, a | b)
    with pytest.raises(ValueError, match='past the'):
        rle_decode('10 10', (4, 4))
    with pytest.raises(ValueError, match='odd number'):
        rle_decode('1 2 3', (4, 4))
    with pytest.raises(ValueError, match='not an integer'):
        rle_decode('1 x', (4, 4))
