"""DiRADistortion: branch shares, official size ranges, stop rule, pixel values, overlap.

Probabilities are checked with seeded generators against +-4 sigma binomial bounds.
"""
import math

import numpy as np
import pytest

from dira_mm.datasets.transforms import DiRADistortion
from dira_mm.registry import TRANSFORMS


def _bound(p: float, n: int, k: float = 4.) -> float:
    return k * math.sqrt(p * (1 - p) / n)


def _image(size: int = 224, seed: int = 0) -> np.ndarray:
    """uint8 image with no zero pixel, so that every painted pixel is visible."""
    return np.random.default_rng(seed).integers(1, 256, (size, size), dtype=np.uint8)


def _unique_image(size: int = 224) -> np.ndarray:
    """Every pixel different: every moved pixel changes."""
    return np.arange(size * size, dtype=np.int32).reshape(size, size)


def _box_mask(boxes: np.ndarray, shape) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for t, l, h, w in boxes:
        mask[t:t + h, l:l + w] = True
    return mask


def _overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and \
        b[1] < a[1] + a[3]


def test_branch_shares():
    t = TRANSFORMS.build(dict(type='DiRADistortion'))
    img = np.ones((224, 224), np.uint8)
    rng = np.random.default_rng(0)
    n = 12000
    branches = [t({'img': img, 'rng': rng})['distortion'] for _ in range(n)]
    for name, p in (('inpaint', .30), ('outpaint', .05), ('swap', .30), ('none', .35)):
        share = branches.count(name) / n
        assert abs(share - p) < _bound(p, n), (name, share)


def test_inpaint_block_count_sizes_and_values():
    t = DiRADistortion(inpaint_prob=1., outpaint_prob=0., swap_prob=0.)
    img = _image()
    rng = np.random.default_rng(1)
    n = 4000
    counts = np.zeros(11, int)
    all_boxes = []
    for _ in range(n):
        out = t({'img': img, 'rng': rng})
        assert out['distortion'] == 'inpaint'
        boxes = out['distortion_boxes']
        counts[len(boxes)] += 1
        all_boxes.append(boxes)
    # P(k) = 0.9**(k-1) * 0.1 for k < 10 and P(10) = 0.9**9.
    for k in range(1, 11):
        p = 0.9**(k - 1) * (0.1 if k < 10 else 1.)
        assert abs(counts[k] / n - p) < _bound(p, n), (k, counts[k] / n, p)
    mean_blocks = (1 - 0.9**10) / 0.1  # 6.51
    assert abs((counts * np.arange(11)).sum() / n - mean_blocks) < 0.15
    boxes = np.concatenate(all_boxes)
    tops, lefts, heights, widths = boxes.T
    # randint(10, 70), inclusive at both ends, and randint(3, 224 - size - 3).
    for size in (heights, widths):
        assert size.min() == 10 and size.max() == 70
    assert tops.min() == 3 and (tops + heights).max() == 224 - 3
    assert lefts.min() == 3 and (lefts + widths).max() == 224 - 3
    # Values: zero inside the union of the blocks, unchanged outside.
    out = t({'img': img, 'rng': np.random.default_rng(2)})
    mask = _box_mask(out['distortion_boxes'], img.shape)
    assert (out['img'][mask] == 0).all()
    np.testing.assert_array_equal(out['img'][~mask], img[~mask])


def test_outpaint_windows_and_values():
    t = DiRADistortion(inpaint_prob=0., outpaint_prob=1., swap_prob=0.)
    img = _image()
    rng = np.random.default_rng(3)
    n = 1500
    nums, sizes, changed = [], [], []
    for _ in range(n):
        out = t({'img': img, 'rng': rng})
        assert out['distortion'] == 'outpaint'
        boxes = out['distortion_boxes']
        nums.append(len(boxes))
        sizes.append(boxes)
        mask = _box_mask(boxes, img.shape)
        np.testing.assert_array_equal(out['img'][mask], img[mask])
        assert (out['img'][~mask] == 0).all()
        changed.append((~mask).mean())
    boxes = np.concatenate(sizes)
    tops, lefts, heights, widths = boxes.T
    # Side 224 - randint(50, 70): 154..174; position randint(3, 224 - side - 3).
    for side in (heights, widths):
        assert side.min() == 154 and side.max() == 174
    assert tops.min() == 3 and (tops + heights).max() == 221
    assert lefts.min() == 3 and (lefts + widths).max() == 221
    p10 = 0.9**9
    assert abs(np.mean(np.array(nums) == 10) - p10) < _bound(p10, n)
    assert abs(np.mean(nums) - (1 - 0.9**10) / 0.1) < 0.25
    # The official pipeline changes ~23% of the pixels in this branch (reference notes).
    assert 0.18 < np.mean(changed) < 0.28


def _apply_swaps(img: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Reference: swap each pair, always reading from the original image."""
    out = img.copy()
    for a, b in zip(boxes[0::2], boxes[1::2]):
        (t1, l1, h, w), (t2, l2, _, _) = a, b
        out[t1:t1 + h, l1:l1 + w] = img[t2:t2 + h, l2:l2 + w]
        out[t2:t2 + h, l2:l2 + w] = img[t1:t1 + h, l1:l1 + w]
    return out


@pytest.mark.parametrize('official', [False, True])
def test_swap_pixels_sizes_and_overlap(official):
    t = DiRADistortion(inpaint_prob=0., outpaint_prob=0., swap_prob=1.,
                       official_overlap_check=official)
    img = _unique_image()
    rng = np.random.default_rng(4)
    n = 600
    overlapping_pairs, changed = 0, []
    all_boxes = []
    for _ in range(n):
        out = t({'img': img, 'rng': rng})
        boxes = out['distortion_boxes']
        assert out['distortion'] == 'swap' and len(boxes) == 20  # exactly 10 pairs
        np.testing.assert_array_equal(out['img'], _apply_swaps(img, boxes))
        pairs = list(zip(boxes[0::2], boxes[1::2]))
        assert all((a[2:] == b[2:]).all() for a, b in pairs)  # same size within a pair
        overlapping_pairs += sum(_overlap(a, b) for a, b in pairs)
        n_changed = int((out['img'] != img).sum())
        assert n_changed <= 2 * int((boxes[0::2, 2] * boxes[0::2, 3]).sum())
        changed.append(n_changed / img.size)
        all_boxes.append(boxes)
    boxes = np.concatenate(all_boxes)
    for size in (boxes[:, 2], boxes[:, 3]):
        assert size.min() == 10 and size.max() == 15
    assert boxes[:, 0].min() == 3 and (boxes[:, 0] + boxes[:, 2]).max() == 221
    # 10 pairs of ~12.5 x 12.5 blocks: at most 2 * 10 * 12.5**2 / 224**2 = 6.2% (less
    # where blocks of different pairs overlap); the official pipeline measures ~6%.
    assert 0.055 < np.mean(changed) < 0.0625
    if official:
        # The official test is always true: a pair overlaps with probability ~1.5%.
        assert overlapping_pairs > 0.005 * 10 * n
    else:
        assert overlapping_pairs == 0


def test_official_overlap_check_is_always_true():
    t = DiRADistortion(official_overlap_check=True)
    rng = np.random.default_rng(5)
    t1, l1, t2, l2 = (rng.integers(0, 224, 10000) for _ in range(4))
    h, w = rng.integers(1, 100, 10000), rng.integers(1, 100, 10000)
    assert t._overlap_free(t1, l1, t2, l2, h, w).all()
    fixed = DiRADistortion()
    ok = fixed._overlap_free(t1, l1, t2, l2, h, w)
    manual = np.array([not _overlap((a, b, c, d), (e, f, c, d))
                       for a, b, e, f, c, d in zip(t1, l1, t2, l2, h, w)])
    np.testing.assert_array_equal(ok, manual)


def test_sizes_scale_with_the_image():
    t = DiRADistortion(inpaint_prob=1., outpaint_prob=0., swap_prob=0.)
    rng = np.random.default_rng(6)
    boxes = np.concatenate(
        [t({'img': _image(448), 'rng': rng})['distortion_boxes'] for _ in range(300)])
    assert boxes[:, 2:].min() == 20 and boxes[:, 2:].max() == 140
    assert boxes[:, :2].min() == 6
    # Tiny images still work (sizes clamp to the image).
    for _ in range(50):
        for branch_probs in ((1, 0, 0), (0, 1, 0), (0, 0, 1)):
            d = DiRADistortion(*branch_probs)
            out = d({'img': _image(12), 'rng': rng})
            assert out['img'].shape == (12, 12)


def test_none_branch_input_untouched_multichannel_and_determinism():
    t = DiRADistortion(inpaint_prob=0., outpaint_prob=0., swap_prob=0.)
    img = _image()
    out = t({'img': img, 'rng': np.random.default_rng(0)})
    assert out['distortion'] == 'none' and out['distortion_boxes'].shape == (0, 4)
    np.testing.assert_array_equal(out['img'], img)

    t = DiRADistortion()
    rgb = np.repeat(_image()[..., None], 3, axis=2)
    before = rgb.copy()
    for seed in range(20):
        a = t({'img': rgb, 'rng': np.random.default_rng(seed)})
        b = t({'img': rgb, 'rng': np.random.default_rng(seed)})
        np.testing.assert_array_equal(a['img'], b['img'])
        np.testing.assert_array_equal(a['distortion_boxes'], b['distortion_boxes'])
        assert a['img'].shape == rgb.shape
        assert (a['img'] == a['img'][..., :1]).all()  # channels stay identical
    np.testing.assert_array_equal(rgb, before)  # the input is never written
    assert 'official_overlap_check=False' in repr(t)
    with pytest.raises(ValueError):
        DiRADistortion(inpaint_prob=0.6, swap_prob=0.6)
