"""Joint image + mask transforms keep the two aligned; packing; mask loading errors."""
import cv2
import numpy as np
import pytest
import torch

from dira_mm.datasets.transforms import (LoadSegMask, PackSegInputs, SegRandomFlip,
                                         SegRandomResizedCrop, SegResize)


def _pair(seed=0, shape=(90, 70)):
    """A blobby random mask and an image that shows it: 30 outside, 230 inside."""
    rng = np.random.default_rng(seed)
    low = rng.random((max(shape[0] // 10, 2), max(shape[1] // 10, 2))).astype(np.float32)
    mask = (cv2.resize(low, shape[::-1], interpolation=cv2.INTER_CUBIC) > 0.5).astype(np.uint8)
    return np.where(mask > 0, 230, 30).astype(np.uint8), mask


def _shows_its_mask(results):
    return np.array_equal(results['gt_mask'], (results['img'] > 130).astype(np.uint8))


@pytest.mark.parametrize('interpolation', ['nearest', 'bilinear', 'area'])
def test_resize_moves_image_and_mask_alike(interpolation):
    img, mask = _pair()
    out = SegResize(size=(48, 40), interpolation=interpolation)(dict(img=img, gt_mask=mask))
    assert out['img'].shape == out['gt_mask'].shape == out['img_shape'] == (48, 40)
    assert set(np.unique(out['gt_mask'])) <= {0, 1}
    if interpolation == 'nearest':
        assert _shows_its_mask(out)
    else:  # the mask is the image's own interpolation thresholded at half way
        agree = out['gt_mask'] == (out['img'] >= 130)
        assert agree.mean() > 0.99


def test_seeded_crop_and_flip_keep_the_pair_aligned():
    img, mask = _pair(1)
    crop = SegRandomResizedCrop(size=32, scale=(0.2, 0.6), prob=1.0, interpolation='nearest')
    flip = SegRandomFlip(prob=0.5)
    boxes, flips = set(), set()
    for seed in range(12):
        results = dict(img=img.copy(), gt_mask=mask.copy(), rng=np.random.default_rng(seed))
        out = flip(crop(results))
        assert out['img'].shape == out['gt_mask'].shape == (32, 32)
        assert _shows_its_mask(out), seed
        # the same seed gives the same pair
        again = flip(crop(dict(img=img.copy(), gt_mask=mask.copy(),
                               rng=np.random.default_rng(seed))))
        assert np.array_equal(again['img'], out['img'])
        assert np.array_equal(again['gt_mask'], out['gt_mask'])
        # the mask is the crop of the original mask at crop_bbox (flipped when flipped)
        x1, y1, x2, y2 = out['crop_bbox']
        expected = cv2.resize(mask[y1:y2, x1:x2], (32, 32), interpolation=cv2.INTER_NEAREST)
        if out['flip']:
            expected = expected[:, ::-1]
        np.testing.assert_array_equal(out['gt_mask'], expected)
        boxes.add(tuple(out['crop_bbox']))
        flips.add(out['flip'])
    assert len(boxes) > 6 and flips == {True, False}


def test_crop_probability_zero_only_resizes():
    img, mask = _pair(2, shape=(40, 40))
    out = SegRandomResizedCrop(size=40, prob=0.0)(
        dict(img=img, gt_mask=mask, rng=np.random.default_rng(0)))
    np.testing.assert_array_equal(out['gt_mask'], mask)
    assert list(out['crop_bbox']) == [0, 0, 40, 40]


def test_vertical_flip_of_both():
    img, mask = _pair(3)
    out = SegRandomFlip(prob=1.0, direction='vertical')(dict(img=img, gt_mask=mask))
    np.testing.assert_array_equal(out['img'], img[::-1])
    np.testing.assert_array_equal(out['gt_mask'], mask[::-1])


def test_pack_and_mask_loading_errors(tmp_path):
    img, mask = _pair(4, shape=(8, 6))
    packed = PackSegInputs()(dict(img=img, gt_mask=mask, img_path='x.png', flip=False))
    assert packed['inputs'].dtype == torch.uint8 and packed['inputs'].shape == (1, 8, 6)
    sample = packed['data_samples']
    assert sample.gt_mask.dtype == torch.uint8 and sample.gt_mask.shape == (1, 8, 6)
    assert sample.img_path == 'x.png' and sample.skipped == 0
    cv2.imwrite(str(tmp_path / 'm.png'), np.zeros((5, 5), np.uint8))
    with pytest.raises(ValueError, match=r'm.png.*\(5, 5\).*x.png.*\(8, 6\)'):
        LoadSegMask()(dict(img=img, img_path='x.png', seg_map_path=str(tmp_path / 'm.png')))
    with pytest.raises(KeyError, match='neither'):
        LoadSegMask()(dict(img=img))
    with pytest.raises(ValueError, match='differ in size'):
        SegResize(8)(dict(img=img, gt_mask=mask[:4]))
