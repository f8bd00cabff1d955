"""Export the pre-trained U-Net of a dira_mm checkpoint (smp, torchvision or timm keys).

The checkpoint is read with ``weights_only=True``; the output is a plain dict of tensors.
Non-finite weights (a diverged run) are refused, naming the first NaN/Inf tensor; a wrong
``--verify-arch`` is answered with the ResNet the checkpoint looks like.

Examples::

    # whole U-Net for segmentation_models_pytorch.Unet('resnet50', ...)
    python tools/model_converters/extract_unet.py epoch_200.pth unet.pth \\
        --verify-arch resnet50
    # encoder only for torchvision.models.resnet50() (fc left to the new task)
    python tools/model_converters/extract_unet.py epoch_200.pth resnet50.pth \\
        --format torchvision --verify-arch resnet50
    # encoder only for timm.create_model('resnet50') (same keys as torchvision's)
    python tools/model_converters/extract_unet.py epoch_200.pth resnet50_timm.pth \\
        --format timm --verify-arch resnet50

Loading: ``model.load_state_dict(torch.load('unet.pth', weights_only=True))``.
"""
import argparse
import os.path as osp
import sys

try:
    import dira_mm  # noqa: F401
except ImportError:
    sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Extract the U-Net of a dira_mm checkpoint for downstream training.')
    parser.add_argument('checkpoint', help='dira_mm checkpoint (.pth)')
    parser.add_argument('out', help='output file (plain state dict)')
    parser.add_argument(
        '--format', choices=['smp', 'torchvision', 'timm'], default='smp',
        help='smp: whole U-Net with smp.Unet keys; torchvision / timm: encoder only, ResNet '
        'keys (the same in both)')
    parser.add_argument(
        '--prefix', default='auto',
        help="key prefix of the U-Net: 'auto' (ssl.backbone. for DiRA, else backbone.), "
        "'ssl.backbone.', 'backbone.' or another prefix")
    parser.add_argument(
        '--verify-arch', metavar='ARCH',
        help='build the target model (smp.Unet(ARCH), torchvision.models.ARCH() or '
        'timm.create_model(ARCH, num_classes=0)), load '
        'the result and print a key-match report; any mismatch beyond the task head fails')
    parser.add_argument(
        '--drop-head', action='store_true',
        help='smp only: leave out segmentation_head.* (the reconstruction head)')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    from dira_mm.utils.checkpoint import UnsafeCheckpointError
    from dira_mm.utils.convert import WeightConversionError, convert_checkpoint

    try:
        info = convert_checkpoint(args.checkpoint, args.out, fmt=args.format,
                                  prefix=args.prefix, verify_arch=args.verify_arch,
                                  drop_head=args.drop_head)
    except (WeightConversionError, UnsafeCheckpointError, FileNotFoundError) as err:
        print(f'error: {args.checkpoint}: {err}', file=sys.stderr)
        if isinstance(err, WeightConversionError):
            print(f'Nothing was written to {args.out}.', file=sys.stderr)
        return 1
    print(f'U-Net prefix: {info["prefix"]!r}; {info["num_keys"]} tensors, '
          f'format {args.format}.')
    if info['report_text']:
        print(info['report_text'])
    print(f'Wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
