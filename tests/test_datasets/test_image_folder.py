"""MedicalImageFolder: recursive discovery, sorting, list files, extensions, exclusion,
extensionless DICOM, errors, skipping, and the folder DiRA config building a sample."""
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from pydicom.data import get_testdata_file

from dira_mm.datasets import ImageReadError, MedicalImageFolder
from dira_mm.registry import DATASETS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LOAD = dict(type='LoadMedicalImage')
CT_SMALL = get_testdata_file('CT_small.dcm')


def write_png(path, value=100, size=16):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((size, size), value, np.uint8))


def make_tree(root):
    """root/{b/2.png, a/z/1.JPG, a/0.jpeg, c.dcm, notes.txt, .hidden/x.png, ._y.png, 10.png}."""
    write_png(root / 'b' / '2.png', 20)
    write_png(root / 'a' / 'z' / '1.JPG', 30)
    write_png(root / 'a' / '0.jpeg', 40)
    write_png(root / '10.png', 50)
    shutil.copy(CT_SMALL, root / 'c.dcm')
    write_png(root / '.hidden' / 'x.png')
    (root / '._y.png').write_bytes(b'AppleDouble')
    (root / 'notes.txt').write_text('not an image')
    return root


def build(root, **kwargs):
    cfg = dict(type='MedicalImageFolder', data_root=str(root), pipeline=[LOAD])
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def rel_paths(ds, root):
    return [osp.relpath(ds.get_data_info(i)['img_path'], root) for i in range(len(ds))]


def test_recursive_sorted_discovery(tmp_path):
    ds = build(make_tree(tmp_path))
    # sorted by relative path, extensions case-insensitive, hidden and other files left out
    assert rel_paths(ds, tmp_path) == ['10.png', 'a/0.jpeg', 'a/z/1.JPG', 'b/2.png', 'c.dcm']
    info = ds.get_data_info(0)
    assert osp.isabs(info['img_path']) and 'gt_label' not in info
    assert (ds[1]['img'] == 40).all() and ds[2]['img'].shape == (16, 16)
    dicom = ds[4]['img']
    assert dicom.dtype == np.uint8 and dicom.shape == (128, 128)
    # the same list whatever the order the folders were created in
    other = tmp_path / 'other'
    for rel in reversed(rel_paths(ds, tmp_path)):
        (other / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / rel, other / rel)
    assert rel_paths(build(other), other) == rel_paths(ds, tmp_path)


def test_data_prefix_extensions_and_exclude(tmp_path):
    make_tree(tmp_path)
    assert rel_paths(build(tmp_path, data_prefix=dict(img_path='a')), tmp_path) == [
        'a/0.jpeg', 'a/z/1.JPG']
    assert rel_paths(build(tmp_path, extensions=('png', '.DCM')), tmp_path) == [
        '10.png', 'b/2.png', 'c.dcm']
    assert rel_paths(build(tmp_path, exclude='a/*'), tmp_path) == ['10.png', 'b/2.png', 'c.dcm']
    assert rel_paths(build(tmp_path, exclude=['*.dcm', '*/z/*']), tmp_path) == [
        '10.png', 'a/0.jpeg', 'b/2.png']
    with pytest.raises(ValueError, match='`extensions`'):
        build(tmp_path, extensions=('.', ))


def test_linked_folders_are_followed_once(tmp_path):
    write_png(tmp_path / 'data' / 'a' / '0.png')
    (tmp_path / 'data' / 'a' / 'loop').symlink_to(tmp_path / 'data')  # a cycle
    (tmp_path / 'data' / 'b').symlink_to(tmp_path / 'data' / 'a')  # a second way in
    write_png(tmp_path / 'site' / '1.png')
    (tmp_path / 'data' / 'site').symlink_to(tmp_path / 'site')
    ds = build(tmp_path / 'data')
    assert rel_paths(ds, tmp_path / 'data') == ['a/0.png', 'site/1.png']


def test_extensionless_dicom_flag(tmp_path):
    write_png(tmp_path / '0.png')
    shutil.copy(CT_SMALL, tmp_path / 'scan')
    shutil.copy(CT_SMALL, tmp_path / '1.2.840.113619.2.1')  # named by its UID
    (tmp_path / 'README').write_text('x' * 200)
    assert rel_paths(build(tmp_path), tmp_path) == ['0.png']
    ds = build(tmp_path, extensionless_dicom=True)
    assert rel_paths(ds, tmp_path) == ['0.png', '1.2.840.113619.2.1', 'scan']
    assert ds[2]['img'].shape == (128, 128)


def test_list_file_mode(tmp_path):
    make_tree(tmp_path)
    (tmp_path / 'train.txt').write_text(
        '# a comment\nb/2.png 0 1 0\n\n  a/0.jpeg\nc.dcm extra tokens\n')
    ds = build(tmp_path, ann_file='train.txt')
    assert rel_paths(ds, tmp_path) == ['b/2.png', 'a/0.jpeg', 'c.dcm']  # the list's order
    assert (ds[0]['img'] == 20).all()
    assert len(build(tmp_path, ann_file='train.txt', exclude='*.dcm')) == 2
    with pytest.raises(FileNotFoundError, match='`ann_file` ".*missing.txt" does not exist'):
        build(tmp_path, ann_file='missing.txt')
    (tmp_path / 'empty.txt').write_text('# nothing\n\n')
    with pytest.raises(FileNotFoundError, match='lists no image'):
        build(tmp_path, ann_file='empty.txt')


def test_nothing_found_names_folder_and_extensions(tmp_path):
    (tmp_path / 'notes.txt').write_text('x')
    with pytest.raises(FileNotFoundError) as info:
        build(tmp_path, extensions=('.png', '.dcm'))
    message = str(info.value)
    assert f'found under "{tmp_path}"' in message and "['.png', '.dcm']" in message
    with pytest.raises(FileNotFoundError, match=r"after excluding \['\*'\]"):
        build(make_tree(tmp_path / 'x'), exclude='*')
    with pytest.raises(FileNotFoundError, match='`data_root`'):
        build(tmp_path / 'nowhere')


def test_corrupt_file_is_skipped_as_in_the_base_class(tmp_path):
    for i in range(3):
        write_png(tmp_path / f'{i}.png', 10 * (i + 1))
    (tmp_path / '1.png').write_bytes((tmp_path / '1.png').read_bytes()[:30])
    ds = build(tmp_path, seed=3)
    out = ds[1]
    assert out['skipped'] == 1 and out['sample_idx'] == 2 and (out['img'] == 30).all()
    with pytest.raises(ImageReadError, match='1.png'):
        build(tmp_path, on_error='raise')[1]
    assert isinstance(ds, MedicalImageFolder) and 'MedicalImageFolder(num_samples=3' in repr(ds)


def test_folder_config_builds_a_sample(tmp_path):
    for split, num in (('train', 3), ('val', 2)):
        for i in range(num):
            write_png(tmp_path / split / f'p{i}' / f'{i}.png', 50 + i, size=48)
    shutil.copy(CT_SMALL, tmp_path / 'train' / 'ct.dcm')
    for config in ('configs/_base_/datasets/folder_dira_224.py',
                   'configs/dira/dira-mocov2_resnet50-unet_4xb64-staged-coslr-800e_folder.py'):
        cfg = Config.fromfile(osp.join(REPO, config), lazy_import=False)
        init_default_scope(cfg.get('default_scope', 'dira_mm'))
        sizes = []
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            dataset = cfg[key].dataset
            assert dataset.type == 'MedicalImageFolder'
            dataset.data_root = str(tmp_path)
            dataset.pipeline[1].crop.size = 64
            ds = DATASETS.build(dataset)
            out = ds[len(ds) - 1]
            assert [tuple(v.shape) for v in out['inputs']] == [(1, 64, 64)] * 2
            assert tuple(out['data_samples'].target.shape) == (1, 64, 64)
            sizes.append(len(ds))
        assert sizes == [4, 2, 2]
        assert cfg.val_dataloader.dataset.seed == 2022 and cfg.train_dataloader.dataset.seed == 0
