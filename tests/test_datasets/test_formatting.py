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
