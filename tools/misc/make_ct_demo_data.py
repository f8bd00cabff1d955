"""Write the 3-D demo data: chest-CT phantoms (LUNA16-like layout) + nilearn's MNI152 MRI.

Usage (from the repository root)::

    python tools/misc/make_ct_demo_data.py --out data/demo3d [--num 20] [--size 96 96 48]
        [--spacing 1 1 2.5] [--metaimage]

The folder gets ``ct/<uid>.nii.gz`` (int16 HU phantoms, RAS) with ``ct/<uid>_mask.nii.gz``
(nodule masks), ``train.txt`` / ``val.txt`` / ``test.txt`` (Models Genesis' fold split),
LUNA16-style ``annotations.csv`` and ``candidates.csv`` (LPS world mm), ``nodules.csv``
(benign/malignant labels), ``mri/MNI152_T1_2mm.nii.gz`` and a ``README.txt``; with
``--metaimage`` also ``subsetK/<uid>.mhd`` + ``.raw``. The same arguments give the same bytes;
a complete folder is left as it is. The work is done by
``dira_mm.datasets.ct_phantom_data.make_ct_demo_dataset`` (see docs/demo3d_data.md).
"""
import argparse
import os.path as osp
import sys
import time

try:
    from dira_mm.datasets.ct_phantom_data import make_ct_demo_dataset
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from dira_mm.datasets.ct_phantom_data import make_ct_demo_dataset


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', '--out-dir', dest='out', default='data/demo3d',
                        help='output folder (default: data/demo3d)')
    parser.add_argument('--num', type=int, default=20, help='number of phantoms (default: 20)')
    parser.add_argument('--size', type=int, nargs=3, metavar=('X', 'Y', 'Z'),
                        default=(96, 96, 48), help='voxels per phantom (default: 96 96 48)')
    parser.add_argument('--spacing', type=float, nargs=3, metavar=('SX', 'SY', 'SZ'),
                        default=(1.0, 1.0, 2.5), help='voxel size in mm (default: 1 1 2.5)')
    parser.add_argument('--seed', type=int, default=0, help='content seed')
    parser.add_argument('--negatives', type=int, default=6,
                        help='non-nodule candidates per phantom (default: 6)')
    parser.add_argument('--num-subsets', type=int, default=10,
                        help='phantom i goes to subset i %% N (default: 10, Genesis folds)')
    parser.add_argument('--metaimage', action='store_true',
                        help='also write LUNA16-style subsetK/<uid>.mhd + .raw copies')
    parser.add_argument('--no-mri', action='store_true',
                        help="leave out nilearn's MNI152 template")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    summary = make_ct_demo_dataset(args.out, num=args.num, size=args.size,
                                   spacing=args.spacing, seed=args.seed,
                                   negatives_per_scan=args.negatives,
                                   num_subsets=args.num_subsets, metaimage=args.metaimage,
                                   include_mri=not args.no_mri)
    state = 'written' if summary['written'] else 'already complete, left as it is'
    files = summary.get('files', {})
    print(f"3-D demo data in {summary['out_dir']} ({state}, "
          f'{time.perf_counter() - start:.1f} s, {len(files)} files, '
          f'{sum(files.values()) / 2**20:.1f} MiB):')
    print(f"  ct/: {summary['num_train'] + summary['num_val'] + summary['num_test']} phantoms "
          f"+ masks; train.txt {summary['num_train']}, val.txt {summary['num_val']}, "
          f"test.txt {summary['num_test']}")
    print(f"  annotations.csv {summary['num_nodules']} nodules "
          f"({summary['num_malignant']} malignant in nodules.csv), candidates.csv "
          f"{summary['num_candidates']} rows")
    if 'mri' in summary:
        print(f"  {osp.relpath(summary['mri'], summary['out_dir'])} (real MRI volume)")
    if args.metaimage:
        print('  subset*/: MetaImage copies (.mhd + .raw)')
    return summary


if __name__ == '__main__':
    main()
