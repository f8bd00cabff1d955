"""Write the embedded demo dataset: chest phantoms + a real radiograph, ChestX-ray14 lists.

Usage (from the repository root)::

    python tools/misc/make_demo_data.py --out data/demo

The folder gets ``phantom_{train,val}_XXXXX.png`` (8-bit procedural chest phantoms with
nodule / cardiomegaly / effusion labels), ``RG1_UNCI.dcm`` (a real CR chest radiograph from
the ``pydicom-data`` package, in the train list) and ``train.txt`` / ``val.txt`` in the
official ChestX-ray14 format. The same arguments give the same bytes; a complete folder is
left as it is. The work is done by ``dira_mm.datasets.phantom.make_demo_dataset``.
"""
import argparse
import os.path as osp
import sys
import time

try:
    from dira_mm.datasets.phantom import make_demo_dataset
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from dira_mm.datasets.phantom import make_demo_dataset


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', '--out-dir', dest='out', default='data/demo',
                        help='output folder (default: data/demo)')
    parser.add_argument('--num-train', type=int, default=96, help='training phantoms')
    parser.add_argument('--num-val', type=int, default=32, help='validation phantoms')
    parser.add_argument('--size', type=int, default=256, help='phantom side in pixels')
    parser.add_argument('--seed', type=int, default=0, help='content seed')
    parser.add_argument('--no-dicom', action='store_true',
                        help='leave out the real radiograph of pydicom-data')
    parser.add_argument('--num-test', type=int, default=0,
                        help='test phantoms in test.txt (default: 0, no test split)')
    parser.add_argument('--nodule-radius', type=float, nargs=2, metavar=('MIN', 'MAX'),
                        default=(0.02, 0.035), help='nodule radius range (fraction of the side)')
    parser.add_argument('--nodule-amplitude', type=float, nargs=2, metavar=('MIN', 'MAX'),
                        default=(0.2, 0.3), help='nodule peak density range')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    summary = make_demo_dataset(args.out, num_train=args.num_train, num_val=args.num_val,
                                size=args.size, seed=args.seed,
                                include_dicom=not args.no_dicom, num_test=args.num_test,
                                nodule_radius=args.nodule_radius,
                                nodule_amplitude=args.nodule_amplitude)
    state = 'written' if summary['written'] else 'already complete, left as it is'
    print(f"Demo data in {summary['out_dir']} ({state}, {time.perf_counter() - start:.1f} s): "
          f"train.txt {summary['num_train']} images, val.txt {summary['num_val']} images"
          + (f", test.txt {summary['num_test']} images" if summary['num_test'] else '') + '. '
          f"Use data_root='{args.out}', data_prefix=dict(img_path='').")


if __name__ == '__main__':
    main()
