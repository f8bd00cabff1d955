"""CheXpertDataset: CSV parsing, uncertainty policies, views, path resolution, errors, and the
CheXpert DiRA configs building a sample through the full pipeline."""
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from dira_mm.datasets import (CHEXPERT_CLASSES, CHEXPERT_UNCERTAIN_PROTOCOL,
                              ChestXray14Dataset, CheXpertDataset, ImageReadError)
from dira_mm.registry import DATASETS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HEADER = 'Path,Sex,Age,Frontal/Lateral,AP/PA,' + ','.join(CHEXPERT_CLASSES)
RELEASE = 'CheXpert-v1.0-small'
LOAD = dict(type='LoadMedicalImage')
CLS = {name: i for i, name in enumerate(CHEXPERT_CLASSES)}
# (view, AP/PA, sex, age, labels by class name; others blank)
ROWS = [
    ('Frontal', 'AP', 'Female', '68', {'Edema': '1.0', 'Atelectasis': '-1.0'}),
    ('Lateral', '', 'Male', '87', {'Cardiomegaly': '1.0'}),
    ('Frontal', 'PA', 'Male', '', {'Cardiomegaly': '-1.0', 'Edema': '-1.0', 'Fracture': '0.0'}),
    ('Frontal', 'AP', 'Unknown', '41', {'No Finding': '1.0', 'Pleural Effusion': '-1.0'}),
]


def image_rel(i, view):
    return f'train/patient{i:05d}/study1/view1_{view.lower()}.jpg'


def write_chexpert(root, rows=ROWS, corrupt=(), name='train.csv'):
    """A release folder root/CheXpert-v1.0-small with 16x16 JPEGs of value 20 * (i + 1)."""
    release = root / RELEASE
    lines = [HEADER]
    for i, (view, ap_pa, sex, age, labels) in enumerate(rows):
        rel = image_rel(i, view)
        path = release / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if i in corrupt:
            path.write_bytes(b'\xff\xd8\xff' + b'\x00' * 20)
        else:
            cv2.imwrite(str(path), np.full((16, 16), 20 * (i + 1), np.uint8))
        cells = [labels.get(c, '') for c in CHEXPERT_CLASSES]
        lines.append(','.join([f'{RELEASE}/{rel}', sex, age, view, ap_pa] + cells))
    (release / name).write_text('\n'.join(lines) + '\n')
    return root


def build(root, ann_file=f'{RELEASE}/train.csv', **kwargs):
    cfg = dict(type='CheXpertDataset', data_root=str(root), ann_file=ann_file, pipeline=[LOAD])
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def label(ds, idx, name):
    return float(ds.get_data_info(idx)['gt_label'][CLS[name]])


def test_classes_and_metadata(tmp_path):
    ds = build(write_chexpert(tmp_path))
    assert ds.metainfo['classes'] == CHEXPERT_CLASSES and len(CHEXPERT_CLASSES) == 14
    assert CHEXPERT_CLASSES[0] == 'No Finding' and CHEXPERT_CLASSES[-1] == 'Support Devices'
    assert len(ds) == 3  # frontal only by default
    info = ds.get_data_info(1)  # CSV row 2 (the lateral row 1 is filtered out)
    assert info['img_path'] == str(tmp_path / RELEASE / image_rel(2, 'Frontal'))
    assert info['view'] == 'Frontal' and info['ap_pa'] == 'PA' and info['sex'] == 'Male'
    assert info['age'] is None and ds.get_data_info(0)['age'] == 68
    # gt_label is stored as ChestXray14Dataset stores it
    assert info['gt_label'].dtype == np.float32 and info['gt_label'].shape == (14, )
    out = ds[1]
    assert out['img'].dtype == np.uint8 and out['img'].shape == (16, 16)
    assert abs(int(out['img'].mean()) - 60) <= 2 and out['skipped'] == 0
    # a subset of the classes reads only those columns, in that order
    sub = build(tmp_path, metainfo=dict(classes=('Edema', 'Atelectasis')), uncertain='zeros')
    np.testing.assert_array_equal(sub.get_data_info(0)['gt_label'], [1.0, 0.0])


def test_gt_label_matches_chestxray14_storage(tmp_path):
    root = write_chexpert(tmp_path)
    (tmp_path / 'list.txt').write_text(f'{RELEASE}/{image_rel(0, "Frontal")} ' +
                                       ' '.join(['1'] + ['0'] * 13) + '\n')
    cxr = ChestXray14Dataset(ann_file='list.txt', data_root=str(root))
    ours = CheXpertDataset(ann_file=f'{RELEASE}/train.csv', data_root=str(root))
    a, b = cxr.get_data_info(0)['gt_label'], ours.get_data_info(0)['gt_label']
    assert type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape


@pytest.mark.parametrize('policy, value', [('ones', 1.0), ('zeros', 0.0), ('ignore', -1.0)])
def test_uncertain_policy(tmp_path, policy, value):
    ds = build(write_chexpert(tmp_path), uncertain=policy)
    assert label(ds, 0, 'Atelectasis') == value
    assert label(ds, 1, 'Cardiomegaly') == value and label(ds, 1, 'Edema') == value
    # certain values are untouched, blanks are 0
    assert label(ds, 0, 'Edema') == 1.0 and label(ds, 1, 'Fracture') == 0.0
    assert label(ds, 0, 'Pneumonia') == 0.0 and label(ds, 2, 'No Finding') == 1.0


def test_uncertain_per_class_override(tmp_path):
    ds = build(write_chexpert(tmp_path), uncertain='ignore',
               uncertain_per_class=CHEXPERT_UNCERTAIN_PROTOCOL)
    assert label(ds, 0, 'Atelectasis') == 1.0  # U-Ones
    assert label(ds, 1, 'Edema') == 1.0  # U-Ones
    assert label(ds, 1, 'Cardiomegaly') == 0.0  # U-Zeros
    assert label(ds, 2, 'Pleural Effusion') == 0.0  # U-Zeros
    assert CHEXPERT_UNCERTAIN_PROTOCOL == {'Atelectasis': 'ones', 'Edema': 'ones',
                                           'Cardiomegaly': 'zeros', 'Consolidation': 'zeros',
                                           'Pleural Effusion': 'zeros'}
    ds = build(tmp_path, uncertain='zeros', uncertain_per_class={'Edema': 'ignore'})
    assert label(ds, 1, 'Edema') == -1.0 and label(ds, 1, 'Cardiomegaly') == 0.0
    with pytest.raises(ValueError, match=r"unknown classes \['Effusion'\]"):
        build(tmp_path, uncertain_per_class={'Effusion': 'ones'})
    with pytest.raises(ValueError, match=r"`uncertain_per_class\['Edema'\]` must be one of"):
        build(tmp_path, uncertain_per_class={'Edema': 'one'})
    with pytest.raises(ValueError, match='`uncertain` must be one of'):
        build(tmp_path, uncertain='U-Ones')


@pytest.mark.parametrize('blank', [0, 1, -1])
def test_blank_value(tmp_path, blank):
    ds = build(write_chexpert(tmp_path), blank=blank, uncertain='ones')
    assert label(ds, 0, 'Pneumonia') == blank and label(ds, 0, 'Atelectasis') == 1.0
    assert label(ds, 1, 'Fracture') == 0.0  # an explicit 0.0 is not blank


def test_blank_value_invalid(tmp_path):
    with pytest.raises(ValueError, match='`blank` must be 0, 1 or -1'):
        build(write_chexpert(tmp_path), blank=0.5)


def test_views(tmp_path):
    root = write_chexpert(tmp_path)
    lateral = build(root, views='Lateral')
    assert len(lateral) == 1 and lateral.get_data_info(0)['view'] == 'Lateral'
    assert lateral.get_data_info(0)['ap_pa'] == ''
    assert label(lateral, 0, 'Cardiomegaly') == 1.0
    both = build(root, views=('Frontal', 'Lateral'))
    assert [both.get_data_info(i)['view'] for i in range(4)] == [r[0] for r in ROWS]
    with pytest.raises(ValueError, match='`views` must be a non-empty subset'):
        build(root, views=('AP', ))
    with pytest.raises(ValueError, match='no row with a view'):
        build(write_chexpert(tmp_path / 'f', rows=ROWS[:1]), views='Lateral')


def test_path_resolution(tmp_path):
    root = write_chexpert(tmp_path)
    expected = str(tmp_path / RELEASE / image_rel(0, 'Frontal'))
    # data_root above the release folder: the CSV path as is
    assert build(root).get_data_info(0)['img_path'] == expected
    # data_root is the release folder: the first component is stripped
    inside = build(root / RELEASE, ann_file='train.csv')
    assert inside.get_data_info(0)['img_path'] == expected
    assert build(root / RELEASE, ann_file='train.csv',
                 strip_components=1).get_data_info(0)['img_path'] == expected
    # an absolute CSV path and a data_prefix
    assert build('', ann_file=str(root / RELEASE / 'train.csv'),
                 data_prefix=dict(img_path=str(root))).get_data_info(0)['img_path'] == expected
    with pytest.raises(FileNotFoundError, match='is neither at') as info:
        build(root / RELEASE / 'train', ann_file='../train.csv')
    assert 'strip_components' not in str(info.value) and expected not in str(info.value)
    # a fixed strip that does not resolve: the base class's check names the folders
    with pytest.raises(FileNotFoundError, match='probably wrong'):
        build(root, strip_components=1)
    with pytest.raises(ValueError, match='strip_components'):
        build(root, strip_components=-1)
    # check_files='none' (e.g. remote storage): nothing found locally, the path is kept
    ds = build(root / RELEASE / 'train', ann_file='../train.csv', check_files='none')
    assert ds.get_data_info(0)['img_path'] == str(
        root / RELEASE / 'train' / RELEASE / image_rel(0, 'Frontal'))


def test_missing_columns_name_file_and_columns(tmp_path):
    root = write_chexpert(tmp_path)
    csv = root / RELEASE / 'train.csv'
    lines = csv.read_text().splitlines()
    lines[0] = lines[0].replace(',Edema,', ',Oedema,')
    csv.write_text('\n'.join(lines) + '\n')
    with pytest.raises(ValueError, match=r"missing column\(s\) 'Edema'; the header is Path") \
            as info:
        build(root)
    assert str(csv) in str(info.value)
    assert len(build(root, with_label=False)) == 3  # labels not read: no need for the column
    assert 'gt_label' not in build(root, with_label=False).get_data_info(0)
    csv.write_text('Path,Sex\n' + f'{RELEASE}/{image_rel(0, "Frontal")},Male\n')
    with pytest.raises(ValueError, match=r"missing column\(s\) 'Frontal/Lateral'"):
        build(root, with_label=False)
    ds = build(root, with_label=False, views=('Frontal', 'Lateral'))  # a bare list of paths
    assert len(ds) == 1 and 'view' not in ds.get_data_info(0)
    csv.write_text('')
    with pytest.raises(ValueError, match='the file is empty'):
        build(root)


@pytest.mark.parametrize('column, bad, expected', [
    ('Edema', '2.0', '1.0, 0.0, -1.0'),
    ('Fracture', 'yes', '1.0, 0.0, -1.0'),
    ('Frontal/Lateral', 'Oblique', '"Frontal" or "Lateral"'),
    ('Age', 'old', 'a whole number'),
])
def test_bad_values_name_file_line_and_column(tmp_path, column, bad, expected):
    root = write_chexpert(tmp_path)
    csv = root / RELEASE / 'train.csv'
    lines = csv.read_text().splitlines()
    cells = lines[3].split(',')
    cells[HEADER.split(',').index(column)] = bad
    lines[3] = ','.join(cells)
    csv.write_text('\n'.join(lines) + '\n')
    with pytest.raises(ValueError) as info:
        build(root)
    message = str(info.value)
    assert str(csv) in message and 'line 4' in message and f'column "{column}"' in message
    assert f'"{bad}"' in message and expected in message


def test_other_spellings_and_ragged_rows(tmp_path):
    root = write_chexpert(tmp_path)
    csv = root / RELEASE / 'train.csv'
    lines = csv.read_text().splitlines()
    cells = lines[1].split(',')
    cells[5 + CLS['Edema']] = ' 1 '
    cells[5 + CLS['Atelectasis']] = '-1.00'
    lines[1] = ','.join(cells)
    csv.write_text('\ufeff' + '\n'.join(lines) + '\n\n')  # a BOM and a trailing blank line
    ds = build(root, uncertain='ignore')
    assert label(ds, 0, 'Edema') == 1.0 and label(ds, 0, 'Atelectasis') == -1.0
    csv.write_text('\n'.join(lines + ['a.jpg,Male']) + '\n')
    with pytest.raises(ValueError, match='line 6: expected 19 fields'):
        build(root)


def test_corrupt_image_is_skipped(tmp_path):
    ds = build(write_chexpert(tmp_path, corrupt=(0, )))
    out = ds[0]
    assert out['skipped'] == 1 and out['sample_idx'] == 1
    with pytest.raises(ImageReadError, match='view1_frontal.jpg'):
        build(tmp_path, on_error='raise')[0]


def build_config_sample(path, opts):
    """Build the train dataset of ``path`` with ``opts`` at 64 x 64 and pack sample 0."""
    cfg = Config.fromfile(path, lazy_import=False)
    init_default_scope(cfg.get('default_scope', 'dira_mm'))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.update(opts[key] if key in opts else opts['train_dataloader'])
        cfg[key].dataset.pipeline[1].crop.size = 64
    samples = []
    for key in ('train_dataloader', 'val_dataloader'):
        ds = DATASETS.build(cfg[key].dataset)
        assert isinstance(ds, DATASETS.get(cfg[key].dataset.type))
        out = ds[0]
        assert [tuple(v.shape) for v in out['inputs']] == [(1, 64, 64)] * 2
        assert tuple(out['data_samples'].target.shape) == (1, 64, 64)
        samples.append((ds, out))
    return cfg, samples


@pytest.mark.parametrize('config', [
    'configs/_base_/datasets/chexpert_dira_224.py',
    'configs/dira/dira-mocov2_resnet50-unet_4xb64-staged-coslr-800e_chexpert.py',
    'configs/dira/dira_mocov2_chexpert.py',
])
def test_chexpert_configs_build_a_sample(tmp_path, config):
    root = write_chexpert(tmp_path)
    write_chexpert(tmp_path, rows=ROWS[2:], name='valid.csv')
    cfg, [(train, out), (val, _)] = build_config_sample(
        osp.join(REPO, config), dict(train_dataloader=dict(data_root=str(root))))
    assert cfg.train_dataloader.dataset.ann_file == f'{RELEASE}/train.csv'
    assert cfg.val_dataloader.dataset.ann_file == f'{RELEASE}/valid.csv'
    assert cfg.test_dataloader.dataset.type == 'CheXpertDataset'
    assert len(train) == 3 and len(val) == 2 and train.seed == 0 and val.seed == 2022
    assert out['data_samples'].gt_label.shape == (14, )
    assert cfg.val_dataloader.dataset.pipeline[1].keep_clean
    if 'dira/' in config:  # the model and schedule of the ChestX-ray14 staged recipe
        assert cfg.model.type == 'DiRA' and cfg.train_cfg.max_epochs == 800
        assert cfg.train_dataloader.batch_size == 64
