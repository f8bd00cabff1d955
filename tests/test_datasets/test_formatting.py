"""PackDiRAInputs: tensor dtypes, shapes and values, metadata, collation."""
import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate

from dira_mm.datasets.transforms import PackDiRAInputs
from dira_mm.registry import TRANSFORMS
from dira_mm.structures import DiRADataSample


def _views(seed: int = 0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (224, 224), dtype=np.uint8) for _ in range(3)]


def test_pack_two_views_target_and_meta():
    v0, v1, target = _views()
    label = np.array([0, 1, -1] + [0] * 11, np.float32)
    results = dict(img=[v0, v1[:, ::-1]], target=target, img_path='/d/a.png', sample_idx=5,
                   gt_label=label, flip=[False, True], distortion=['swap', 'none'],
                   crop_bbox=[np.zeros(4)] * 2, rng=np.random.default_rng(0))
    packed = TRANSFORMS.build(dict(type='PackDiRAInputs'))(results)
    assert set(packed) == {'inputs', 'data_samples'}
    inputs = packed['inputs']
    assert isinstance(inputs, list) and len(inputs) == 2
    for tensor, view in zip(inputs, (v0, v1[:, ::-1])):
        assert tensor.dtype == torch.uint8 and tensor.shape == (1, 224, 224)
        assert tensor.is_contiguous()
        np.testing.assert_array_equal(tensor[0].numpy(), view)
    ds = packed['data_samples']
    assert isinstance(ds, DiRADataSample)
    assert ds.target.dtype == torch.uint8 and ds.target.shape == (1, 224, 224)
    np.testing.assert_array_equal(ds.target[0].numpy(), target)
    assert ds.img_path == '/d/a.png' and ds.sample_idx == 5 and ds.skipped == 0
    np.testing.assert_array_equal(ds.gt_label, label)
    assert 'gt_label' in ds.keys() and 'img_path' in ds.metainfo_keys()
    assert ds.flip == [False, True] and ds.distortion == ['swap', 'none']
    assert 'crop_bbox' not in ds and 'rng' not in ds and 'clean' not in ds
    # The undistorted view of DiRAViews(keep_clean=True) is packed like the target.
    ds = PackDiRAInputs()(dict(results, clean=v0))['data_samples']
    assert ds.clean.dtype == torch.uint8 and ds.clean.shape == (1, 224, 224)
    np.testing.assert_array_equal(ds.clean[0].numpy(), v0)


def test_pack_single_image_and_missing_keys():
    v0, _, _ = _views(1)
    packed = PackDiRAInputs()({'img': v0, 'skipped': 3})
    assert len(packed['inputs']) == 1 and packed['inputs'][0].shape == (1, 224, 224)
    ds = packed['data_samples']
    assert ds.skipped == 3
    assert 'target' not in ds and 'img_path' not in ds and 'gt_label' not in ds
    # Multi-channel images become (C, H, W).
    rgb = np.stack([v0] * 3, axis=-1)
    packed = PackDiRAInputs(meta_keys=())({'img': rgb})
    assert packed['inputs'][0].shape == (3, 224, 224)
    np.testing.assert_array_equal(packed['inputs'][0][1].numpy(), v0)
    assert 'skipped' not in packed['data_samples']
    with pytest.raises(ValueError):
        PackDiRAInputs()({'img': np.zeros((2, 2, 2, 2), np.uint8)})
    assert repr(PackDiRAInputs()).startswith('PackDiRAInputs(meta_keys=')


def test_full_pipeline_and_default_collate():
    pipeline = [TRANSFORMS.build(dict(type='DiRAViews')),
                TRANSFORMS.build(dict(type='PackDiRAInputs'))]
    img = np.random.default_rng(0).integers(0, 256, (300, 280), dtype=np.uint8)
    samples = []
    for i in range(4):
        results = dict(img=img, img_path=f'{i}.png', sample_idx=i,
                       rng=np.random.default_rng(i))
        for t in pipeline:
            results = t(results)
        samples.append(results)
    batch = default_collate(samples)
    assert len(batch['inputs']) == 2
    for view in batch['inputs']:
        assert view.shape == (4, 1, 224, 224) and view.dtype == torch.uint8
    assert len(batch['data_samples']) == 4
    assert [ds.sample_idx for ds in batch['data_samples']] == [0, 1, 2, 3]
    target = torch.stack([ds.target for ds in batch['data_samples']])
    assert target.shape == (4, 1, 224, 224) and target.dtype == torch.uint8


# ----------------------------------------------------------------------------- 3-D (issue 9)


def _cube(seed=0, shape=(1, 12, 10, 8)):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def test_pack_volumes_spatial_dims_3():
    v0, v1, target = _cube(0), _cube(1), _cube(2)
    packed = PackDiRAInputs(spatial_dims=3)(dict(img=[v0, v1], target=target, spatial_dims=3,
                                                 sample_idx=4))
    for tensor, view in zip(packed['inputs'], (v0, v1)):
        assert tensor.dtype == torch.float32 and tensor.shape == (1, 12, 10, 8)
        np.testing.assert_array_equal(tensor.numpy(), view)  # no HWC guess: unchanged
    ds = packed['data_samples']
    assert ds.target.dtype == torch.float32 and torch.equal(ds.target, torch.from_numpy(target))
    # two channels stay (C, X, Y, Z); a read-only (memory-mapped) array is copied
    two = np.concatenate([v0, v1])
    two.flags.writeable = False
    out = PackDiRAInputs(spatial_dims=3)({'img': two})['inputs'][0]
    assert out.shape == (2, 12, 10, 8) and torch.equal(out, torch.from_numpy(two.copy()))
    # the 2-D reading of the same (C, X, Y, Z)-like 3-D array would be HWC: refused in 3-D
    with pytest.raises(ValueError, match=r'channel-first \(C, \*spatial\) array with 3'):
        PackDiRAInputs(spatial_dims=3)({'img': v0[0]})
    with pytest.raises(ValueError, match='spatial_dims=3'):
        PackDiRAInputs()(dict(img=v0, spatial_dims=3))  # the data says 3, the config 2
    with pytest.raises(ValueError, match='2 or 3'):
        PackDiRAInputs(spatial_dims=1)
    batch = default_collate([PackDiRAInputs(spatial_dims=3)(dict(img=[_cube(i), _cube(i + 9)]))
                             for i in range(3)])
    assert [v.shape for v in batch['inputs']] == [(3, 1, 12, 10, 8)] * 2


def _views_3d(flip_keys=('img', 'target'), flip_prob=1.0, scale_prob=1.0, distortion=None):
    """3-D DiRAViews: identity crop (full roi, same size), a flip of axis 0, a brightness
    scale on the view only."""
    crop = dict(type='MONAITransforms', keys=('img', ), transforms=[
        dict(monai='RandScaleCropd', keys=['img'], roi_scale=1.0, max_roi_scale=1.0,
             random_size=False),
        dict(monai='Resized', keys=['img'], spatial_size=(12, 10, 8), mode='trilinear')])
    view = dict(type='MONAITransforms', transforms=[
        dict(monai='RandFlipd', keys=list(flip_keys), prob=flip_prob, spatial_axis=0),
        dict(monai='RandScaleIntensityd', keys=['img'], factors=(0.5, 0.5), prob=scale_prob)])
    return TRANSFORMS.build(dict(type='DiRAViews', spatial_dims=3, crop=crop,
                                 view_pipeline=[view], distortion=distortion,
                                 keep_clean=True))


def test_dira_views_3d_target_follows_spatial_not_intensity():
    cube = _cube(3)
    out = _views_3d()(dict(img=cube, rng=np.random.default_rng(0)))
    assert out['img_shape'] == (12, 10, 8) and len(out['img']) == 2
    flipped = cube[:, ::-1]
    np.testing.assert_allclose(out['target'], flipped, atol=1e-6)  # flipped with view 0
    np.testing.assert_allclose(out['img'][0], flipped * 1.5, atol=1e-5)  # scaled, target not
    np.testing.assert_allclose(out['clean'], out['img'][0])
    # 'target' left out of the flip's keys: the official never-flipped target
    out = _views_3d(flip_keys=('img', ))(dict(img=cube, rng=np.random.default_rng(0)))
    np.testing.assert_allclose(out['target'], cube, atol=1e-6)
    # a Genesis distortion on the views keeps DiRA's target (the undistorted crop)
    out = _views_3d(distortion=dict(type='GenesisDistortion', flip_prob=0.0))(
        dict(img=cube, rng=np.random.default_rng(1)))
    np.testing.assert_allclose(out['target'], cube[:, ::-1], atol=1e-6)
    assert all(isinstance(d, list) for d in out['distortion'])
    assert not np.allclose(out['img'][0], out['clean'])
    with pytest.raises(ValueError, match='flip_target is a 2-D option'):
        TRANSFORMS.build(dict(type='DiRAViews', spatial_dims=3, flip_target=False))


def test_monai_transforms_seeded_per_sample():
    t = _views_3d(flip_prob=0.5, scale_prob=0.5)
    cube = _cube(4)
    runs = [t(dict(img=cube, rng=np.random.default_rng(s))) for s in (5, 5, 6, 7, 8, 9)]
    for a, b in zip(runs[0]['img'], runs[1]['img']):
        np.testing.assert_array_equal(a, b)  # same generator -> same views
    distinct = {tuple(np.round([v.sum() for v in r['img']], 3)) for r in runs[2:]}
    assert len(distinct) > 1  # other generators -> other draws
    with pytest.raises(ValueError, match='not a transform of monai.transforms'):
        TRANSFORMS.build(dict(type='MONAITransforms', transforms=[dict(monai='NoSuchd')]))
    with pytest.raises(ValueError, match='with `monai=`'):  # `type` is dira_mm's registry key
        TRANSFORMS.build(dict(type='MONAITransforms', transforms=[dict(type='RandFlipd')]))
