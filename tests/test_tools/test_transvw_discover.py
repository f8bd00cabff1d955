"""tools/misc/transvw_discover.py on tiny synthetic volumes: counts, coordinates, neighbours
(brute force), crops, multi-resolution, air filter, determinism."""
import csv
import json
import os.path as osp
import sys

import nibabel as nib
import numpy as np
import pytest
import torch
import torch.nn.functional as F

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tools', 'misc'))
import transvw_discover as td  # noqa: E402

CROP = (8, 8, 4)


def _volumes(folder, n=8, seed=0, air_half=False, prefix='p', nifti=False):
    """``.npy`` HU arrays, or NIfTI files (identity affine: RAS, the same axes) with
    ``nifti``; one run must not mix them."""
    rng = np.random.default_rng(seed)
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(n):
        shape = (24 + (i % 3), 24, 14)
        v = (rng.random(shape) * 600 - 1000 + 60 * i).astype(np.float32)  # patient offsets
        if air_half:
            v[:12] = -950.0
            v[12:] = 40.0
        if nifti:
            p = folder / f'{prefix}{i}.nii.gz'
            nib.save(nib.Nifti1Image(v, np.eye(4)), str(p))
        else:
            p = folder / f'{prefix}{i}.npy'
            np.save(p, v)
        paths.append(str(p))
    return paths


def _run(tmp_path, train, out, *extra):
    args = [str(train), '--out', str(out), '--num-classes', '3', '--top-k', '4',
            '--crop-size', *map(str, CROP), '--border', '4', '4', '2', '--no-air-filter',
            '--feature-source', 'intensity', '--feature-size', '8', '8', '4', '--seed', '3',
            '--quiet', *extra]
    return td.main(args)


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _windowed(path):
    if path.endswith('.npy'):
        v = np.load(path)
    else:
        v = np.asanyarray(nib.load(path).dataobj).astype(np.float32)
    return np.clip((v + 1000) / 2000, 0, 1)


def test_discovery_classes_coordinates_neighbours_crops(tmp_path):
    paths = _volumes(tmp_path / 'train', nifti=True)
    val = _volumes(tmp_path / 'val', n=5, seed=1, prefix='v', nifti=True)
    out = tmp_path / 'out'
    summary = _run(tmp_path, tmp_path / 'train', out, '--val', str(tmp_path / 'val'),
                   '--top-k-val', '2', '--multi-res', '--multi-res-size', '6', '10',
                   '--multi-res-offset', '2')
    rows = _rows(out / 'train.csv')
    vrows = _rows(out / 'val.csv')
    meta = json.load(open(out / 'discovery.json'))
    assert meta['args']['num_classes'] == 3 and meta['args']['seed'] == 3
    # brute-force features: the windowed volume resized to 8 x 8 x 4, flattened
    feats = {}
    for p in paths + val:
        t = torch.from_numpy(_windowed(p))[None, None]
        feats[td.patient_id(p)] = F.interpolate(t, size=(8, 8, 4), mode='trilinear',
                                                align_corners=False).flatten().numpy()
    train_ids = [td.patient_id(p) for p in paths]
    val_ids = [td.patient_id(p) for p in val]
    coords = []
    for c in range(3):
        base = [r for r in rows if int(r['class']) == c and r['resolution'] == '0']
        assert len(base) == 4  # --top-k instances per class
        assert len([r for r in rows if int(r['class']) == c]) == 12  # x3 with --multi-res
        assert len({(r['x'], r['y'], r['z']) for r in base}) == 1  # same coordinate
        x, y, z = (int(base[0][k]) for k in 'xyz')
        coords.append((x, y, z))
        ref = meta['classes'][c]['ref_patient']
        dist = {pid: float(np.sqrt(sum((a - b) ** 2 for a, b in zip(feats[pid], feats[ref]))))
                for pid in train_ids}
        nearest = sorted(train_ids, key=lambda pid: dist[pid])[:4]
        assert {r['patient'] for r in base} == set(nearest) and ref in nearest
        vdist = {pid: float(np.linalg.norm(feats[pid] - feats[ref])) for pid in val_ids}
        vbase = [r for r in vrows if int(r['class']) == c]
        assert {r['patient'] for r in vbase} == set(sorted(val_ids, key=vdist.get)[:2])
        # each instance is the windowed crop of its patient at the coordinate
        for r in base + vbase:
            src = [p for p in paths + val if td.patient_id(p) == r['patient']][0]
            cube = np.load(out / r['path'])
            assert cube.shape == CROP and cube.dtype == np.float32
            np.testing.assert_allclose(cube, _windowed(src)[x:x + 8, y:y + 8, z:z + 4],
                                       atol=1e-6)
        # the border (4, 4, 2) and the smallest volume (24, 24, 14) bound the start
        assert 4 <= x <= 24 - 8 - 1 - 4 and 2 <= z <= 14 - 4 - 1 - 2
        # multi-resolution crops: same z, in-plane offset in [-2, 2), side in [6, 10)
        for r in rows:
            if int(r['class']) == c and r['resolution'] != '0':
                assert int(r['z']) == z
                assert -2 <= int(r['x']) - x < 2 and -2 <= int(r['y']) - y < 2
                assert np.load(out / r['path']).shape == CROP
    for i in range(3):
        for j in range(i):
            assert np.linalg.norm(np.subtract(coords[i], coords[j])) >= 5
    # distinct references
    assert len({c['ref'] for c in meta['classes']}) == 3
    assert summary['skipped'] == []


def test_discovery_is_deterministic_by_seed(tmp_path):
    _volumes(tmp_path / 'train')
    _run(tmp_path, tmp_path / 'train', tmp_path / 'a')
    _run(tmp_path, tmp_path / 'train', tmp_path / 'b')
    a, b = _rows(tmp_path / 'a' / 'train.csv'), _rows(tmp_path / 'b' / 'train.csv')
    assert a == b
    for r in a:
        np.testing.assert_array_equal(np.load(tmp_path / 'a' / r['path']),
                                      np.load(tmp_path / 'b' / r['path']))
    _run(tmp_path, tmp_path / 'train', tmp_path / 'c', '--seed', '4')
    c = _rows(tmp_path / 'c' / 'train.csv')
    assert [(r['x'], r['y'], r['z'], r['patient']) for r in c] != \
        [(r['x'], r['y'], r['z'], r['patient']) for r in a]


def test_discovery_air_filter_list_file_and_skips(tmp_path):
    paths = _volumes(tmp_path / 'train', air_half=True)
    bad = tmp_path / 'train' / 'broken.npy'
    bad.write_bytes(b'garbage')
    lst = tmp_path / 'list.txt'
    # first token per line (a trailing note is ignored), '#' comments skipped
    lst.write_text('\n'.join([paths[0] + '  # the first'] + paths[1:] +
                             [str(bad), '# a comment', '#' + paths[0]]) + '\n')
    out = tmp_path / 'out'
    summary = td.main([str(lst), '--out', str(out), '--num-classes', '2', '--top-k', '3',
                       '--crop-size', *map(str, CROP), '--border', '0', '0', '0',
                       '--feature-source', 'intensity', '--feature-size', '8', '8', '4',
                       '--quiet', '--air-filter'])
    assert len(summary['skipped']) == 1 and 'broken.npy' in summary['skipped'][0]['path']
    for r in _rows(out / 'train.csv'):
        # Genesis' test: at most 15 % tissue score, so the crop lies (almost) in the air half
        assert int(r['x']) + 8 <= 13


def test_discovery_autoencoder_features_and_errors(tmp_path):
    _volumes(tmp_path / 'train')
    summary = _run(tmp_path, tmp_path / 'train', tmp_path / 'ae', '--feature-source',
                   'autoencoder', '--ae-size', '16', '16', '16', '--ae-epochs', '1')
    assert len(_rows(tmp_path / 'ae' / 'train.csv')) == 12
    assert summary['args']['feature_source'] == 'autoencoder'
    with pytest.raises(SystemExit, match='top-k'):
        _run(tmp_path, tmp_path / 'train', tmp_path / 'x', '--top-k', '9')
    with pytest.raises(SystemExit):
        _run(tmp_path, tmp_path / 'train', tmp_path / 'x', '--feature-source', 'checkpoint')


def test_discovery_checkpoint_features_equal_backbone_gap(tmp_path):
    """--checkpoint: GAP of the deepest encoder map of the checkpoint's 3-D backbone."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from dira_mm.registry import MODELS
    paths = _volumes(tmp_path / 'train')
    config = osp.join(REPO, 'configs', 'genesis', 'genesis_unet3d-slim_1xb6-sgd-steplr-10e_demo.py')
    init_default_scope('dira_mm')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    ckpt = tmp_path / 'ckpt.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    summary = _run(tmp_path, tmp_path / 'train', tmp_path / 'ck', '--config', config,
                   '--checkpoint', str(ckpt), '--feature-size', '16', '16', '8')
    assert summary['args']['feature_source'] == 'checkpoint'
    # the first class's neighbours are the nearest by the backbone's features
    backbone = model.ssl.backbone.eval()
    feats = {}
    with torch.no_grad():
        for p in paths:
            t = F.interpolate(torch.from_numpy(_windowed(p))[None, None], size=(16, 16, 8),
                              mode='trilinear', align_corners=False)
            feats[td.patient_id(p)] = backbone.forward_encoder(t)[-1].mean((2, 3, 4))[0].numpy()
    c0 = summary['classes'][0]
    ref = feats[c0['ref_patient']]
    ids = [td.patient_id(p) for p in paths]
    nearest = sorted(ids, key=lambda i: float(np.linalg.norm(feats[i] - ref)))[:4]
    assert [ids[i] for i in c0['train']] == nearest


def test_discovery_refuses_duplicate_ids_and_mixed_formats(tmp_path):
    paths = _volumes(tmp_path / 'train', n=4)
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()
    dup = [str(tmp_path / d / 'ct.npy') for d in 'ab']
    for d in dup:
        np.save(d, np.load(paths[0]))
    lst = tmp_path / 'list.txt'
    lst.write_text('\n'.join(paths + dup) + '\n')
    with pytest.raises(SystemExit, match=r'not unique.*ct: .*a/ct.npy, .*b/ct.npy'):
        _run(tmp_path, lst, tmp_path / 'out')
    assert not (tmp_path / 'out').exists()
    nii = str(tmp_path / 'a' / 'q.nii.gz')
    nib.save(nib.Nifti1Image(np.load(paths[0]), np.eye(4)), nii)
    lst.write_text('\n'.join(paths + [nii]) + '\n')
    with pytest.raises(SystemExit, match=r'mix \.npy'):
        _run(tmp_path, lst, tmp_path / 'out')
