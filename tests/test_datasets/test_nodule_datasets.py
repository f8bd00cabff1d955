"""Nodule segmentation/classification datasets on a tiny written demo folder."""
import numpy as np
import pytest

from dira_mm.datasets.ct_phantom_data import make_ct_demo_dataset
from dira_mm.datasets.nodule_classification import crop_with_padding
from dira_mm.datasets.transforms.volume_downstream import RandPosNegCrop
from dira_mm.registry import DATASETS


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp('demo3d')
    return make_ct_demo_dataset(str(out), num=4, size=(48, 48, 24), num_subsets=3,
                                negatives_per_scan=4, metaimage=True, include_mri=False)


def test_segmentation_whole_volume(demo):
    ds = DATASETS.build(dict(type='NoduleSegmentationDataset', data_root=demo['out_dir'],
                             ann_file='train.txt', data_prefix=dict(img_path='ct'),
                             pipeline=[dict(type='PackVolumeSegInputs')]))
    assert len(ds) == demo['num_train'] == 2
    out = ds[0]
    img, mask = out['inputs'], out['data_samples'].gt_mask
    assert img.shape == (1, 48, 48, 24) and mask.shape == (1, 48, 48, 24)
    assert img.dtype.is_floating_point and 0 <= float(img.min()) and float(img.max()) <= 1
    # window [-1000, 1000] -> [0, 1]: lung (~-850 HU) reads ~0.075, nodules > 0.4
    assert float(img[mask.bool()].mean()) > 0.4
    assert int(mask.sum()) > 0


def test_segmentation_skips_unreadable(demo, tmp_path):
    import shutil
    root = tmp_path / 'd'
    shutil.copytree(demo['out_dir'], root)
    (root / 'ct' / open(root / 'train.txt').read().split()[0]).write_bytes(b'broken')
    ds = DATASETS.build(dict(type='NoduleSegmentationDataset', data_root=str(root),
                             ann_file='train.txt', data_prefix=dict(img_path='ct'),
                             pipeline=[dict(type='PackVolumeSegInputs')]))
    out = ds[0]
    assert out['data_samples'].metainfo['skipped'] == 1


def test_pos_neg_crop_ratio_and_seeding():
    vol = np.zeros((1, 32, 32, 32), np.float32)
    mask = np.zeros((1, 32, 32, 32), np.uint8)
    mask[0, 20:22, 9:11, 15:17] = 1
    crop = RandPosNegCrop(size=(8, 8, 8), pos=1, neg=3)
    hits = 0
    for i in range(200):
        res = crop.transform(dict(img=vol, gt_mask=mask, rng=np.random.default_rng([0, i])))
        assert res['img'].shape == (1, 8, 8, 8) and res['gt_mask'].dtype == np.uint8
        hits += int(res['gt_mask'].any())
    # P(positive centre) = 1/4; a negative patch touches the 2^3 blob with p ~ 9^3/25^3 ~ 5 %
    # (expected 0.25 + 0.75 * 0.047 = 0.285; 200 draws: std 0.032)
    assert 0.19 < hits / 200 < 0.38
    a = crop.transform(dict(img=vol, gt_mask=mask, rng=np.random.default_rng(5)))['crop_centers']
    b = crop.transform(dict(img=vol, gt_mask=mask, rng=np.random.default_rng(5)))['crop_centers']
    assert a == b


def test_segmentation_crops_in_pipeline(demo):
    ds = DATASETS.build(dict(type='NoduleSegmentationDataset', data_root=demo['out_dir'],
                             ann_file='train.txt', data_prefix=dict(img_path='ct'), seed=3,
                             pipeline=[dict(type='RandPosNegCrop', size=(16, 16, 8), pos=1,
                                            neg=0, num_samples=2),
                                       dict(type='PackVolumeSegInputs')]))
    a, b = ds[0], ds[0]
    assert a['inputs'].shape == (2, 1, 16, 16, 8)
    assert a['data_samples'].gt_mask.shape == (2, 1, 16, 16, 8)
    assert np.array_equal(a['inputs'].numpy(), b['inputs'].numpy())  # (seed, epoch, idx)
    # pos only: every patch holds nodule voxels
    assert all(int(m.sum()) > 0 for m in a['data_samples'].gt_mask)
    ds.set_epoch(1)
    assert ds[0]['data_samples'].metainfo['crop_centers'] != \
        a['data_samples'].metainfo['crop_centers']


def test_pos_neg_crop_image_threshold():
    vol = np.zeros((1, 24, 24, 24), np.float32)
    vol[0, 12:] = 0.5  # the 'body' is x >= 12; background centres must fall there
    mask = np.zeros((1, 24, 24, 24), np.uint8)
    mask[0, 20, 20, 20] = 1
    crop = RandPosNegCrop(size=(4, 4, 4), pos=0, neg=1, image_threshold=0.0)
    for i in range(20):
        res = crop.transform(dict(img=vol, gt_mask=mask, rng=np.random.default_rng(i)))
        assert res['crop_centers'][0][0] >= 12


def test_mask_off_grid_is_skipped(demo, tmp_path):
    import shutil

    import nibabel as nib
    root = tmp_path / 'd'
    shutil.copytree(demo['out_dir'], root)
    name = open(root / 'train.txt').read().split()[0]
    mask = root / 'ct' / name.replace('.nii.gz', '_mask.nii.gz')
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.uint8), np.eye(4)), str(mask))
    ds = DATASETS.build(dict(type='NoduleSegmentationDataset', data_root=str(root),
                             ann_file='train.txt', data_prefix=dict(img_path='ct'),
                             pipeline=[dict(type='PackVolumeSegInputs')]))
    assert ds[0]['data_samples'].metainfo['skipped'] == 1


def test_classification_cubes(demo):
    import csv
    ds = DATASETS.build(dict(type='NoduleClassificationDataset', data_root=demo['out_dir'],
                             ann_file='nodules.csv', label_column='malignant',
                             cube_size=(16, 16, 8), data_prefix=dict(img_path='ct'),
                             pipeline=[dict(type='PackVolumeClsInputs')]))
    rows = list(csv.DictReader(open(demo['nodules_csv'])))
    assert len(ds) == len(rows) > 0
    for i, row in enumerate(rows):
        out = ds[i]
        meta = out['data_samples'].metainfo
        # LPS world mm -> RAS -> voxel: the recorded centre voxel
        assert meta['candidate_voxel'] == (int(row['voxelX']), int(row['voxelY']),
                                           int(row['voxelZ']))
        assert out['inputs'].shape == (1, 16, 16, 8)
        assert float(out['data_samples'].gt_label[0]) == float(row['malignant'])
        assert float(out['inputs'][0, 8, 8, 4]) > 0.4  # the centre is nodule, not lung


def test_classification_split_and_metaimage(demo):
    subsets = [f'subset{i}' for i in range(3)]
    mhd = DATASETS.build(dict(type='NoduleClassificationDataset', data_root=demo['out_dir'],
                              ann_file='candidates.csv', split_file='val.txt',
                              volume_ext='.mhd', cube_size=(16, 16, 8),
                              data_prefix=dict(img_path=subsets),
                              pipeline=[dict(type='PackVolumeClsInputs')]))
    nii = DATASETS.build(dict(type='NoduleClassificationDataset', data_root=demo['out_dir'],
                              ann_file='candidates.csv', split_file='val.txt',
                              cube_size=(16, 16, 8), data_prefix=dict(img_path='ct'),
                              pipeline=[dict(type='PackVolumeClsInputs')]))
    assert len(mhd) == len(nii) > 0
    import csv
    val = {line.split('.')[0] for line in open(demo['val_list'])}
    rows = [r for r in csv.DictReader(open(demo['candidates_csv'])) if r['seriesuid'] in val]
    labels = [float(nii[i]['data_samples'].gt_label[0]) for i in range(len(nii))]
    assert labels == [float(r['class']) for r in rows] and 0.0 in labels
    for i in range(len(nii)):
        assert np.array_equal(mhd[i]['inputs'].numpy(), nii[i]['inputs'].numpy())


def test_crop_with_padding():
    vol = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    out = crop_with_padding(vol, (0, 2, 5), (4, 3, 4), -1000)
    assert out.shape == (4, 3, 4)
    assert np.all(out[:2] == -1000) and np.all(out[:, :, 3] == -1000)
    assert np.array_equal(out[2:, :, :3], vol[0:2, 1:4, 3:6])


def test_bad_arguments(demo):
    common = dict(type='NoduleClassificationDataset', data_root=demo['out_dir'],
                  ann_file='candidates.csv', data_prefix=dict(img_path='ct'))
    with pytest.raises(ValueError, match='coord_frame'):
        DATASETS.build(dict(common, coord_frame='XYZ'))
    with pytest.raises(ValueError, match='window'):
        DATASETS.build(dict(common, window=(1000, -1000)))
    with pytest.raises(FileNotFoundError, match='split_file'):
        DATASETS.build(dict(common, split_file='nope.txt'))
    with pytest.raises(ValueError, match='pos and neg'):
        RandPosNegCrop(pos=0, neg=0)


def test_bad_label_column(demo):
    with pytest.raises(ValueError, match='label_column'):
        DATASETS.build(dict(type='NoduleClassificationDataset', data_root=demo['out_dir'],
                            ann_file='annotations.csv', data_prefix=dict(img_path='ct')))


def _cls(root, **kw):
    return DATASETS.build(dict(dict(type='NoduleClassificationDataset', data_root=str(root),
                                    ann_file='candidates.csv', cube_size=(8, 8, 4),
                                    data_prefix=dict(img_path='ct'),
                                    pipeline=[dict(type='PackVolumeClsInputs')]), **kw))


def _rows(root):
    import csv
    return list(csv.DictReader(open(root / 'candidates.csv')))


def test_classification_drops_rows_of_missing_scans(demo, tmp_path):
    import shutil
    root = tmp_path / 'd'
    shutil.copytree(demo['out_dir'], root)
    (root / 'ct' / 'ctphantom_000_0000.nii.gz').unlink()
    rows = _rows(root)
    ds = _cls(root)
    kept = [r for r in rows if r['seriesuid'] != 'ctphantom_000_0000']
    assert 0 < len(kept) < len(rows) and len(ds) == len(kept)
    assert all(ds.get_data_info(i)['seriesuid'] != 'ctphantom_000_0000' for i in range(len(ds)))
    with pytest.raises(FileNotFoundError, match='do not exist'):
        _cls(root, on_error='raise')  # rows kept: the base class' check reports them


def test_classification_corrupt_scan_read_once(demo, tmp_path, monkeypatch):
    import shutil

    import dira_mm.datasets.nodule_classification as nc
    root = tmp_path / 'd'
    shutil.copytree(demo['out_dir'], root)
    bad = root / 'ct' / 'ctphantom_000_0000.nii.gz'
    bad.write_bytes(b'broken')
    reads = []
    real = nc.read_volume
    monkeypatch.setattr(nc, 'read_volume', lambda p, **kw: (reads.append(p), real(p, **kw))[1])
    ds = _cls(root, max_consecutive_skips=1)  # counts scans, not rows
    n_bad = sum(r['seriesuid'] == 'ctphantom_000_0000' for r in _rows(root))
    assert n_bad > 1 and ds.get_data_info(0)['seriesuid'] == 'ctphantom_000_0000'
    out = ds[0]  # every row of the corrupt scan is skipped, then the next scan's first row
    assert out['data_samples'].metainfo['skipped'] == n_bad
    ds[1]
    assert reads.count(str(bad)) == 1
    other = root / 'ct' / 'ctphantom_000_0001.nii.gz'
    other.write_bytes(b'broken')  # two bad scans in a row: more than max_consecutive_skips
    with pytest.raises(RuntimeError, match='in a row'):
        _cls(root, max_consecutive_skips=1)[0]


def test_classification_candidate_outside_volume(demo, tmp_path):
    import shutil
    root = tmp_path / 'd'
    shutil.copytree(demo['out_dir'], root)
    rows = _rows(root)
    with open(root / 'candidates.csv', 'w') as f:
        f.write('seriesuid,coordX,coordY,coordZ,class\n')
        r = rows[0]
        f.write(f"{r['seriesuid']},{float(r['coordX']) + 500},{r['coordY']},{r['coordZ']},1\n")
        f.write(','.join(rows[1].values()) + '\n')
    from dira_mm.datasets.readers import ImageReadError
    with pytest.raises(ImageReadError, match=r'outside the volume.*coord_frame'):
        _cls(root, on_error='raise')[0]
    out = _cls(root)[0]
    assert out['data_samples'].metainfo['skipped'] == 1
    assert float(out['data_samples'].gt_label[0]) == float(rows[1]['class'])


def test_list_files_skip_comments(demo, tmp_path):
    import shutil
    root = tmp_path / 'd'
    shutil.copytree(demo['out_dir'], root)
    names = open(root / 'train.txt').read().split()
    (root / 'train.txt').write_text('# train split\n' + '\n'.join(names) + '\n#' + names[0])
    seg = DATASETS.build(dict(type='NoduleSegmentationDataset', data_root=str(root),
                              ann_file='train.txt', data_prefix=dict(img_path='ct'),
                              on_error='raise', pipeline=[dict(type='PackVolumeSegInputs')]))
    assert len(seg) == 2 and seg[0]['data_samples'].metainfo['skipped'] == 0
    cls = _cls(root, split_file='train.txt')
    uids = {n.split('.')[0] for n in names}
    assert len(cls) == sum(r['seriesuid'] in uids for r in _rows(root))


def test_pos_neg_crop_background_in_body(demo):
    """Background centres with image_threshold=0.05 (-900 HU) lie in body voxels (noisy air
    of the demo phantoms reads above 0 after the window, so 0.0 would not keep them out)."""
    from mmengine.config import Config

    from dira_mm.datasets.volume_readers import hu_window, read_volume
    base = 'configs/benchmarks/segmentation/'
    for cfg, pipeline in [
            ('_base_/datasets/luna16_nodule_64x64x32.py', lambda c: c.train_pipeline),
            ('nodule3d/resnet18-unet3d_finetune_1xb4-adam-20e_demo3d.py',
             lambda c: c.train_dataloader.dataset.dataset.pipeline)]:
        assert pipeline(Config.fromfile(base + cfg))[0]['image_threshold'] == 0.05, cfg
    name = open(demo['train_list']).read().split()[0]
    vol, _ = read_volume(f"{demo['ct_dir']}/{name}")
    img = hu_window(vol, -1000, 1000)[None].astype(np.float32)
    assert float((img[0] > 0).mean()) > float((img[0] > 0.05).mean())  # air noise above 0
    mask = np.zeros(img.shape, np.uint8)
    mask[0, 24, 24, 12] = 1
    crop = RandPosNegCrop(size=(4, 4, 4), pos=0, neg=1, image_threshold=0.05)
    for i in range(40):
        res = crop.transform(dict(img=img, gt_mask=mask, rng=np.random.default_rng([1, i])))
        for c in res['crop_centers']:
            assert img[(0, ) + tuple(c)] > 0.05
