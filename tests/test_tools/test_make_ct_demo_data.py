"""tools/misc/make_ct_demo_data.py: layout, LUNA16 CSVs, MNI152, MetaImage copies, determinism."""
import csv
import hashlib
import importlib.util
import os
import os.path as osp

import numpy as np
import pytest

from dira_mm.datasets.ct_phantom import ras_to_lps, world_to_voxel
from dira_mm.datasets.volume_readers import read_volume

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ARGS = ['--num', '3', '--size', '40', '40', '20', '--num-subsets', '3', '--negatives', '2']


def _tool():
    spec = importlib.util.spec_from_file_location(
        'make_ct_demo_data', osp.join(ROOT, 'tools', 'misc', 'make_ct_demo_data.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _digests(folder):
    out = {}
    for base, _, files in os.walk(folder):
        for name in files:
            path = osp.join(base, name)
            out[osp.relpath(path, folder)] = hashlib.sha1(open(path, 'rb').read()).hexdigest()
    return out


@pytest.fixture(scope='module')
def written(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('d3') / 'demo3d')
    summary = _tool().main(['--out', out, '--metaimage'] + ARGS)
    return out, summary


def test_layout_and_csvs(written, capsys):
    out, summary = written
    assert summary['written'] and summary['num_train'] + summary['num_val'] + \
        summary['num_test'] == 3
    names = [n for split in ('train', 'val', 'test')
             for n in open(osp.join(out, f'{split}.txt')).read().split()]
    assert sorted(names) == [f'ctphantom_000_{i:04d}.nii.gz' for i in range(3)]
    ann = list(csv.DictReader(open(osp.join(out, 'annotations.csv'))))
    cand = list(csv.DictReader(open(osp.join(out, 'candidates.csv'))))
    assert list(ann[0]) == ['seriesuid', 'coordX', 'coordY', 'coordZ', 'diameter_mm']
    assert list(cand[0]) == ['seriesuid', 'coordX', 'coordY', 'coordZ', 'class']
    assert sum(r['class'] == '1' for r in cand) == len(ann) == summary['num_nodules']
    assert sum(r['class'] == '0' for r in cand) == 3 * 2
    # every annotation lands (LPS mm -> RAS -> voxel through the NIfTI affine) in its mask
    for row in ann:
        _, meta = read_volume(osp.join(out, 'ct', row['seriesuid'] + '.nii.gz'))
        mask, _ = read_volume(osp.join(out, 'ct', row['seriesuid'] + '_mask.nii.gz'))
        lps = [float(row[k]) for k in ('coordX', 'coordY', 'coordZ')]
        ijk = world_to_voxel(meta['affine'], ras_to_lps(lps))
        assert np.abs(ijk - np.rint(ijk)).max() < 0.01
        assert mask[tuple(np.rint(ijk).astype(int))] == 1
    # negatives lie outside every nodule mask
    for row in cand:
        if row['class'] == '0':
            _, meta = read_volume(osp.join(out, 'ct', row['seriesuid'] + '.nii.gz'))
            mask, _ = read_volume(osp.join(out, 'ct', row['seriesuid'] + '_mask.nii.gz'))
            ijk = np.rint(world_to_voxel(meta['affine'], ras_to_lps(
                [float(row[k]) for k in ('coordX', 'coordY', 'coordZ')]))).astype(int)
            assert mask[tuple(ijk)] == 0
    readme = open(osp.join(out, 'README.txt')).read()
    assert 'MRI' in readme and 'PHANTOMS' in readme


def test_mni152_written_ras(written):
    from nilearn.datasets import load_mni152_template
    out, _ = written
    vol, meta = read_volume(osp.join(out, 'mri', 'MNI152_T1_2mm.nii.gz'))
    template = load_mni152_template(resolution=2)
    assert vol.shape == template.shape == (99, 117, 95)
    assert meta['orientation'] == ('R', 'A', 'S')
    assert np.allclose(meta['affine'], template.affine)
    assert np.allclose(vol, template.get_fdata(dtype=np.float32), atol=1e-6)


def test_metaimage_copies_equal(written):
    out, _ = written
    for i in range(3):
        uid = f'ctphantom_000_{i:04d}'
        nii, m1 = read_volume(osp.join(out, 'ct', uid + '.nii.gz'))
        mhd, m2 = read_volume(osp.join(out, f'subset{i % 3}', uid + '.mhd'))
        assert np.array_equal(nii, mhd)
        assert np.allclose(m1['affine'], m2['affine'], atol=1e-6)
        assert m2['orientation'] == ('R', 'A', 'S') and m2['format'] == 'metaimage'
        header = open(osp.join(out, f'subset{i % 3}', uid + '.mhd')).read()
        assert 'ElementType = MET_SHORT' in header


def test_idempotent_and_deterministic(written, tmp_path, capsys):
    out, _ = written
    before = {p: os.stat(osp.join(out, p)).st_mtime_ns for p in _digests(out)}
    again = _tool().main(['--out', out, '--metaimage'] + ARGS)
    assert not again['written']
    assert 'already complete' in capsys.readouterr().out
    assert {p: os.stat(osp.join(out, p)).st_mtime_ns for p in before} == before
    other = str(tmp_path / 'copy')
    _tool().main(['--out', other, '--metaimage'] + ARGS)
    assert _digests(other) == _digests(out)
    # the content seed names the series and changes the volumes
    from dira_mm.datasets.ct_phantom_data import make_ct_demo_dataset
    seeded = make_ct_demo_dataset(str(tmp_path / 'seed1'), num=1, size=(40, 40, 20), seed=1,
                                  include_mri=False)
    b = open(osp.join(seeded['ct_dir'], 'ctphantom_001_0000.nii.gz'), 'rb').read()
    assert open(osp.join(out, 'ct', 'ctphantom_000_0000.nii.gz'), 'rb').read() != b
