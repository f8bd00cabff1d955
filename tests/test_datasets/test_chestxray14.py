"""ChestXray14Dataset and the MedicalImageDataset policies: list parsing, early path checks,
skipping unreadable files, per-sample seeds."""
import os.path as osp

import cv2
import numpy as np
import pytest

from dira_mm.datasets import ChestXray14Dataset, ImageReadError
from dira_mm.datasets.chestxray14 import CHESTXRAY14_CLASSES
from dira_mm.registry import DATASETS

OFFICIAL = '/work/shared/data/chestxray14/Xray14_train_official.txt'
LOAD = dict(type='LoadMedicalImage')


def labels_line(name, ones=()):
    cols = ['1' if i in ones else '0' for i in range(14)]
    return ' '.join([name] + cols)


def make_data(root, num=5, corrupt=(), missing=()):
    """``num`` 8x8 PNGs with value 10 * (i + 1) in root/images and root/list.txt."""
    img_dir = root / 'images'
    img_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(num):
        name = f'{i:03d}.png'
        if i in corrupt:
            ok, buf = cv2.imencode('.png', np.zeros((8, 8), np.uint8))
            (img_dir / name).write_bytes(buf.tobytes()[:30])
        elif i not in missing:
            cv2.imwrite(str(img_dir / name), np.full((8, 8), 10 * (i + 1), np.uint8))
        lines.append(labels_line(name, ones=(i % 14, )))
    (root / 'list.txt').write_text('\n'.join(lines) + '\n')
    return root


def build(root, **kwargs):
    cfg = dict(type='ChestXray14Dataset', data_root=str(root), ann_file='list.txt',
               data_prefix=dict(img_path='images'), pipeline=[LOAD])
    cfg.update(kwargs)
    return DATASETS.build(cfg)




def test_metainfo_and_labels(tmp_path):
    ds = build(make_data(tmp_path))
    assert ds.metainfo['classes'] == CHESTXRAY14_CLASSES
    assert CHESTXRAY14_CLASSES[0] == 'Atelectasis' and CHESTXRAY14_CLASSES[-1] == 'Hernia'
    assert CHESTXRAY14_CLASSES[5] == 'Nodule' and len(CHESTXRAY14_CLASSES) == 14
    assert len(ds) == 5
    info = ds.get_data_info(3)
    assert info['img_path'] == str(tmp_path / 'images' / '003.png')
    assert osp.isabs(info['img_path'])
    assert info['gt_label'].dtype == np.float32 and info['gt_label'].shape == (14, )
    np.testing.assert_array_equal(np.flatnonzero(info['gt_label']), [3])
    out = ds[3]
    assert out['img'].dtype == np.uint8 and (out['img'] == 40).all()
    assert out['skipped'] == 0 and out['sample_idx'] == 3 and 'rng' not in out


def test_blank_lines_uncertain_labels_and_name_only(tmp_path):
    make_data(tmp_path, num=2)
    (tmp_path / 'list.txt').write_text(
        '\n' + labels_line('000.png') + '\n\n   \n' +
        '001.png ' + ' '.join(['-1'] + ['0'] * 13) + '\n')
    ds = build(tmp_path)
    assert len(ds) == 2 and ds.get_data_info(1)['gt_label'][0] == -1
    (tmp_path / 'names.txt').write_text('000.png\n001.png\n')
    ds = build(tmp_path, ann_file='names.txt', with_label=False)
    assert len(ds) == 2 and 'gt_label' not in ds.get_data_info(0)
    # name-only lines need with_label=False
    with pytest.raises(ValueError, match=r'line 1: expected a file name and 14 labels'):
        build(tmp_path, ann_file='names.txt')


@pytest.mark.parametrize('bad, reason', [
    ('002.png 0 1 0', 'got 4 fields'),
    ('002.png ' + ' '.join(['0'] * 13 + ['x']), 'must be numbers'),
    ('002.png ' + ' '.join(['0'] * 13 + ['2']), 'must be 0, 1 or -1'),
])
def test_malformed_line_names_file_and_line(tmp_path, bad, reason):
    make_data(tmp_path, num=3)
    lines = (tmp_path / 'list.txt').read_text().splitlines()
    lines[2] = bad
    (tmp_path / 'list.txt').write_text('\n'.join(lines) + '\n')
    with pytest.raises(ValueError) as info:
        build(tmp_path)
    message = str(info.value)
    assert 'line 3' in message and reason in message
    assert str(tmp_path / 'list.txt') in message


def test_wrong_paths_raise_one_clear_error(tmp_path):
    make_data(tmp_path)
    with pytest.raises(FileNotFoundError, match='`data_root`') as info:
        build(tmp_path / 'nowhere')
    assert str(tmp_path / 'nowhere') in str(info.value)
    with pytest.raises(FileNotFoundError, match='`ann_file`') as info:
        build(tmp_path, ann_file='missing.txt')
    assert str(tmp_path / 'missing.txt') in str(info.value)
    with pytest.raises(FileNotFoundError, match=r"`data_prefix\['img_path'\]`"):
        build(tmp_path, data_prefix=dict(img_path='imgs'))
    with pytest.raises(ValueError, match='`ann_file`'):
        build(tmp_path, ann_file='')
    # the folders exist but the names do not resolve: data root probably wrong
    with pytest.raises(FileNotFoundError, match='probably wrong'):
        build(tmp_path, data_prefix=dict(img_path=''))
    # lazy_init defers the checks to full_init
    ds = build(tmp_path / 'nowhere', lazy_init=True)
    with pytest.raises(FileNotFoundError, match='`data_root`'):
        ds.full_init()


def test_check_files_some_missing(tmp_path, mm_logs):
    make_data(tmp_path, num=5, missing=(4, ))
    build(tmp_path, check_files='sample')  # warns only
    assert any('1 of the 5 images checked do not exist' in m for m in mm_logs.messages)
    with pytest.raises(FileNotFoundError, match='1 of the 5'):
        build(tmp_path, check_files='all', on_error='raise')
    assert len(build(tmp_path, check_files='none')) == 5


def test_corrupt_image_is_skipped_deterministically(tmp_path, mm_logs):
    ds = build(make_data(tmp_path, num=5, corrupt=(2, )))
    out = ds[2]
    assert out['skipped'] == 1 and out['sample_idx'] == 3 and (out['img'] == 40).all()
    assert ds[1]['skipped'] == 0 and ds[3]['skipped'] == 0
    bad = str(tmp_path / 'images' / '002.png')
    warnings = [m for m in mm_logs.messages if bad in m]
    assert len(warnings) == 1 and 'truncated or corrupt' in warnings[0]
    ds[2]  # the same file is reported once per process
    assert len([m for m in mm_logs.messages if bad in m]) == 1


def test_skips_wrap_around_and_give_up(tmp_path, mm_logs):
    ds = build(make_data(tmp_path, num=5, corrupt=(3, ), missing=(4, )), check_files='none')
    out = ds[3]
    assert out['skipped'] == 2 and out['sample_idx'] == 0 and (out['img'] == 10).all()
    ds = build(tmp_path, check_files='none', max_consecutive_skips=1)
    with pytest.raises(RuntimeError, match='2 images in a row'):
        ds[3]


def test_on_error_raise_names_the_path(tmp_path):
    ds = build(make_data(tmp_path, num=5, corrupt=(2, )), on_error='raise')
    with pytest.raises(ImageReadError) as info:
        ds[2]
    assert str(tmp_path / 'images' / '002.png') in str(info.value)


def test_transform_bugs_are_not_skipped(tmp_path):

    def broken(results):
        raise ValueError('a bug in a transform')

    ds = build(make_data(tmp_path), pipeline=[LOAD, broken])
    with pytest.raises(ValueError, match='a bug in a transform'):
        ds[0]
    ds = build(tmp_path, pipeline=[LOAD, lambda results: None])
    with pytest.raises(RuntimeError, match='returned None'):
        ds[0]


def test_skipped_reaches_the_data_sample(tmp_path):
    pytest.importorskip('dira_mm.datasets.transforms.formatting')
    ds = build(make_data(tmp_path, num=4, corrupt=(1, )),
               pipeline=[LOAD, dict(type='PackDiRAInputs')])
    assert ds[1]['data_samples'].skipped == 1
    assert ds[0]['data_samples'].skipped == 0


def draw(results):
    results['draws'] = results['rng'].random(4)
    return results


def test_per_sample_rng(tmp_path):
    make_data(tmp_path, num=4)
    ds = build(tmp_path, seed=7, pipeline=[LOAD, draw])
    first = ds[2]['draws']
    np.testing.assert_array_equal(first, ds[2]['draws'])  # same (seed, epoch, idx)
    np.testing.assert_array_equal(first, np.random.default_rng([7, 0, 2]).random(4))
    np.testing.assert_array_equal(first, ds.sample_rng(2).random(4))
    assert not np.array_equal(first, ds[1]['draws'])  # another index
    ds.set_epoch(1)
    np.testing.assert_array_equal(ds[2]['draws'], np.random.default_rng([7, 1, 2]).random(4))
    assert not np.array_equal(first, ds[2]['draws'])  # another epoch
    other = build(tmp_path, seed=8, pipeline=[LOAD, draw])
    assert not np.array_equal(first, other[2]['draws'])  # another seed
    # a skipped sample keeps the generator of the requested index
    ds = build(make_data(tmp_path / 'c', num=4, corrupt=(2, )), seed=7, pipeline=[LOAD, draw])
    np.testing.assert_array_equal(ds[2]['draws'], np.random.default_rng([7, 0, 2]).random(4))
    with pytest.raises(ValueError, match='seed'):
        build(tmp_path, seed=-1)


def test_serialize_and_lazy_init_options(tmp_path):
    make_data(tmp_path, num=5, corrupt=(1, ))
    for kwargs in (dict(serialize_data=False), dict(lazy_init=True), dict(test_mode=True),
                   dict(indices=[0, 1, 2])):
        ds = build(tmp_path, **kwargs)
        assert ds[1]['skipped'] == 1 and (ds[1]['img'] == 30).all()
        assert ds[-1]['sample_idx'] == len(ds) - 1


def test_invalid_options(tmp_path):
    make_data(tmp_path)
    with pytest.raises(ValueError, match='on_error'):
        build(tmp_path, on_error='ignore')
    with pytest.raises(ValueError, match='check_files'):
        build(tmp_path, check_files='some')


@pytest.mark.skipif(not osp.isfile(OFFICIAL), reason='official DiRA lists not available')
def test_official_list_parses():
    ds = ChestXray14Dataset(ann_file=OFFICIAL, check_files='none', serialize_data=False)
    assert len(ds) == 75312
    info = ds.get_data_info(1)
    assert info['img_path'].endswith('00000001_001.png')
    np.testing.assert_array_equal(np.flatnonzero(info['gt_label']), [1, 10])
