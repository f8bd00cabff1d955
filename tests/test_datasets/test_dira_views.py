"""DiRAViews: two views, the restoration target (and its flip), shared randomness."""
import math

import numpy as np
import pytest

from dira_mm.datasets.transforms import DiRAViews, RandomResizedCrop
from dira_mm.registry import TRANSFORMS

# The official DiRA pipeline (``dir`` / ``dira`` stages) as a config.
OFFICIAL = dict(
    type='DiRAViews',
    num_views=2,
    crop=dict(type='RandomResizedCrop', size=224, scale=(0.2, 1.0)),
    view_pipeline=[
        dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1,
             prob=0.8),
        dict(type='GaussianBlur', sigma=(0.1, 2.0), prob=0.5),
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    ],
    distortion=dict(type='DiRADistortion'),
    distort_views=(0, 1),
    with_target=True,
    target_view=0,
    flip_target=True)

# A crop that keeps a 224 x 224 image as it is, so the target is known exactly.
IDENTITY_CROP = dict(type='RandomResizedCrop', size=224, scale=(1., 1.), ratio=(1., 1.))


def _bound(p: float, n: int, k: float = 4.) -> float:
    return k * math.sqrt(p * (1 - p) / n)


def _image(h: int = 224, w: int = 224, seed: int = 0) -> np.ndarray:
    """Asymmetric (left-right) uint8 image."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    noise = np.random.default_rng(seed).normal(0, 5, (h, w))
    return np.clip(60 + 120 * xx + 40 * np.sin(9 * yy) + noise, 1, 255).astype(np.uint8)


def test_official_config_outputs():
    t = TRANSFORMS.build(OFFICIAL)
    img = _image(300, 260)
    out = t({'img': img, 'rng': np.random.default_rng(0), 'img_path': 'a.png'})
    assert isinstance(out['img'], list) and len(out['img']) == 2
    for view in out['img']:
        assert view.shape == (224, 224) and view.dtype == np.uint8
    assert out['target'].shape == (224, 224) and out['target'].dtype == np.uint8
    assert out['img_shape'] == (224, 224) and out['img_path'] == 'a.png'
    for key in ('crop_bbox', 'flip', 'flip_direction', 'distortion', 'distortion_boxes'):
        assert len(out[key]) == 2
    assert all(isinstance(f, bool) for f in out['flip'])
    assert all(d in ('inpaint', 'outpaint', 'swap', 'none') for d in out['distortion'])
    assert 'DiRAViews(num_views=2' in repr(t) and 'DiRADistortion' in repr(t)
    # The defaults are the official pipeline.
    assert repr(DiRAViews()) == repr(t)


def test_target_is_view0_crop_before_jitter_blur_flip():
    """With a crop that keeps the image, the target is the image (or its mirror)."""
    img = _image()
    n = 400
    for flip_target in (True, False):
        cfg = dict(OFFICIAL, crop=IDENTITY_CROP, flip_target=flip_target)
        t = TRANSFORMS.build(cfg)
        rng = np.random.default_rng(1)
        flipped = 0
        for _ in range(n):
            out = t({'img': img, 'rng': rng})
            if out['flip'][0] and flip_target:
                np.testing.assert_array_equal(out['target'], img[:, ::-1])
            else:
                np.testing.assert_array_equal(out['target'], img)
            flipped += out['flip'][0]
        assert abs(flipped / n - 0.5) < _bound(0.5, n)


def test_target_equals_view_without_jitter_blur_distortion():
    """Only a flip in the view pipeline: the target follows the view when flip_target,
    and is its mirror image when the view was flipped and not flip_target."""
    img = _image(400, 350)
    for flip_target in (True, False):
        t = DiRAViews(view_pipeline=[dict(type='RandomFlip', prob=0.5)], distortion=None,
                      flip_target=flip_target)
        rng = np.random.default_rng(2)
        for _ in range(100):
            out = t({'img': img, 'rng': rng})
            view0 = out['img'][0]
            if flip_target or not out['flip'][0]:
                np.testing.assert_array_equal(out['target'], view0)
            else:
                np.testing.assert_array_equal(out['target'], view0[:, ::-1])
            assert out['distortion'] == ['none', 'none']


def test_target_is_the_crop_of_view0():
    """The first draws of a sample are view 0's crop: replaying them gives the target."""
    img = _image(512, 480)
    t = TRANSFORMS.build(dict(OFFICIAL, flip_target=False))
    crop = RandomResizedCrop(size=224, scale=(0.2, 1.0))
    for seed in range(20):
        out = t({'img': img, 'rng': np.random.default_rng(seed)})
        ref = crop({'img': img, 'rng': np.random.default_rng(seed)})
        np.testing.assert_array_equal(out['target'], ref['img'])
        np.testing.assert_array_equal(out['crop_bbox'][0], ref['crop_bbox'])


def test_views_come_from_the_same_full_image():
    img = _image()
    t = DiRAViews(crop=IDENTITY_CROP, view_pipeline=[], distortion=None)
    out = t({'img': img, 'rng': np.random.default_rng(0)})
    for view in out['img']:
        np.testing.assert_array_equal(view, img)
    assert out['img'][0] is not out['img'][1] and out['img'][0] is not out['target']
    # Independent crops of a larger image.
    t = DiRAViews(view_pipeline=[], distortion=None)
    out = t({'img': _image(600, 600), 'rng': np.random.default_rng(0)})
    assert not np.array_equal(out['crop_bbox'][0], out['crop_bbox'][1])


def test_distort_views_and_statistics():
    img = _image()
    n = 1500
    t = DiRAViews(crop=IDENTITY_CROP, view_pipeline=[], distort_views=(1, ))
    rng = np.random.default_rng(3)
    branches = []
    for _ in range(n):
        out = t({'img': img, 'rng': rng})
        assert out['distortion'][0] == 'none'
        np.testing.assert_array_equal(out['img'][0], img)
        branches.append(out['distortion'][1])
        if out['distortion'][1] == 'none':
            np.testing.assert_array_equal(out['img'][1], img)
    for name, p in (('inpaint', .30), ('outpaint', .05), ('swap', .30), ('none', .35)):
        assert abs(branches.count(name) / n - p) < _bound(p, n)


def test_official_pipeline_statistics():
    """Both views are jittered, blurred, flipped and distorted independently."""
    t = TRANSFORMS.build(OFFICIAL)
    img = _image(320, 320)
    rng = np.random.default_rng(4)
    n = 800
    flips = np.zeros(2)
    undistorted = np.zeros(2)
    for _ in range(n):
        out = t({'img': img, 'rng': rng})
        flips += out['flip']
        undistorted += [d == 'none' for d in out['distortion']]
    assert (np.abs(flips / n - 0.5) < _bound(0.5, n)).all()
    assert (np.abs(undistorted / n - 0.35) < _bound(0.35, n)).all()


def test_determinism_and_shared_rng():
    img = _image(400, 380)
    t = TRANSFORMS.build(OFFICIAL)

    def run(results):
        return t(dict(results, img=img))

    def same(a, b):
        return all(np.array_equal(x, y) for x, y in zip(a['img'], b['img'])) and \
            np.array_equal(a['target'], b['target']) and a['flip'] == b['flip'] and \
            a['distortion'] == b['distortion'] and all(
                np.array_equal(x, y) for x, y in zip(a['crop_bbox'], b['crop_bbox']))

    assert same(run({'rng': np.random.default_rng(7)}), run({'rng': np.random.default_rng(7)}))
    assert not same(run({'rng': np.random.default_rng(7)}),
                    run({'rng': np.random.default_rng(8)}))
    # Without results['rng'], numpy's global seed decides (one generator per sample).
    np.random.seed(11)
    a = run({})
    np.random.seed(11)
    assert same(a, run({}))
    assert 'rng' not in a


def test_num_views_without_target_and_validation():
    t = DiRAViews(num_views=3, with_target=False, distort_views=(0, 1, 2))
    out = t({'img': _image(), 'rng': np.random.default_rng(0)})
    assert len(out['img']) == 3 and 'target' not in out
    with pytest.raises(ValueError):
        DiRAViews(num_views=2, target_view=2)
    with pytest.raises(ValueError):
        DiRAViews(num_views=2, distort_views=(0, 2))
    # DiRA's first stage (``di``): one or two plain views, no distortion, no target.
    out = DiRAViews(num_views=1, distortion=None, with_target=False)(
        {'img': _image(), 'rng': np.random.default_rng(0)})
    assert len(out['img']) == 1 and out['distortion'] == ['none']


def test_keep_clean_is_the_view_before_distortion():
    img = _image()
    t = DiRAViews(crop=IDENTITY_CROP, view_pipeline=[dict(type='RandomFlip', prob=0.5)],
                  keep_clean=True)
    rng = np.random.default_rng(5)
    for _ in range(30):
        out = t({'img': img, 'rng': rng})
        np.testing.assert_array_equal(out['clean'], out['target'])  # flip_target=True
        mask = out['img'][0] != out['clean']
        assert mask.any() == (out['distortion'][0] != 'none')
    assert 'clean' not in DiRAViews()({'img': img, 'rng': rng})


def test_3d_target_follows_genesis_flip():
    """GenesisDistortion flips input and target together; DiRAViews' 3-D target must follow
    (with the other Genesis steps off the distorted view equals its target)."""
    cube = np.random.default_rng(0).random((1, 6, 5, 4)).astype(np.float32)
    from mmcv.transforms import BaseTransform

    class Keep(BaseTransform):  # the identity crop
        def transform(self, results):
            return results

    views = TRANSFORMS.build(dict(
        type='DiRAViews', spatial_dims=3, view_pipeline=[], crop=Keep(),
        distortion=dict(type='GenesisDistortion', flip_prob=0.4, shuffle_prob=0.0,
                        nonlinear_prob=0.0, paint_prob=0.0), keep_clean=True))
    flipped = 0
    for seed in range(20):
        out = views(dict(img=cube.copy(), rng=np.random.default_rng(seed)))
        np.testing.assert_array_equal(out['target'], out['img'][0])
        np.testing.assert_array_equal(out['clean'], cube)
        flipped += int(not np.array_equal(out['img'][0], cube))
    assert flipped >= 3  # P(a flip) = 0.4 per view
