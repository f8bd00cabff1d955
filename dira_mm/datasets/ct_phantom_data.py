"""Write the 3-D demo data: chest-CT phantoms in a LUNA16-like layout, plus the MNI152 MRI.

``make_ct_demo_dataset`` writes (see ``docs/demo3d_data.md``)::

    out_dir/
      ct/<uid>.nii.gz, ct/<uid>_mask.nii.gz   phantoms (int16 HU) and nodule masks (uint8), RAS
      train.txt, val.txt, test.txt             volume names (relative to ct/), Genesis fold split
      annotations.csv                          seriesuid,coordX,coordY,coordZ,diameter_mm (LUNA16)
      candidates.csv                           seriesuid,coordX,coordY,coordZ,class (LUNA16)
      nodules.csv                              every nodule: annotation columns + voxel, shape, HU,
                                               malignant (the label rule of ct_phantom)
      mri/MNI152_T1_2mm.nii.gz                 nilearn's MNI152 T1 template (a real MRI volume)
      subset0..subset9/<uid>.mhd + .raw        with metaimage=True: LUNA16-style MetaImage copies
      README.txt, demo3d_manifest.json

Coordinates in the CSV files are world mm in ITK's LPS frame, as in LUNA16 (``coordX`` is
``-x`` of the RAS affine of the NIfTI files), so one dataset config reads both. Phantom ``i``
goes to ``subset{i % 10}``; subsets 0-4 are train, 5-6 val, 7-9 test (Models Genesis' folds).
Everything is deterministic (gzip without a time stamp) and a complete folder is left as it is.
"""
import csv
import gzip
import hashlib
import io
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .ct_phantom import (generate_ct_phantom, ras_to_lps, voxel_to_world)
from .phantom import _write_atomic

__all__ = ['make_ct_demo_dataset', 'write_nifti', 'write_metaimage', 'GENESIS_FOLDS',
           'MNI152_NAME']

#: Models Genesis' LUNA16 fold split (config.py): subsets per split.
GENESIS_FOLDS = dict(train=(0, 1, 2, 3, 4), val=(5, 6), test=(7, 8, 9))
MNI152_NAME = 'MNI152_T1_2mm.nii.gz'
_MANIFEST = 'demo3d_manifest.json'
_VERSION = 1


def write_nifti(path: str, data: np.ndarray, affine: np.ndarray) -> int:
    """Write ``data`` with its RAS ``affine`` as NIfTI-1 (sform/qform code 1, mm); ``.nii.gz``
    is gzipped without a time stamp, so the bytes depend on the data only. Returns the size."""
    import nibabel as nib
    img = nib.Nifti1Image(np.asarray(data), np.asarray(affine, dtype=np.float64))
    img.header.set_xyzt_units('mm')
    img.set_sform(img.affine, code=1)
    img.set_qform(img.affine, code=1)
    blob = img.to_bytes()
    if path.lower().endswith('.gz'):
        blob = gzip.compress(blob, compresslevel=6, mtime=0)
    _write_atomic(path, blob)
    return len(blob)


def write_metaimage(path: str, volume_ras: np.ndarray, affine_ras: np.ndarray) -> Tuple[int, int]:
    """Write a RAS volume as a LUNA16-style MetaImage ``.mhd`` header + ``.raw`` (MET_SHORT).

    Hand-written (no SimpleITK here). LUNA16 stores axes in ITK's LPS frame with an identity
    ``TransformMatrix``: the array is flipped along X and Y, and ``Offset`` is the LPS position
    of the first stored voxel. ``affine_ras`` must be diagonal (axis-aligned). Reading it back
    with :func:`~dira_mm.datasets.volume_readers.read_metaimage` returns ``volume_ras`` and
    ``affine_ras``. Returns the sizes of the header and data files.
    """
    affine_ras = np.asarray(affine_ras, dtype=np.float64)
    if not np.allclose(affine_ras[:3, :3], np.diag(np.diag(affine_ras[:3, :3]))) or \
            np.any(np.diag(affine_ras)[:3] <= 0):
        raise ValueError('write_metaimage needs an axis-aligned RAS affine with positive '
                         'spacing.')
    if not path.lower().endswith('.mhd'):
        raise ValueError(f'write_metaimage: the header path must end with .mhd, got "{path}".')
    vol = np.asarray(volume_ras)
    shape = vol.shape
    spacing = np.diag(affine_ras)[:3]
    first_ras = voxel_to_world(affine_ras, [shape[0] - 1, shape[1] - 1, 0])
    offset = ras_to_lps(first_ras)
    stored = np.rint(vol[::-1, ::-1, :]).astype('<i2')
    raw_name = osp.basename(path)[:-4] + '.raw'
    fmt = lambda xs: ' '.join(f'{float(x):.12g}' for x in xs)  # noqa: E731
    header = '\n'.join([
        'ObjectType = Image', 'NDims = 3', 'BinaryData = True',
        'BinaryDataByteOrderMSB = False', 'CompressedData = False',
        'TransformMatrix = 1 0 0 0 1 0 0 0 1', f'Offset = {fmt(offset)}',
        'CenterOfRotation = 0 0 0', 'AnatomicalOrientation = RAI',
        f'ElementSpacing = {fmt(spacing)}', f'DimSize = {shape[0]} {shape[1]} {shape[2]}',
        'ElementType = MET_SHORT', f'ElementDataFile = {raw_name}'
    ]) + '\n'
    # x runs fastest on disk: write the (X, Y, Z) array in Fortran order
    data = stored.tobytes(order='F')
    _write_atomic(osp.join(osp.dirname(path), raw_name), data)
    _write_atomic(path, header.encode())
    return len(header), len(data)


def _csv_bytes(header: Sequence[str], rows: List[Sequence]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode()


def _negatives(phantom, rng: np.random.Generator, count: int) -> List[np.ndarray]:
    """Non-nodule candidate voxels: half on vessels (hard), half in lung parenchyma, each at
    least 5 mm beyond any nodule's reach."""
    spacing = np.sqrt((phantom.affine[:3, :3]**2).sum(0))
    out = []
    for code, num in ((5, count // 2), (3, count - count // 2)):
        pool = np.argwhere(phantom.tissue == code)
        if not len(pool):
            pool = np.argwhere(phantom.tissue == 3)
        got = 0
        for _ in range(num * 20):
            if got >= num or not len(pool):
                break
            ijk = pool[int(rng.integers(len(pool)))]
            if all(np.linalg.norm((ijk - np.asarray(n['center_voxel'])) * spacing) >
                   n['diameter_mm'] * 0.9 + 5 for n in phantom.nodules):
                out.append(ijk)
                got += 1
    return out


def _fmt(x: float) -> str:
    return f'{x:.3f}'


def make_ct_demo_dataset(out_dir: str = 'data/demo3d',
                         num: int = 20,
                         size: Sequence[int] = (96, 96, 48),
                         spacing: Sequence[float] = (1.0, 1.0, 2.5),
                         seed: int = 0,
                         negatives_per_scan: int = 6,
                         num_subsets: int = 10,
                         metaimage: bool = False,
                         include_mri: bool = True) -> dict:
    """Write the 3-D demo data (see the module docstring for the layout).

    Phantom ``i`` is ``generate_ct_phantom([seed, 0, i], size, spacing)``; its negatives are
    drawn from ``default_rng([seed, 1, i])``. Deterministic and idempotent: when
    ``demo3d_manifest.json`` (written last) records the same arguments and every file has its
    recorded size, nothing is written.

    Args:
        out_dir (str): The output folder. Defaults to 'data/demo3d'.
        num (int): Number of phantoms. Defaults to 20.
        size (tuple[int, int, int]): Voxels along X, Y, Z. Defaults to (96, 96, 48).
        spacing (tuple[float, float, float]): Voxel size in mm. Defaults to (1, 1, 2.5).
        seed (int): Content seed. Defaults to 0.
        negatives_per_scan (int): Non-nodule rows of ``candidates.csv`` per phantom.
            Defaults to 6.
        num_subsets (int): Phantom ``i`` belongs to subset ``i % num_subsets``; with 10, the
            split is Genesis' folds (train 0-4, val 5-6, test 7-9); otherwise the first half
            of the subsets train, the next fifth (at least one when three or more subsets)
            val, the rest test. Defaults to 10.
        metaimage (bool): Also write ``subsetK/<uid>.mhd`` + ``.raw`` copies. Defaults to False.
        include_mri (bool): Write nilearn's MNI152 T1 template under ``mri/``. Defaults to True.

    Returns:
        dict: ``out_dir``, the list and CSV paths, ``num_train``/``num_val``/``num_test``,
        ``num_nodules``, ``num_candidates``, ``files`` (name -> size) and ``written``.
    """
    size = tuple(int(s) for s in size)
    spacing = tuple(float(s) for s in spacing)
    if int(num) < 1 or int(num_subsets) < 1 or int(negatives_per_scan) < 0:
        raise ValueError('make_ct_demo_dataset needs num >= 1, num_subsets >= 1 and '
                         f'negatives_per_scan >= 0, got {num}, {num_subsets}, '
                         f'{negatives_per_scan}.')
    args = dict(num=int(num), size=list(size), spacing=list(spacing), seed=int(seed),
                negatives_per_scan=int(negatives_per_scan), num_subsets=int(num_subsets),
                metaimage=bool(metaimage), include_mri=bool(include_mri), version=_VERSION)
    out_dir = osp.abspath(out_dir)
    manifest_path = osp.join(out_dir, _MANIFEST)
    complete = _read_complete_manifest(out_dir, manifest_path, args)
    if complete is not None:
        return dict(complete['summary'], out_dir=out_dir, written=False)

    folds = _folds(int(num_subsets))
    os.makedirs(osp.join(out_dir, 'ct'), exist_ok=True)
    files: Dict[str, int] = {}
    lists: Dict[str, List[str]] = dict(train=[], val=[], test=[])
    annotations, candidates, nodules = [], [], []
    for i in range(int(num)):
        uid = f'ctphantom_{int(seed):03d}_{i:04d}'
        ph = generate_ct_phantom([int(seed), 0, i], size, spacing)
        name = f'{uid}.nii.gz'
        files[f'ct/{name}'] = write_nifti(osp.join(out_dir, 'ct', name),
                                          ph.volume.astype(np.int16), ph.affine)
        files[f'ct/{uid}_mask.nii.gz'] = write_nifti(
            osp.join(out_dir, 'ct', f'{uid}_mask.nii.gz'), ph.mask, ph.affine)
        subset = i % int(num_subsets)
        lists[folds[subset]].append(name)
        if metaimage:
            folder = osp.join(out_dir, f'subset{subset}')
            os.makedirs(folder, exist_ok=True)
            h, d = write_metaimage(osp.join(folder, f'{uid}.mhd'), ph.volume, ph.affine)
            files[f'subset{subset}/{uid}.mhd'] = h
            files[f'subset{subset}/{uid}.raw'] = d
        rows = []
        for n in ph.nodules:
            lps = ras_to_lps(n['center_mm'])
            annotations.append([uid] + [_fmt(c) for c in lps] + [_fmt(n['diameter_mm'])])
            nodules.append([uid] + [_fmt(c) for c in lps] + [_fmt(n['diameter_mm'])] +
                           list(n['center_voxel']) + [n['shape'], _fmt(n['hu']),
                                                      n['malignant']])
            rows.append([uid] + [_fmt(c) for c in lps] + [1])
        rng = np.random.default_rng([int(seed), 1, i])
        for ijk in _negatives(ph, rng, int(negatives_per_scan)):
            lps = ras_to_lps(voxel_to_world(ph.affine, ijk))
            rows.append([uid] + [_fmt(c) for c in lps] + [0])
        candidates.extend(rows)
    blobs = {
        'annotations.csv': _csv_bytes(['seriesuid', 'coordX', 'coordY', 'coordZ', 'diameter_mm'],
                                      annotations),
        'candidates.csv': _csv_bytes(['seriesuid', 'coordX', 'coordY', 'coordZ', 'class'],
                                     candidates),
        'nodules.csv': _csv_bytes(['seriesuid', 'coordX', 'coordY', 'coordZ', 'diameter_mm',
                                   'voxelX', 'voxelY', 'voxelZ', 'shape', 'hu', 'malignant'],
                                  nodules),
    }
    for split, names in lists.items():
        blobs[f'{split}.txt'] = ''.join(f'{n}\n' for n in names).encode()
    if include_mri:
        os.makedirs(osp.join(out_dir, 'mri'), exist_ok=True)
        files[f'mri/{MNI152_NAME}'] = _write_mni152(osp.join(out_dir, 'mri', MNI152_NAME))
    summary = dict(out_dir=out_dir, ct_dir=osp.join(out_dir, 'ct'),
                   num_train=len(lists['train']), num_val=len(lists['val']),
                   num_test=len(lists['test']), num_nodules=len(annotations),
                   num_candidates=len(candidates),
                   num_malignant=sum(int(r[-1]) for r in nodules))
    for split in lists:
        summary[f'{split}_list'] = osp.join(out_dir, f'{split}.txt')
    for key in ('annotations', 'candidates', 'nodules'):
        summary[f'{key}_csv'] = osp.join(out_dir, f'{key}.csv')
    if include_mri:
        summary['mri'] = osp.join(out_dir, 'mri', MNI152_NAME)
    blobs['README.txt'] = _readme(args, summary).encode()
    for name, blob in blobs.items():
        _write_atomic(osp.join(out_dir, name), blob)
        files[name] = len(blob)
    stored = {k: (osp.relpath(v, out_dir) if isinstance(v, str) else v)
              for k, v in summary.items() if k != 'out_dir'}  # no absolute path: same bytes
    manifest = dict(args=args, files=files, summary=stored,
                    digest=hashlib.sha1(json.dumps(files, sort_keys=True).encode()).hexdigest())
    _write_atomic(manifest_path, (json.dumps(manifest, indent=1, sort_keys=True) + '\n').encode())
    return dict(summary, files=files, written=True)


def _folds(num_subsets: int) -> Dict[int, str]:
    if num_subsets == 10:
        return {s: split for split, subs in GENESIS_FOLDS.items() for s in subs}
    n_train = max(1, num_subsets // 2)
    n_val = min(num_subsets - n_train - 1, max(1, round(num_subsets / 5)))
    n_val = max(n_val, 0)
    return {s: ('train' if s < n_train else 'val' if s < n_train + n_val else 'test')
            for s in range(num_subsets)}


def _write_mni152(path: str) -> int:
    """nilearn's MNI152 T1 template at 2 mm (packaged with nilearn: no download)."""
    try:
        from nilearn.datasets import load_mni152_template
    except ImportError:
        raise ImportError('The 3-D demo data includes the MNI152 template of `nilearn`, which '
                          'is not installed: `pip install nilearn` (or include_mri=False / '
                          '--no-mri).') from None
    img = load_mni152_template(resolution=2)
    return write_nifti(path, np.asarray(img.dataobj), img.affine)


def _readme(args: dict, summary: dict) -> str:
    size = 'x'.join(str(s) for s in args['size'])
    spacing = ' x '.join(f'{s:g}' for s in args['spacing'])
    lines = [
        'dira_mm 3-D demo data, written by tools/misc/make_ct_demo_data.py '
        '(see docs/demo3d_data.md).',
        '',
        f"ct/            {args['num']} procedural chest-CT PHANTOMS (synthetic, not patients): "
        f'int16 HU, {size} voxels of {spacing} mm,',
        '               NIfTI with a RAS affine; <uid>_mask.nii.gz = nodule mask (1 = nodule). '
        f"Content seed {args['seed']}.",
        f"train.txt, val.txt, test.txt  volume names relative to ct/ ({summary['num_train']} / "
        f"{summary['num_val']} / {summary['num_test']}); phantom i is in subset "
        f"i % {args['num_subsets']}",
        '               (10 subsets: Models Genesis folds, train 0-4, val 5-6, test 7-9).',
        'annotations.csv  LUNA16 columns seriesuid,coordX,coordY,coordZ,diameter_mm '
        f"({summary['num_nodules']} nodules).",
        'candidates.csv   LUNA16 columns seriesuid,coordX,coordY,coordZ,class '
        f"({summary['num_candidates']} rows; 1 = nodule,",
        '                 0 = non-nodule on a vessel or in the lung parenchyma).',
        'nodules.csv      every nodule: the annotation columns, voxel centre, shape '
        '(smooth/lobulated/spiculated), HU,',
        '                 malignant (1 when spiculated or diameter >= 10 mm: a synthetic rule).',
        'Coordinates are world mm in ITK\'s LPS frame as in LUNA16 (coordX = -x of the RAS '
        'affine, coordY = -y).',
    ]
    if args['include_mri']:
        lines += [
            f'mri/{MNI152_NAME}  the MNI152 T1 template shipped with nilearn: a real volume, '
            'but an MRI of the',
            '               brain (an average of many subjects), NOT CT; intensities 0..1.'
        ]
    if args['metaimage']:
        lines.append('subset*/       LUNA16-style MetaImage copies of the phantoms (.mhd + .raw, '
                     'MET_SHORT, LPS).')
    return '\n'.join(lines) + '\n'


def _read_complete_manifest(out_dir: str, manifest_path: str, args: dict) -> Optional[dict]:
    try:
        with open(manifest_path, encoding='utf-8') as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    if manifest.get('args') != args or 'summary' not in manifest:
        return None
    for name, size in manifest.get('files', {}).items():
        path = osp.join(out_dir, name)
        if not (osp.isfile(path) and osp.getsize(path) == size):
            return None
    summary = {k: (osp.join(out_dir, v) if k.endswith(('_list', '_csv', '_dir')) or k == 'mri'
                   else v) for k, v in manifest['summary'].items()}
    summary['files'] = manifest['files']
    return dict(summary=summary)
