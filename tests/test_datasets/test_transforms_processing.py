"""Values and probabilities of the gray per-view transforms (processing.py, utils.py).

Probabilities are checked with seeded generators against +-4 sigma binomial bounds: the
tests are deterministic, and a wrong probability (e.g. 0.5 instead of 0.8) fails them.
"""
import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from torchvision.transforms import RandomResizedCrop as TVRandomResizedCrop

from dira_mm.datasets.transforms import (ColorJitter, GaussianBlur, RandomFlip,
                                         RandomResizedCrop, get_rng)
from dira_mm.registry import TRANSFORMS


def _bound(p: float, n: int, k: float = 4.) -> float:
    """k-sigma half-width of a binomial proportion."""
    return k * math.sqrt(p * (1 - p) / n)


def _smooth_image(h: int = 256, w: int = 256, seed: int = 0) -> np.ndarray:
    """A smooth, asymmetric uint8 image without saturated pixels."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    rng = np.random.default_rng(seed)
    img = 120 + 50 * np.sin(7 * xx + 1) * np.cos(5 * yy) + 30 * xx + rng.normal(0, 4, (h, w))
    return np.clip(img, 20, 235).astype(np.uint8)


# ----------------------------------------------------------------------- get_rng
def test_get_rng_uses_results_rng_or_global_state():
    rng = np.random.default_rng(3)
    assert get_rng({'rng': rng}) is rng
    with pytest.raises(TypeError):
        get_rng({'rng': np.random.RandomState(0)})
    np.random.seed(123)
    a = get_rng({}).random(4)
    np.random.seed(123)
    b = get_rng({}).random(4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, get_rng({}).random(4))


# ------------------------------------------------------------- RandomResizedCrop
def test_random_resized_crop_output_and_bbox():
    img = _smooth_image(300, 400)
    t = TRANSFORMS.build(dict(type='RandomResizedCrop', size=224, scale=(0.2, 1.0)))
    rng = np.random.default_rng(0)
    for _ in range(50):
        out = t({'img': img, 'rng': rng})
        assert out['img'].shape == (224, 224) and out['img'].dtype == np.uint8
        assert out['img'].flags.c_contiguous
        assert out['img_shape'] == (224, 224)
        x1, y1, x2, y2 = out['crop_bbox']
        assert 0 <= x1 < x2 <= 400 and 0 <= y1 < y2 <= 300
    out = RandomResizedCrop(size=(64, 32))({'img': img, 'rng': rng})
    assert out['img'].shape == (64, 32)
    assert 'RandomResizedCrop(size=(224, 224)' in repr(t)


@pytest.mark.parametrize('shape', [(1024, 1024), (300, 420)])
def test_random_resized_crop_box_distribution_matches_torchvision(shape):
    h, w = shape
    n = 3000
    ours = RandomResizedCrop()
    rng = np.random.default_rng(1)
    boxes = np.array([ours.get_params(h, w, rng) for _ in range(n)])
    area = boxes[:, 2] * boxes[:, 3] / (h * w)
    aspect = boxes[:, 3] / boxes[:, 2]
    # Rounding the sides to integers moves the area by < 1 pixel per side.
    tol = 1. / min(boxes[:, 2].min(), boxes[:, 3].min())
    assert area.min() >= 0.2 - 2 * tol and area.max() <= 1.
    assert aspect.min() >= 3 / 4 - tol and aspect.max() <= 4 / 3 + tol
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= h).all()
    assert (boxes[:, 1] >= 0).all() and (boxes[:, 1] + boxes[:, 3] <= w).all()

    torch.manual_seed(1)
    img = torch.empty(1, h, w)
    ref = np.array([TVRandomResizedCrop.get_params(img, (0.2, 1.), (3 / 4, 4 / 3))
                    for _ in range(n)])
    ref_area = ref[:, 2] * ref[:, 3] / (h * w)
    ref_aspect = ref[:, 3] / ref[:, 2]
    # Two independent means: 4 sigma of their difference.
    se = math.sqrt(area.var() / n + ref_area.var() / n)
    assert abs(area.mean() - ref_area.mean()) < 4 * se
    se = math.sqrt(aspect.var() / n + ref_aspect.var() / n)
    assert abs(aspect.mean() - ref_aspect.mean()) < 4 * se
    # Boxes of large area and non-square aspect do not fit and are redrawn, so the
    # mean is below the 0.6 of U[0.2, 1].
    assert 0.45 < area.mean() < 0.6


def test_random_resized_crop_fallback_is_torchvision_central_crop():
    # No box of area >= 90% fits a 10 x 400 strip with ratio in [3/4, 4/3].
    ours = RandomResizedCrop(scale=(0.9, 1.0))
    box = ours.get_params(10, 400, np.random.default_rng(0))
    ref = TVRandomResizedCrop.get_params(torch.empty(1, 10, 400), (0.9, 1.), (3 / 4, 4 / 3))
    assert box == tuple(ref) == (0, 193, 10, 13)


def test_random_resized_crop_resize_matches_pil_bilinear():
    """'area' approximates the antialiased bilinear resize of PIL (the official one)."""
    img = _smooth_image(1024, 1024, seed=2)
    pil = Image.fromarray(img)
    rng = np.random.default_rng(2)
    for prereduce in (True, False):
        t = RandomResizedCrop(prereduce=prereduce)
        for _ in range(10):
            out = t({'img': img, 'rng': rng})
            box = tuple(int(v) for v in out['crop_bbox'])
            ref = np.asarray(pil.resize((224, 224), Image.BILINEAR, box=box))
            diff = np.abs(out['img'].astype(int) - ref)
            assert diff.mean() < 0.75 and diff.max() <= 4
    # Without antialiasing the pixel noise aliases: clearly further from PIL.
    out = RandomResizedCrop(scale=(1., 1.), interpolation='bilinear')({'img': img})
    ref = np.asarray(pil.resize((224, 224), Image.BILINEAR))
    assert np.abs(out['img'].astype(int) - ref).mean() > 1.5


def test_random_resized_crop_prereduce_trims_less_than_one_output_pixel():
    img = _smooth_image(1024, 1024)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    fast, exact = RandomResizedCrop(prereduce=True), RandomResizedCrop(prereduce=False)
    for _ in range(20):
        a, b = fast({'img': img, 'rng': rng_a}), exact({'img': img, 'rng': rng_b})
        size = b['crop_bbox'][2:] - b['crop_bbox'][:2]
        assert (np.abs(a['crop_bbox'] - b['crop_bbox']) < size[[0, 1, 0, 1]] / 224).all()
        assert np.abs(a['img'].astype(int) - b['img']).mean() < 1.


def test_random_resized_crop_enlarging_and_identity():
    img = _smooth_image(100, 100)
    t = RandomResizedCrop(size=224, scale=(1., 1.), ratio=(1., 1.))
    out = t({'img': img, 'rng': np.random.default_rng(0)})
    assert out['img'].shape == (224, 224)
    np.testing.assert_array_equal(out['crop_bbox'], [0, 0, 100, 100])
    ident = RandomResizedCrop(size=100, scale=(1., 1.), ratio=(1., 1.))
    out = ident({'img': img, 'rng': np.random.default_rng(0)})
    np.testing.assert_array_equal(out['img'], img)
    assert out['img'] is not img


def test_random_resized_crop_deterministic():
    img = _smooth_image(512, 512)
    t = RandomResizedCrop()
    a = t({'img': img, 'rng': np.random.default_rng(9)})
    b = t({'img': img, 'rng': np.random.default_rng(9)})
    np.testing.assert_array_equal(a['img'], b['img'])
    np.testing.assert_array_equal(a['crop_bbox'], b['crop_bbox'])


# ------------------------------------------------------------------- ColorJitter
def test_color_jitter_probability():
    img = _smooth_image(32, 32)
    t = TRANSFORMS.build(dict(type='ColorJitter', brightness=0.4, contrast=0.4,
                              saturation=0.4, hue=0.1, prob=0.8))
    rng = np.random.default_rng(0)
    n = 3000
    changed = np.mean([not np.array_equal(t({'img': img, 'rng': rng})['img'], img)
                       for _ in range(n)])
    assert abs(changed - 0.8) < _bound(0.8, n)


@pytest.mark.parametrize('factor', [0.6, 0.73, 1.0, 1.25, 1.4])
def test_color_jitter_brightness_exact(factor):
    t = ColorJitter(brightness=(factor, factor), contrast=0, saturation=0, hue=0, prob=1.)
    out = t({'img': np.full((8, 8), 100, np.uint8), 'rng': np.random.default_rng(0)})['img']
    assert out.dtype == np.uint8
    assert (out == math.floor(100 * factor + 0.5)).all()
    # Clipped at 255.
    out = t({'img': np.full((8, 8), 200, np.uint8), 'rng': np.random.default_rng(0)})['img']
    assert (out == min(255, math.floor(200 * factor + 0.5))).all()


def test_color_jitter_brightness_factor_is_uniform():
    t = ColorJitter(brightness=0.4, contrast=0, saturation=0, hue=0, prob=1.)
    rng = np.random.default_rng(1)
    n = 3000
    values = np.array([t({'img': np.full((4, 4), 100, np.uint8), 'rng': rng})['img'][0, 0]
                       for _ in range(n)]) / 100.
    assert values.min() >= 0.6 and values.max() <= 1.4
    assert values.min() < 0.62 and values.max() > 1.38
    # U[0.6, 1.4]: mean 1, std 0.8 / sqrt(12).
    assert abs(values.mean() - 1.) < 4 * 0.8 / math.sqrt(12 * n)


def test_color_jitter_contrast_blends_with_mean():
    img = _smooth_image(64, 64)
    mean = img.mean()
    t = ColorJitter(brightness=0, contrast=(0.5, 0.5), saturation=0, hue=0, prob=1.)
    out = t({'img': img, 'rng': np.random.default_rng(0)})['img']
    expected = np.clip(np.floor(mean + 0.5 * (img - mean) + 0.5), 0, 255)
    np.testing.assert_array_equal(out, expected)
    rand = ColorJitter(brightness=0, contrast=0.4, saturation=0, hue=0, prob=1.)
    rng = np.random.default_rng(0)
    for _ in range(100):
        out = rand({'img': img, 'rng': rng})['img']
        assert abs(out.mean() - mean) <= 1.


def test_color_jitter_random_order_of_brightness_and_contrast():
    """The two orders differ only through clipping; each happens half of the time."""
    img = np.tile(np.array([20, 100, 180, 240], np.uint8), (4, 1))
    b, c = 1.4, 1.4
    lut_b = ColorJitter.brightness_lut(b)
    bright = lut_b[img]
    b_then_c = ColorJitter.contrast_lut(c, bright.mean())[bright.astype(int)]
    contr = ColorJitter.contrast_lut(c, img.mean())[img]
    c_then_b = lut_b[contr.astype(int)]
    assert not np.array_equal(b_then_c, c_then_b)
    t = ColorJitter(brightness=(b, b), contrast=(c, c), saturation=0, hue=0, prob=1.)
    rng = np.random.default_rng(0)
    n = 2000
    first = 0
    for _ in range(n):
        out = t({'img': img, 'rng': rng})['img']
        if np.array_equal(out, b_then_c):
            first += 1
        else:
            np.testing.assert_array_equal(out, c_then_b)
    assert abs(first / n - 0.5) < _bound(0.5, n)


def test_color_jitter_saturation_and_hue_are_noops_on_gray():
    img = _smooth_image(32, 32)
    t = ColorJitter(brightness=0, contrast=0, saturation=0.4, hue=0.1, prob=1.)
    out = t({'img': img, 'rng': np.random.default_rng(0)})['img']
    np.testing.assert_array_equal(out, img)
    assert t.hue == (-0.1, 0.1)
    with pytest.raises(ValueError):
        ColorJitter(hue=0.6)
    with pytest.raises(ValueError):
        ColorJitter(brightness=-0.1)


# ------------------------------------------------------------------ GaussianBlur
def test_gaussian_blur_probability():
    img = _smooth_image(32, 32)
    t = TRANSFORMS.build(dict(type='GaussianBlur', sigma=(0.5, 2.0), prob=0.5))
    rng = np.random.default_rng(0)
    n = 3000
    changed = np.mean([not np.array_equal(t({'img': img, 'rng': rng})['img'], img)
                       for _ in range(n)])
    assert abs(changed - 0.5) < _bound(0.5, n)


@pytest.mark.parametrize('sigma', [0.7, 1.5, 2.0])
def test_gaussian_blur_edge_profile(sigma):
    img = np.zeros((40, 64), np.uint8)
    img[:, 32:] = 200
    out = GaussianBlur(sigma=(sigma, sigma), prob=1.)({'img': img})['img']
    assert out.dtype == np.uint8 and out.shape == img.shape
    # A step blurred by a sampled, normalised Gaussian kernel of half-width ceil(3 sigma).
    radius = math.ceil(3 * sigma)
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma)**2)
    k /= k.sum()
    x = np.arange(64)
    expected = np.array([200 * k[(xi - np.arange(-radius, radius + 1)) >= 32].sum()
                         for xi in x])
    assert np.abs(out[20].astype(float) - expected).max() <= 1.
    assert (out == out[:1]).all()  # rows are identical
    # The official PIL blur of the same sigma (approximated there by box blurs) gives the
    # same profile within a few levels.
    pil = np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius=sigma)))
    assert np.abs(out.astype(int) - pil).max() <= 6


# -------------------------------------------------------------------- RandomFlip
@pytest.mark.parametrize('direction,ref', [('horizontal', lambda a: a[:, ::-1]),
                                           ('vertical', lambda a: a[::-1]),
                                           ('diagonal', lambda a: a[::-1, ::-1])])
def test_random_flip_exact_and_probability(direction, ref):
    img = _smooth_image(16, 24)
    t = TRANSFORMS.build(dict(type='RandomFlip', prob=0.5, direction=direction))
    rng = np.random.default_rng(0)
    n = 2000
    flips = 0
    for _ in range(n):
        out = t({'img': img, 'rng': rng})
        if out['flip']:
            flips += 1
            np.testing.assert_array_equal(out['img'], ref(img))
            assert out['img'].flags.c_contiguous
            assert out['flip_direction'] == direction
        else:
            np.testing.assert_array_equal(out['img'], img)
            assert out['flip_direction'] is None
    assert abs(flips / n - 0.5) < _bound(0.5, n)
    with pytest.raises(ValueError):
        RandomFlip(direction='sideways')
