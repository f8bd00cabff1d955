"""TransVW data: elastic deformation, the per-sample perturbation, the instance dataset."""
import csv
import os.path as osp

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from dira_mm.datasets import TransVWDataset
from dira_mm.datasets.transforms import (ElasticDeformation, TransVWPerturbation,
                                         elastic_deform, elastic_displacement)


# --------------------------------------------------------------------------- elastic
def _expected_variance(shape, alpha, sigma):
    """Exact per-voxel variance of one displacement component: alpha^2 / 3 * sum_q K(p, q)^2
    for the separable, constant-padded Gaussian (U(-1, 1) has variance 1/3)."""
    out = np.ones(shape)
    for ax, n in enumerate(shape):
        w = gaussian_filter1d(np.eye(n), sigma, axis=0, mode='constant')  # w[p, q]
        s = (w ** 2).sum(axis=1)
        out = out * s.reshape([-1 if i == ax else 1 for i in range(len(shape))])
    return alpha ** 2 / 3.0 * out


def test_elastic_displacement_statistics_at_seed():
    rng = np.random.default_rng(0)
    shape = (64, 64, 32)
    d = np.stack([elastic_displacement(shape, rng) for _ in range(24)])  # (24, 2, *shape)
    var = _expected_variance(shape, 991.0, 8.0)
    # second moment per voxel, averaged over the cube, equals the analytic one (0.97 of it
    # at this seed; the fields are smooth, so 24 draws leave a few per cent of noise)
    assert (d ** 2).mean() == pytest.approx(var.mean(), rel=0.08)
    # analytic: per-component sd 3.8 voxels at the centre
    assert np.sqrt(var[32, 32, 16]) == pytest.approx(3.8, abs=0.1)
    mag = np.sqrt((d ** 2).sum(axis=1))
    # measured at this seed: mean 3.8 voxels, p95 7.3, max ~12-15 (constant padding damps
    # the borders); the range is what the law gives
    assert 3.4 < mag.mean() < 4.3
    assert 6.5 < np.percentile(mag, 95) < 8.2
    assert 10 < mag.max() < 20


def test_elastic_moves_in_plane_only_and_is_identity_at_alpha_0():
    rng = np.random.default_rng(1)
    z_only = np.broadcast_to(np.linspace(0, 1, 12, dtype=np.float32), (1, 20, 20, 12)).copy()
    out = elastic_deform(z_only, rng)  # the field varies along z only: in-plane moves keep it
    np.testing.assert_allclose(out, z_only, atol=1e-6)
    x = rng.random((2, 20, 16, 12)).astype(np.float32)
    np.testing.assert_array_equal(elastic_deform(x, rng, alpha=0.0), x)
    # a constant displacement of 0.5 along the first axis is a linear interpolation
    disp = np.zeros((2, 20, 16, 12))
    disp[0] = 0.5
    out = elastic_deform(x, rng, displacement=disp)
    np.testing.assert_allclose(out[:, :-1], 0.5 * (x[:, :-1] + x[:, 1:]), atol=1e-6)
    # every channel moves with the same field
    y = elastic_deform(np.concatenate([x[:1], x[:1]]), np.random.default_rng(2))
    np.testing.assert_array_equal(y[0], y[1])
    # 2-D: both axes move
    img = rng.random((1, 24, 24)).astype(np.float32)
    assert not np.allclose(elastic_deform(img, rng), img)


def test_elastic_official_meshgrid_equal_on_square_error_otherwise():
    x = np.random.default_rng(3).random((1, 16, 16, 8)).astype(np.float32)
    a = elastic_deform(x, np.random.default_rng(4))
    b = elastic_deform(x, np.random.default_rng(4), official_meshgrid=True)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match='official_meshgrid'):
        elastic_deform(np.zeros((1, 16, 12, 8), np.float32), np.random.default_rng(0),
                       official_meshgrid=True)
    # the default handles non-square in-plane shapes
    assert elastic_deform(np.zeros((1, 16, 12, 8), np.float32),
                          np.random.default_rng(0)).shape == (1, 16, 12, 8)


def test_elastic_transform_keeps_target_before_deforming():
    x = np.random.default_rng(5).random((1, 16, 16, 8)).astype(np.float32)
    out = ElasticDeformation(keep_target=True)(dict(img=x.copy(),
                                                    rng=np.random.default_rng(0)))
    np.testing.assert_array_equal(out['target'], x)
    assert out['elastic'] and not np.allclose(out['img'], x)
    off = ElasticDeformation(prob=0.0)(dict(img=x.copy(), rng=np.random.default_rng(0)))
    np.testing.assert_array_equal(off['img'], x)


# ---------------------------------------------------------------------- perturbation
def test_transvw_perturbation_target_is_pre_elastic_and_one_branch():
    x = np.random.default_rng(6).random((1, 16, 16, 8)).astype(np.float32)
    counts = {}
    for seed in range(200):
        out = TransVWPerturbation()(dict(img=x.copy(), rng=np.random.default_rng(seed)))
        np.testing.assert_array_equal(out['target'], x)  # copied BEFORE the elastic step
        assert out['distortion'][0] == 'elastic' and len(out['distortion']) == 2
        counts[out['distortion'][1]] = counts.get(out['distortion'][1], 0) + 1
        assert 'rng' in out
    # one branch each, p 0.25: 200 draws, 50 expected, sd 6.1
    assert set(counts) == {'shuffle', 'nonlinear', 'inpaint', 'outpaint'}
    assert all(28 <= c <= 72 for c in counts.values()), counts
    # same seed, same sample; without elastic the perturbation equals TransVWDistortion's
    a = TransVWPerturbation()(dict(img=x.copy(), rng=np.random.default_rng(7)))
    b = TransVWPerturbation()(dict(img=x.copy(), rng=np.random.default_rng(7)))
    np.testing.assert_array_equal(a['img'], b['img'])
    from dira_mm.datasets.transforms import TransVWDistortion
    c = TransVWPerturbation(elastic=False)(dict(img=x.copy(), rng=np.random.default_rng(8)))
    d = TransVWDistortion()(dict(img=x.copy(), rng=np.random.default_rng(8)))
    np.testing.assert_array_equal(c['img'], d['img'])
    assert c['distortion'] == d['distortion']
    no_rng = TransVWPerturbation(elastic=False)(dict(img=x.copy()))
    assert 'rng' not in no_rng


# -------------------------------------------------------------------------- dataset
def _write_index(root, rows, cubes):
    for rel, cube in cubes.items():
        path = osp.join(root, rel)
        import os
        os.makedirs(osp.dirname(path), exist_ok=True)
        if cube is not None:
            np.save(path, cube)
        else:
            open(path, 'wb').write(b'not a numpy file')
    with open(osp.join(root, 'train.csv'), 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=('path', 'class', 'patient', 'x', 'y', 'z',
                                          'resolution'))
        w.writeheader()
        w.writerows(rows)


def test_transvw_dataset_reads_index_skips_bad_and_packs(tmp_path, mm_logs):
    rng = np.random.default_rng(9)
    cubes, rows = {}, []
    for i in range(4):
        rel = f'train/c{i % 2:03d}/p{i}_r{i % 3}.npy'
        cubes[rel] = rng.random((16, 16, 8)).astype(np.float32) if i != 2 else None
        rows.append(dict(path=rel, **{'class': i % 2}, patient=f'p{i}', x=1, y=2, z=3,
                         resolution=i % 3))
    _write_index(str(tmp_path), rows, cubes)
    pipeline = [dict(type='TransVWPerturbation'),
                dict(type='PackDiRAInputs', spatial_dims=3,
                     meta_keys=('img_path', 'gt_label', 'skipped', 'distortion'))]
    ds = TransVWDataset(ann_file='train.csv', data_root=str(tmp_path), pipeline=pipeline,
                        seed=0)
    assert len(ds) == 4
    assert [ds.get_data_info(i)['gt_label'] for i in range(4)] == [0, 1, 0, 1]
    assert ds.get_data_info(1)['coordinate'] == (1, 2, 3)
    out = ds[0]
    x = out['inputs'][0]
    assert tuple(x.shape) == (1, 16, 16, 8) and str(x.dtype) == 'torch.float32'
    np.testing.assert_array_equal(out['data_samples'].target.numpy()[0],
                                  cubes[rows[0]['path']])
    assert int(out['data_samples'].gt_label) == 0
    bad = ds[2]  # unreadable -> the next sample, counted
    assert bad['data_samples'].skipped == 1 and int(bad['data_samples'].gt_label) == 1
    assert any('skipping sample 2' in m for m in mm_logs.messages)
    # same seed, same sample
    np.testing.assert_array_equal(ds[1]['inputs'][0].numpy(), ds[1]['inputs'][0].numpy())
    # resolution filter and class check
    only0 = TransVWDataset(ann_file='train.csv', data_root=str(tmp_path), resolutions=[0])
    assert len(only0) == 2
    with pytest.raises(ValueError, match='num_classes'):
        TransVWDataset(ann_file='train.csv', data_root=str(tmp_path), num_classes=1)


def test_transvw_dataset_rejects_index_without_columns(tmp_path):
    (tmp_path / 'i.csv').write_text('path,label\na.npy,0\n')
    with pytest.raises(ValueError, match='lacks the columns'):
        TransVWDataset(ann_file='i.csv', data_root=str(tmp_path))
