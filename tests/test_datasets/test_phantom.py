"""Chest phantoms: determinism, visible labels, the phantom dataset and the demo data."""
import copy
import json
import os
import os.path as osp
import runpy
import sys
import time

import cv2
import numpy as np

from dira_mm.datasets import (ChestPhantomDataset, ChestXray14Dataset, chest_phantom_masks,
                              generate_chest_phantom, make_demo_dataset, read_image,
                              render_chest_phantom, sample_chest_phantom_params)
from dira_mm.registry import DATASETS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def find_params(condition, start=0):
    for i in range(start, start + 500):
        params = sample_chest_phantom_params([123, i])
        if condition(params['labels']):
            return params
    raise AssertionError('no phantom with the wanted labels')


def test_same_seed_same_bytes():
    a, la = generate_chest_phantom(5)
    b, lb = generate_chest_phantom(5)
    assert a.dtype == np.uint8 and a.shape == (256, 256)
    assert a.tobytes() == b.tobytes() and la == lb
    assert set(la) == {'nodule', 'cardiomegaly', 'effusion'}
    c, _ = generate_chest_phantom(6)
    assert c.tobytes() != a.tobytes()
    d, ld = generate_chest_phantom(np.random.default_rng(5), size=128)
    assert d.shape == (128, 128) and ld == la


def test_labels_are_balanced():
    labels = np.array([[p['labels'][k] for k in ('nodule', 'cardiomegaly', 'effusion')]
                       for p in (sample_chest_phantom_params([0, i]) for i in range(400))])
    rates = labels.mean(0)
    assert ((rates > 0.3) & (rates < 0.5)).all(), rates


def test_looks_like_a_chest():
    params = find_params(lambda lab: not any(lab.values()))
    img = render_chest_phantom(params, 256).astype(float)
    masks = chest_phantom_masks(params, 256)
    outside = img[~masks['body']].mean()
    air = img[masks['air']].mean()
    tissue = img[masks['body'] & ~masks['lungs'] & ~masks['heart']].mean()
    heart = img[masks['heart']].mean()
    assert outside < air < tissue < heart
    assert tissue - air > 40  # dark lungs in a brighter body


def test_nodules_change_only_the_lungs():
    params = find_params(lambda lab: lab['nodule'])
    assert params['nodules']
    without = copy.deepcopy(params)
    without['nodules'] = []
    diff = np.abs(render_chest_phantom(params).astype(int) -
                  render_chest_phantom(without).astype(int))
    air = chest_phantom_masks(params)['air'].astype(np.uint8)
    near_air = cv2.dilate(air, np.ones((7, 7), np.uint8)).astype(bool)
    assert diff.max() > 30  # clearly visible
    assert diff[~near_air].max() == 0  # and only inside the (aerated) lungs
    # each nodule is bright at its centre
    img = render_chest_phantom(params)
    for n in params['nodules']:
        r, c = int(n['v'] * 256), int(n['u'] * 256)
        assert diff[r, c] > 20 and img[r, c] > render_chest_phantom(without)[r, c]


def test_effusion_fills_the_lung_base():
    params = find_params(lambda lab: lab['effusion'])
    without = copy.deepcopy(params)
    without['effusion'] = []
    with_img = render_chest_phantom(params).astype(int)
    diff = with_img - render_chest_phantom(without).astype(int)
    masks = chest_phantom_masks(params)
    fluid = masks['fluid']
    assert fluid.sum() > 200
    assert diff[fluid].mean() > 40  # fluid is much brighter than aerated lung
    lungs = cv2.dilate(masks['lungs'].astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    assert np.abs(diff[~lungs]).max() == 0
    # at the base of the lungs: the fluid's rows are below the aerated lung's centre
    rows = np.nonzero(fluid)[0]
    assert rows.mean() > np.nonzero(masks['air'])[0].mean()


def heart_ratio(params, size=256):
    masks = chest_phantom_masks(params, size)
    heart_cols = np.nonzero(masks['heart'].any(0))[0]
    lung_cols = np.nonzero(masks['lungs'].any(0))[0]
    return (heart_cols[-1] - heart_cols[0] + 1) / (lung_cols[-1] - lung_cols[0] + 1)


def test_cardiomegaly_means_a_wide_heart():
    for i in range(30):
        params = sample_chest_phantom_params([9, i])
        ratio = heart_ratio(params)
        assert abs(ratio - params['ctr']) < 0.02
        if params['labels']['cardiomegaly']:
            assert ratio > 0.52
        else:
            assert ratio < 0.48


def test_render_is_fast():
    params = sample_chest_phantom_params(0)
    render_chest_phantom(params)
    start = time.perf_counter()
    for _ in range(10):
        render_chest_phantom(params)
    assert (time.perf_counter() - start) / 10 < 0.05  # ~8 ms here; generous for loaded CI


def test_phantom_dataset():
    ds = DATASETS.build(dict(type='ChestPhantomDataset', num_samples=6, img_size=64,
                             content_seed=3, seed=1))
    assert len(ds) == 6 and ds.metainfo['classes'] == ('Nodule', 'Cardiomegaly', 'Effusion')
    out = ds[4]
    img, labels = generate_chest_phantom([3, 4], size=64)
    np.testing.assert_array_equal(out['img'], img)
    np.testing.assert_array_equal(
        out['gt_label'], [labels['nodule'], labels['cardiomegaly'], labels['effusion']])
    assert out['gt_label'].dtype == np.float32
    assert out['img_shape'] == (64, 64) and out['skipped'] == 0
    np.testing.assert_array_equal(out['rng'].random(3), np.random.default_rng([1, 0, 4]).random(3))
    # the content does not depend on the augmentation epoch
    ds.set_epoch(5)
    np.testing.assert_array_equal(ds[4]['img'], img)
    assert 'phantom' not in out
    unseeded = ChestPhantomDataset(num_samples=2, img_size=32, serialize_data=False)
    assert 'rng' not in unseeded[0]


def test_make_demo_dataset(tmp_path):
    out = tmp_path / 'demo'
    summary = make_demo_dataset(str(out), num_train=4, num_val=2, size=64, seed=0)
    assert summary['written'] and summary['num_train'] == 5 and summary['num_val'] == 2
    names = sorted(os.listdir(out))
    assert names == sorted(['RG1_UNCI.dcm', 'demo_manifest.json', 'train.txt', 'val.txt'] +
                           [f'phantom_train_{i:05d}.png' for i in range(4)] +
                           [f'phantom_val_{i:05d}.png' for i in range(2)])
    train = (out / 'train.txt').read_text().splitlines()
    val = (out / 'val.txt').read_text().splitlines()
    assert len(train) == 5 and len(val) == 2
    assert train[-1] == 'RG1_UNCI.dcm ' + ' '.join(['0'] * 14)
    for i, line in enumerate(train[:4]):
        tokens = line.split()
        assert tokens[0] == f'phantom_train_{i:05d}.png' and len(tokens) == 15
        labels = sample_chest_phantom_params([0, 0, i])['labels']
        cols = [int(t) for t in tokens[1:]]
        assert cols[5] == labels['nodule'] and cols[1] == labels['cardiomegaly']
        assert cols[2] == labels['effusion']
        assert sum(cols) == sum(labels.values())
        img = read_image(str(out / tokens[0]))
        np.testing.assert_array_equal(img, render_chest_phantom(
            sample_chest_phantom_params([0, 0, i]), 64))
    snapshot = {n: (out / n).read_bytes() for n in names}
    mtimes = {n: os.stat(out / n).st_mtime_ns for n in names}
    # idempotent: a complete folder is left alone
    assert not make_demo_dataset(str(out), num_train=4, num_val=2, size=64, seed=0)['written']
    assert {n: os.stat(out / n).st_mtime_ns for n in names} == mtimes
    # deterministic: a fresh copy has the same bytes
    other = tmp_path / 'again'
    make_demo_dataset(str(other), num_train=4, num_val=2, size=64, seed=0)
    assert {n: (other / n).read_bytes() for n in names} == snapshot
    # an incomplete folder is completed
    os.remove(out / 'phantom_val_00001.png')
    assert make_demo_dataset(str(out), num_train=4, num_val=2, size=64, seed=0)['written']
    assert (out / 'phantom_val_00001.png').read_bytes() == snapshot['phantom_val_00001.png']
    # the lists load as ChestX-ray14 and every file reads, the DICOM included
    ds = ChestXray14Dataset(ann_file='train.txt', data_root=str(out),
                            pipeline=[dict(type='LoadMedicalImage')])
    shapes = [ds[i]['img'].shape for i in range(len(ds))]
    assert shapes[:4] == [(64, 64)] * 4 and shapes[4] == (1955, 1841)
    assert all(ds[i]['skipped'] == 0 for i in range(len(ds)))


def test_make_demo_data_tool(tmp_path, monkeypatch, capsys):
    out = tmp_path / 'tool'
    monkeypatch.setattr(sys, 'argv', ['make_demo_data.py', '--out', str(out), '--num-train',
                                      '2', '--num-val', '1', '--size', '32', '--no-dicom'])
    runpy.run_path(osp.join(REPO, 'tools', 'misc', 'make_demo_data.py'), run_name='__main__')
    assert 'written' in capsys.readouterr().out
    assert (out / 'train.txt').read_text().count('\n') == 2
    assert not (out / 'RG1_UNCI.dcm').exists()


def test_subtle_nodules_and_a_test_split(tmp_path):
    """Nodule size/density ranges are honoured, the rest of the anatomy is the same draw, and
    ``num_test`` adds a third, disjoint split; default folders keep their manifest."""
    subtle = dict(nodule_radius=(0.015, 0.025), nodule_amplitude=(0.08, 0.14))
    radii, amps = [], []
    for i in range(60):
        plain = sample_chest_phantom_params([3, i], p_nodule=1.0)
        small = sample_chest_phantom_params([3, i], p_nodule=1.0, **subtle)
        assert small['heart'] == plain['heart'] and small['lungs'] == plain['lungs']
        assert len(small['nodules']) >= 1
        radii += [n['r'] for n in small['nodules']]
        amps += [n['amplitude'] for n in small['nodules']]
        for n in plain['nodules']:
            assert 0.02 <= n['r'] <= 0.035 and 0.2 <= n['amplitude'] <= 0.3
    assert 0.015 <= min(radii) and max(radii) <= 0.025 and max(radii) - min(radii) > 0.007
    assert 0.08 <= min(amps) and max(amps) <= 0.14 and max(amps) - min(amps) > 0.04
    ds = ChestPhantomDataset(num_samples=3, img_size=32, p_nodule=1.0, **subtle)
    assert all(0.015 <= n['r'] <= 0.025 for d in ds.data_list for n in d['phantom']['nodules'])

    out = tmp_path / 'hard'
    summary = make_demo_dataset(str(out), num_train=3, num_val=2, num_test=4, size=64, seed=1,
                                include_dicom=False, **subtle)
    assert summary['num_test'] == 4 and summary['test_list'] == str(out / 'test.txt')
    test = (out / 'test.txt').read_text().splitlines()
    assert [line.split()[0] for line in test] == [f'phantom_test_{i:05d}.png' for i in range(4)]
    for i, line in enumerate(test):
        params = sample_chest_phantom_params([1, 2, i], **subtle)
        assert int(line.split()[6]) == params['labels']['nodule']
        np.testing.assert_array_equal(read_image(str(out / f'phantom_test_{i:05d}.png')),
                                      render_chest_phantom(params, 64))
    manifest = json.loads((out / 'demo_manifest.json').read_text())
    assert manifest['args']['num_test'] == 4
    assert manifest['args']['nodule_radius'] == [0.015, 0.025]
    assert not make_demo_dataset(str(out), num_train=3, num_val=2, num_test=4, size=64, seed=1,
                                 include_dicom=False, **subtle)['written']
    # other nodule ranges are another dataset: rewritten
    assert make_demo_dataset(str(out), num_train=3, num_val=2, num_test=4, size=64, seed=1,
                             include_dicom=False)['written']
    plain = make_demo_dataset(str(tmp_path / 'plain'), num_train=1, num_val=1, size=32,
                              include_dicom=False)
    args = json.loads((tmp_path / 'plain' / 'demo_manifest.json').read_text())['args']
    assert set(args) == {'num_train', 'num_val', 'size', 'seed', 'include_dicom', 'version'}
    assert 'test_list' not in plain and not (tmp_path / 'plain' / 'test.txt').exists()
