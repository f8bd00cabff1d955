"""Write a lung segmentation set of phantom chest radiographs in the Montgomery layout.

Usage (from the repository root)::

    python tools/misc/make_phantom_lungs.py --out data/phantom_lungs

The folder gets ``CXR_png/phantom_lung_{train,val}_XXXXX.png`` (8-bit procedural chest
phantoms), ``ManualMask/{leftMask,rightMask}/`` (the patient's left and right lung, 0/255,
same file names) and ``train.txt`` / ``val.txt`` / ``test.txt``, which
``configs/benchmarks/segmentation/resnet18-unet_finetune_1xb8-adam-10e_demo.py`` reads. The
same arguments give the same bytes. The work is done by
``dira_mm.datasets.phantom_segmentation.make_phantom_lung_dataset``.
"""
import argparse
import os.path as osp
import sys
import time

try:
    from dira_mm.datasets.phantom_segmentation import (LUNG_STRUCTURES,
                                                       make_phantom_lung_dataset)
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from dira_mm.datasets.phantom_segmentation import (LUNG_STRUCTURES,
                                                       make_phantom_lung_dataset)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='data/phantom_lungs',
                        help='output folder (default: data/phantom_lungs)')
    parser.add_argument('--num-train', type=int, default=64, help='training images')
    parser.add_argument('--num-val', type=int, default=16, help='validation images')
    parser.add_argument('--num-test', type=int, default=16, help='test images')
    parser.add_argument('--size', type=int, default=128, help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0, help='content seed')
    parser.add_argument('--structure', choices=LUNG_STRUCTURES, default='air',
                        help='air: the aerated lung (default); lungs: the whole lung shapes')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    summary = make_phantom_lung_dataset(args.out, num_train=args.num_train,
                                        num_val=args.num_val, num_test=args.num_test,
                                        size=args.size, seed=args.seed,
                                        structure=args.structure)
    print(f"Phantom lungs in {summary['out_dir']} ({time.perf_counter() - start:.1f} s): "
          f"train.txt {summary['num_train']}, val.txt {summary['num_val']}, test.txt "
          f"{summary['num_test']} images.")


if __name__ == '__main__':
    main()
