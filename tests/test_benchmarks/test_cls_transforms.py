"""Classification transforms: TenCrop/CenterCrop geometry (pixels and torchvision), Resize,
RandomRotation, PackClsInputs."""
import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF

from dira_mm.datasets.transforms import (CenterCrop, PackClsInputs, RandomRotation, Resize,
                                         TenCrop)
from dira_mm.registry import TRANSFORMS


def _position_image(height=10, width=13):
    """Every pixel holds its own index (unique uint8 values)."""
    return np.arange(height * width, dtype=np.uint8).reshape(height, width)


def test_ten_crop_pixels_are_the_expected_boxes():
    img = _position_image()
    crops = TenCrop(size=(4, 5)).transform(dict(img=img))['img']
    flipped = img[:, ::-1]
    # corners, then the centre: top = round((10 - 4) / 2) = 3, left = round((13 - 5) / 2) = 4
    boxes = [(slice(0, 4), slice(0, 5)), (slice(0, 4), slice(8, 13)),
             (slice(6, 10), slice(0, 5)), (slice(6, 10), slice(8, 13)),
             (slice(3, 7), slice(4, 9))]
    expected = [img[b] for b in boxes] + [flipped[b] for b in boxes]
    assert len(crops) == 10
    for got, want in zip(crops, expected):
        assert got.flags['C_CONTIGUOUS'] and np.array_equal(got, want)
    # the flipped image's top-left crop is the mirrored top-right crop of the original
    assert np.array_equal(crops[5], crops[1][:, ::-1])


@pytest.mark.parametrize('shape, size', [((10, 13), (4, 5)), ((11, 11), (4, 4)),
                                         ((9, 12), (6, 7)), ((7, 8), (7, 8))])
def test_ten_crop_and_center_crop_match_torchvision(shape, size):
    img = _position_image(*shape)
    ours = TenCrop(size=size).transform(dict(img=img))['img']
    theirs = TF.ten_crop(torch.from_numpy(img)[None], list(size))
    for got, want in zip(ours, theirs):
        assert np.array_equal(got, want[0].numpy())
    centre = CenterCrop(size=size).transform(dict(img=img))
    assert np.array_equal(centre['img'], TF.center_crop(torch.from_numpy(img)[None],
                                                        list(size))[0].numpy())
    x1, y1, x2, y2 = centre['crop_bbox']
    assert np.array_equal(img[y1:y2, x1:x2], centre['img'])


def test_vertical_ten_crop_and_too_large_crops():
    img = _position_image()
    crops = TenCrop(size=(4, 5), vertical_flip=True).transform(dict(img=img))['img']
    assert np.array_equal(crops[9], img[::-1][3:7, 4:9])
    with pytest.raises(ValueError, match='larger than the image'):
        CenterCrop(size=11).transform(dict(img=img))
    with pytest.raises(ValueError, match='Resize'):
        TenCrop(size=(4, 14)).transform(dict(img=img))


def test_resize_shorter_side_and_exact_size():
    img = np.zeros((100, 80), np.uint8)
    assert Resize(40).transform(dict(img=img))['img'].shape == (50, 40)
    assert Resize(40).transform(dict(img=img.T.copy()))['img'].shape == (40, 50)
    # torchvision truncates the longer side: 256 * 1955 / 1841 = 271.9 -> 271
    assert Resize(256).output_size(1841, 1955) == (256, 271)
    out = Resize((30, 20)).transform(dict(img=img))
    assert out['img'].shape == (30, 20) and out['img_shape'] == (30, 20)
    same = np.arange(64, dtype=np.uint8).reshape(8, 8)
    assert np.array_equal(Resize(8).transform(dict(img=same))['img'], same)


def test_random_rotation_is_seeded_and_geometric():
    img = _position_image(9, 9)
    quarter = RandomRotation(degrees=(90, 90)).transform(dict(img=img))
    assert quarter['rotation'] == 90 and np.array_equal(quarter['img'], np.rot90(img))
    none = RandomRotation(degrees=0).transform(dict(img=img))
    assert np.array_equal(none['img'], img)
    rot = RandomRotation(degrees=7)
    a = rot.transform(dict(img=img, rng=np.random.default_rng([1, 2])))
    b = rot.transform(dict(img=img, rng=np.random.default_rng([1, 2])))
    assert a['rotation'] == b['rotation'] and -7 <= a['rotation'] <= 7
    assert np.array_equal(a['img'], b['img'])
    with pytest.raises(ValueError, match='degrees'):
        RandomRotation(degrees=-1)


def test_pack_one_image_and_ten_crops():
    label = np.array([1, 0, -1], np.float32)
    one = PackClsInputs().transform(dict(img=np.ones((6, 5), np.uint8), gt_label=label,
                                         img_path='x.png'))
    assert one['inputs'].shape == (1, 6, 5) and one['inputs'].dtype == torch.uint8
    sample = one['data_samples']
    assert sample.gt_label.dtype == torch.float32 and sample.gt_label.tolist() == [1, 0, -1]
    assert sample.img_path == 'x.png' and sample.skipped == 0
    pipeline = [TRANSFORMS.build(dict(type=t, size=s)) for t, s in
                (('Resize', 12), ('TenCrop', 8))] + [TRANSFORMS.build(dict(type='PackClsInputs'))]
    results = dict(img=_position_image(), gt_label=label)
    for transform in pipeline:
        results = transform(results)
    assert results['inputs'].shape == (10, 1, 8, 8)
    assert results['data_samples'].num_crops == 10
