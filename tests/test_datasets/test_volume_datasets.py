"""Volume datasets (VolumeFolderDataset, LUNA16Dataset), cubes per volume, determinism, configs."""
import os
import os.path as osp

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from pydicom.data import get_testdata_file
from torch.utils.data import DataLoader

import dira_mm.datasets.transforms.volume_loading as vl
from dira_mm.datasets import (LUNA16_GENESIS_FOLDS, ImageReadError, LUNA16Dataset,
                              VolumeFolderDataset)
from dira_mm.registry import DATASETS, TRANSFORMS

from helpers import REPO

CONFIGS = osp.join(REPO, 'configs', '_base_', 'datasets')


def _nifti(path, data, spacing=(1.0, 1.0, 1.0)):
    os.makedirs(osp.dirname(str(path)), exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.diag(list(spacing) + [1.0])), str(path))
    return str(path)


def _mhd(path, xyz):
    """A LUNA16-style .mhd + .raw (int16, identity direction)."""
    os.makedirs(osp.dirname(str(path)), exist_ok=True)
    raw = str(path)[:-4] + '.raw'
    np.ascontiguousarray(xyz.astype('<i2').transpose(2, 1, 0)).tofile(raw)
    with open(path, 'w') as f:
        f.write('ObjectType = Image\nNDims = 3\nBinaryData = True\n'
                'BinaryDataByteOrderMSB = False\nCompressedData = False\n'
                'TransformMatrix = 1 0 0 0 1 0 0 0 1\nOffset = 0 0 0\n'
                'ElementSpacing = 0.7 0.7 2.5\n'
                f'DimSize = {" ".join(map(str, xyz.shape))}\nElementType = MET_SHORT\n'
                f'ElementDataFile = {osp.basename(raw)}\n')
    return str(path)


def _series(folder, n=3):
    os.makedirs(folder, exist_ok=True)
    base = pydicom.dcmread(get_testdata_file('CT_small.dcm'))
    for k in range(n):
        ds = base.copy()
        ds.ImagePositionPatient = [0.0, 0.0, 5.0 * k]
        ds.SOPInstanceUID = f'{base.SOPInstanceUID}.{k}'
        ds.save_as(osp.join(folder, f's{k}.dcm'))


def _ct(shape, seed):
    return np.random.default_rng(seed).integers(-1000, 400, size=shape).astype(np.int16)


def _cube_pipeline(size=(8, 8, 4), cache_dir=None, shuffle_windows=50):
    return [dict(type='LoadVolume', cache_dir=cache_dir),
            dict(type='RandomCubes', size=size, border=(2, 2, 1)),
            dict(type='GenesisDistortion', shuffle_windows=shuffle_windows),
            dict(type='PackDiRAInputs', spatial_dims=3,
                 meta_keys=('img_path', 'sample_idx', 'skipped', 'cube_origins'))]


# ----------------------------------------------------------------------------- VolumeFolder


def test_volume_folder_scan_list_and_errors(tmp_path):
    root = tmp_path / 'ct'
    _nifti(root / 'a' / 'ct1.nii.gz', _ct((10, 10, 6), 0))
    _mhd(str(root / 'b' / 'c' / 'ct2.mhd'), _ct((10, 10, 6), 1))
    _series(str(root / 'series'))
    _nifti(root / '.hidden' / 'x.nii', _ct((4, 4, 4), 2))
    _nifti(root / 'a' / 'ct1_seg.nii.gz', _ct((4, 4, 4), 3))
    (root / 'notes.txt').write_text('not a volume')
    ds = VolumeFolderDataset(data_root=str(tmp_path), data_prefix=dict(img_path='ct'))
    rel = [osp.relpath(p, root).replace(os.sep, '/') for p in ds.volume_paths()]
    assert rel == ['a/ct1.nii.gz', 'a/ct1_seg.nii.gz', 'b/c/ct2.mhd', 'series']
    assert len(ds) == 4 and ds.get_data_info(3)['img_path'] == str(root / 'series')
    ds = VolumeFolderDataset(data_root=str(root), exclude='*_seg.nii.gz', dicom_series=False)
    assert [osp.basename(p) for p in ds.volume_paths()] == ['ct1.nii.gz', 'ct2.mhd']
    # a list file: its order, series folders allowed
    (tmp_path / 'list.txt').write_text('# volumes\nseries\n\nb/c/ct2.mhd extra tokens\n')
    ds = VolumeFolderDataset(data_root=str(tmp_path), data_prefix=dict(img_path='ct'),
                             ann_file='list.txt')
    assert [osp.basename(p) for p in ds.volume_paths()] == ['series', 'ct2.mhd']
    # every kind is readable through LoadVolume
    load = TRANSFORMS.build(dict(type='LoadVolume'))
    shapes = [load(dict(img_path=p))['img'].shape for p in ds.volume_paths()]
    assert shapes == [(1, 128, 128, 3), (1, 10, 10, 6)]
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='no volume'):
        VolumeFolderDataset(data_root=str(tmp_path / 'empty'))
    with pytest.raises(FileNotFoundError, match='data_root'):
        VolumeFolderDataset(data_root=str(tmp_path / 'missing'))
    with pytest.raises(ValueError, match='cubes_per_volume'):
        VolumeFolderDataset(data_root=str(root), cubes_per_volume=0)


def test_corrupt_volume_skipped_and_counted(tmp_path, mm_logs):
    _nifti(tmp_path / 'a.nii', _ct((12, 12, 8), 0))
    (tmp_path / 'b.nii').write_bytes(b'not a nifti')
    _nifti(tmp_path / 'c.nii', _ct((12, 12, 8), 1))
    _nifti(tmp_path / 'd.nii', _ct((5, 5, 3), 2))  # smaller than the cube: skipped as well
    ds = VolumeFolderDataset(data_root=str(tmp_path), pipeline=_cube_pipeline(), seed=0)
    out = ds[1]
    assert out['data_samples'].skipped == 1
    assert out['data_samples'].img_path == str(tmp_path / 'c.nii')
    assert out['data_samples'].sample_idx == 2  # the sample delivered (seeded by index 1)
    assert ds[3]['data_samples'].skipped == 1  # d -> wraps to a
    assert any('b.nii' in m and 'skipping' in m for m in mm_logs.messages)
    assert any('d.nii' in m and 'smaller than the cube' in m for m in mm_logs.messages)
    ds = VolumeFolderDataset(data_root=str(tmp_path), pipeline=_cube_pipeline(), seed=0,
                             on_error='raise')
    with pytest.raises(ImageReadError, match='b.nii'):
        ds[1]


# ----------------------------------------------------------------------------- LUNA16


def test_luna16_fold_selection(tmp_path):
    for s in range(4):
        for uid in (f'1.3.6.{s}.2', f'1.3.6.{s}.1'):
            _mhd(str(tmp_path / f'subset{s}' / f'{uid}.mhd'), _ct((6, 6, 4), s))
    ds = LUNA16Dataset(data_root=str(tmp_path), subsets=(0, 1))
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert [(i['subset'], i['seriesuid']) for i in infos] == [
        (0, '1.3.6.0.1'), (0, '1.3.6.0.2'), (1, '1.3.6.1.1'), (1, '1.3.6.1.2')]
    ds = DATASETS.build(dict(type='LUNA16Dataset', data_root=str(tmp_path), subsets=(3, ),
                             cubes_per_volume=3))
    assert len(ds) == 6 and ds.num_volumes == 2
    assert [ds.get_data_info(i)['seriesuid'] for i in range(6)] == ['1.3.6.3.1', '1.3.6.3.2'] * 3
    assert [ds.get_data_info(i)['cube_index'] for i in range(6)] == [0, 0, 1, 1, 2, 2]
    assert LUNA16_GENESIS_FOLDS == dict(train=(0, 1, 2, 3, 4), val=(5, 6), test=(7, 8, 9))
    with pytest.raises(FileNotFoundError, match=r'`subsets` includes 5'):
        LUNA16Dataset(data_root=str(tmp_path), subsets=LUNA16_GENESIS_FOLDS['val'])
    for bad in ((10, ), (), (1, 1), ('0', )):
        with pytest.raises(ValueError, match='subsets'):
            LUNA16Dataset(data_root=str(tmp_path), subsets=bad)


# ----------------------------------------------------------------------------- cubes


def test_cubes_per_volume_distinct_and_read_once_with_cache(tmp_path, monkeypatch):
    calls = []
    real = vl.read_volume
    monkeypatch.setattr(vl, 'read_volume', lambda p, **k: calls.append(p) or real(p, **k))
    for i in range(2):
        _nifti(tmp_path / 'ct' / f'v{i}.nii', _ct((16, 14, 10), i))
    pipeline = [dict(type='LoadVolume', cache_dir=str(tmp_path / 'cache')),
                dict(type='RandomCubes', size=(6, 6, 4), border=(1, 1, 1)),
                dict(type='PackDiRAInputs', spatial_dims=3,
                     meta_keys=('img_path', 'sample_idx', 'cube_origins'))]
    ds = VolumeFolderDataset(data_root=str(tmp_path / 'ct'), cubes_per_volume=4,
                             pipeline=pipeline, seed=3)
    samples = [ds[i] for i in range(len(ds))]
    assert len(ds) == 8 and len(calls) == 2  # 8 cubes, each volume read once
    for vol in range(2):
        mine = [s for s in samples if s['data_samples'].img_path.endswith(f'v{vol}.nii')]
        assert len(mine) == 4
        origins = [tuple(s['data_samples'].cube_origins[0]) for s in mine]
        assert len(set(origins)) == 4  # distinct per-sample seeds -> distinct cubes
        full = vl.hu_window(_ct((16, 14, 10), vol).astype(np.float32))
        for s, o in zip(mine, origins):  # each cube is the windowed volume at its origin
            np.testing.assert_array_equal(
                s['inputs'][0][0].numpy(), full[o[0]:o[0] + 6, o[1]:o[1] + 6, o[2]:o[2] + 4])


def _loader_batches(ds, workers):
    loader = DataLoader(ds, batch_size=3, shuffle=False, num_workers=workers,
                        collate_fn=default_collate)
    return [b for b in loader]


def _views_pipeline():
    """Genesis cubes -> two MONAI-augmented views (3-D DiRA), tiny."""
    crop = dict(type='MONAITransforms', keys=('img', ), transforms=[
        dict(monai='RandScaleCropd', keys=['img'], roi_scale=0.6, max_roi_scale=1.0,
             random_size=True),
        dict(monai='Resized', keys=['img'], spatial_size=(8, 8, 4), mode='trilinear')])
    view = dict(type='MONAITransforms', transforms=[
        dict(monai='RandFlipd', keys=['img', 'target'], prob=0.5, spatial_axis=0),
        dict(monai='RandScaleIntensityd', keys=['img'], factors=0.4, prob=0.8),
        dict(monai='RandGaussianSmoothd', keys=['img'], prob=0.5)])
    return [dict(type='LoadVolume'),
            dict(type='RandomCubes', size=(10, 10, 6), border=(2, 2, 1)),
            dict(type='DiRAViews', spatial_dims=3, crop=crop, view_pipeline=[view],
                 distortion=dict(type='GenesisDistortion', flip_prob=0.0,
                                 shuffle_windows=50)),
            dict(type='PackDiRAInputs', spatial_dims=3)]


@pytest.mark.parametrize('pipeline', ['genesis', 'dira_views'])
def test_determinism_across_workers_and_epochs(tmp_path, pipeline):
    for i in range(2):
        _nifti(tmp_path / f'v{i}.nii', _ct((16, 16, 10), i))
    ds = VolumeFolderDataset(
        data_root=str(tmp_path), cubes_per_volume=3, seed=11,
        pipeline=_cube_pipeline() if pipeline == 'genesis' else _views_pipeline())
    a = _loader_batches(ds, 0)
    b = _loader_batches(ds, 2)
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):
        assert x['inputs'][0].shape == (3, 1, 8, 8, 4) and x['inputs'][0].dtype == torch.float32
        assert len(x['inputs']) == len(y['inputs']) == (1 if pipeline == 'genesis' else 2)
        for vx, vy in zip(x['inputs'], y['inputs']):
            assert torch.equal(vx, vy)
        tx = torch.stack([d.target for d in x['data_samples']])
        ty = torch.stack([d.target for d in y['data_samples']])
        assert torch.equal(tx, ty)
    ds.set_epoch(1)
    c = _loader_batches(ds, 0)
    assert not torch.equal(a[0]['inputs'][0], c[0]['inputs'][0])
    ds.set_epoch(0)
    assert torch.equal(_loader_batches(ds, 0)[1]['inputs'][0], a[1]['inputs'][0])


def test_fixed_cubes_same_positions_every_epoch(tmp_path):
    _nifti(tmp_path / 'v.nii', _ct((16, 16, 10), 0))
    kw = dict(data_root=str(tmp_path), cubes_per_volume=3, pipeline=_cube_pipeline(), seed=2)
    fixed = VolumeFolderDataset(fixed_cubes=True, **kw)
    redrawn = VolumeFolderDataset(**kw)

    def origins(ds, epoch):
        ds.set_epoch(epoch)
        return [tuple(ds[i]['data_samples'].cube_origins[0]) for i in range(3)]

    assert origins(fixed, 0) == origins(fixed, 1) and len(set(origins(fixed, 0))) == 3
    assert origins(redrawn, 0) != origins(redrawn, 1)
    fixed.set_epoch(0)
    a = fixed[0]['inputs'][0]
    fixed.set_epoch(1)
    assert not torch.equal(a, fixed[0]['inputs'][0])  # the distortion still changes
    with pytest.raises(ValueError, match='needs a `seed`'):
        VolumeFolderDataset(data_root=str(tmp_path), fixed_cubes=True)


def test_mni152_real_volume_resampled(tmp_path):
    from nilearn.datasets import load_mni152_template
    img = load_mni152_template(resolution=2)
    path = str(tmp_path / 'mni.nii.gz')
    nib.save(img, path)  # stored uint8 with a scale factor
    ref = np.asarray(nib.load(path).get_fdata(dtype=np.float32))
    assert ref.shape == (99, 117, 95)
    pipeline = [dict(type='LoadVolume', window=None, spacing=(4.0, 4.0, 4.0)),
                dict(type='RandomCubes', size=(16, 16, 8), border=(4, 4, 2)),
                dict(type='PackDiRAInputs', spatial_dims=3,
                     meta_keys=('img_path', 'cube_origins'))]
    ds = VolumeFolderDataset(data_root=str(tmp_path), pipeline=pipeline, seed=0)
    full = TRANSFORMS.build(pipeline[0])(dict(img_path=path))
    assert full['img'].shape == (1, 50, 59, 48) and full['spacing'] == (4.0, 4.0, 4.0)
    assert full['source_spacing'] == (2.0, 2.0, 2.0)
    # MNI152 is stored RAS: voxel (i, j, k) at 4 mm is voxel (2i, 2j, 2k) at 2 mm
    np.testing.assert_allclose(full['img'][0], ref[::2, ::2, ::2], atol=5e-5)
    out = ds[0]
    o = out['data_samples'].cube_origins[0]
    np.testing.assert_allclose(out['inputs'][0][0].numpy(),
                               ref[::2, ::2, ::2][o[0]:o[0] + 16, o[1]:o[1] + 16,
                                                  o[2]:o[2] + 8], atol=5e-5)


# ----------------------------------------------------------------------------- configs


def _luna_tree(root, subsets=(0, 5)):
    for s in subsets:
        _mhd(str(root / f'subset{s}' / f'1.2.{s}.mhd'), _ct((72, 70, 40), s))


def test_base_configs_build_and_run(tmp_path):
    from dira_mm.utils.preflight import check_types
    for name in ('luna16_genesis', 'luna16_transvw', 'luna16_dira_views', 'volume_folder'):
        assert check_types(Config.fromfile(osp.join(CONFIGS, f'{name}.py'))) == [], name
    _luna_tree(tmp_path)
    cfg = Config.fromfile(osp.join(CONFIGS, 'luna16_genesis.py'))
    train = cfg.train_dataloader
    assert train.batch_size == 6 and train.dataset.cubes_per_volume == 32
    assert train.dataset.subsets == (0, 1, 2, 3, 4)
    assert cfg.val_dataloader.dataset.subsets == (5, 6)
    assert cfg.test_dataloader.dataset.subsets == (7, 8, 9)
    assert cfg.train_pipeline[1]['size'] == (64, 64, 32)
    assert cfg.train_pipeline[0]['window'] == (-1000, 1000)
    ds = DATASETS.build(dict(train.dataset, data_root=str(tmp_path), subsets=(0, )))
    out = ds[5]
    assert out['inputs'][0].shape == (1, 64, 64, 32) and out['inputs'][0].dtype == torch.float32
    assert out['data_samples'].target.shape == (1, 64, 64, 32)
    assert 0 <= float(out['inputs'][0].min()) and float(out['inputs'][0].max()) <= 1
    # the two-view 3-D DiRA pipeline
    cfg = Config.fromfile(osp.join(CONFIGS, 'luna16_dira_views.py'))
    ds = DATASETS.build(dict(cfg.val_dataloader.dataset, data_root=str(tmp_path),
                             subsets=(5, )))
    out = ds[0]
    assert [v.shape for v in out['inputs']] == [(1, 64, 64, 32)] * 2
    assert out['data_samples'].target.shape == out['data_samples'].clean.shape == \
        (1, 64, 64, 32)
    assert cfg.train_pipeline[2]['spatial_dims'] == 3
    # a folder of NIfTI CT: inherits the pipeline, not LUNA16's subsets
    cfg = Config.fromfile(osp.join(CONFIGS, 'volume_folder.py'))
    d = cfg.train_dataloader.dataset
    assert d.type == 'VolumeFolderDataset' and 'subsets' not in d and d.seed == 0
    assert d.pipeline == Config.fromfile(osp.join(CONFIGS, 'luna16_genesis.py')).train_pipeline
    _nifti(tmp_path / 'my_ct' / 'train' / 'p1' / 'ct.nii.gz', _ct((70, 70, 36), 9))
    ds = DATASETS.build(dict(d, data_root=str(tmp_path / 'my_ct')))
    assert len(ds) == 32 and ds[0]['inputs'][0].shape == (1, 64, 64, 32)
    # TransVW: its own dataset of discovered instances and perturbation
    cfg = Config.fromfile(osp.join(CONFIGS, 'luna16_transvw.py'))
    assert cfg.train_dataloader.dataset.type == 'TransVWDataset'
    assert cfg.train_dataloader.dataset.num_classes == 44
    assert TRANSFORMS.get(cfg.train_pipeline[0]['type']) is not None
    assert cfg.train_pipeline[-1]['spatial_dims'] == 3
