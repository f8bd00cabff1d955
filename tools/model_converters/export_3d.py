"""Export the 3-D backbone of a dira_mm checkpoint to MONAI or Models Genesis layouts.

The checkpoint is read with ``weights_only=True``. ``flexible_unet`` / ``monai_resnet``
exports are verified by loading them into the MONAI model and comparing its output with
the dira_mm backbone's on a seeded volume. ``genesis`` exports get a strict key and shape
check against the official ``UNet3D`` layout only (no independent model to compare outputs
with), and the activation, which ReLU / ELU do not store in the weights, is only stated
(``--act``). A key-match report and ``RESULT`` lines are printed; non-finite weights are
refused and nothing is written when anything fails.

Examples::

    # ResNetUNet3D -> monai.networks.nets.FlexibleUNet(1, 1, 'resnet50', spatial_dims=3)
    python tools/model_converters/export_3d.py epoch_100.pth unet3d.pth \\
        --format flexible_unet
    # its encoder -> monai.networks.nets.resnet50(spatial_dims=3, n_input_channels=1,
    #                conv1_t_stride=2, bias_downsample=False)  (fc left to the new task)
    python tools/model_converters/export_3d.py epoch_100.pth resnet50_3d.pth \\
        --format monai_resnet
    # GenesisUNet3D -> {'state_dict': ...} as Genesis_Chest_CT.pt (with "module.")
    python tools/model_converters/export_3d.py epoch_100.pth genesis.pt \\
        --format genesis --module-prefix --act relu

Loading: ``model.load_state_dict(torch.load('unet3d.pth', weights_only=True))``; for the
Genesis layout, the official loaders' ``checkpoint['state_dict']`` with ``module.``
stripped.
"""
import argparse
import os.path as osp
import sys

try:
    import dira_mm  # noqa: F401
except ImportError:
    sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export the 3-D backbone of a dira_mm checkpoint (verified by loading).')
    parser.add_argument('checkpoint', help='dira_mm checkpoint (.pth)')
    parser.add_argument('out', help='output file')
    parser.add_argument(
        '--format', required=True, choices=['flexible_unet', 'monai_resnet', 'genesis'],
        help='flexible_unet: whole ResNetUNet3D for MONAI FlexibleUNet(spatial_dims=3); '
        'monai_resnet: its encoder for monai.networks.nets.resnetN(spatial_dims=3); '
        "genesis: a GenesisUNet3D as {'state_dict': ...} in the Models Genesis layout")
    parser.add_argument(
        '--prefix', default='auto',
        help="key prefix of the backbone: 'auto' (ssl.backbone. for DiRA, else backbone., "
        "else none), or an explicit one")
    parser.add_argument(
        '--module-prefix', action='store_true',
        help='genesis only: keys start with "module." (DataParallel), as in '
        'Genesis_Chest_CT.pt')
    parser.add_argument(
        '--act', choices=['relu', 'prelu', 'elu'], default=None,
        help='genesis only: the activation the model was trained with (ReLU and ELU have '
        'no weights, so the checkpoint cannot tell); stated in the report, checked '
        'against the PReLU weights')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from dira_mm.utils.checkpoint import UnsafeCheckpointError
    from dira_mm.utils.convert import WeightConversionError
    from dira_mm.utils.convert_3d import convert_checkpoint_3d

    try:
        info = convert_checkpoint_3d(args.checkpoint, args.out, fmt=args.format,
                                     prefix=args.prefix, module_prefix=args.module_prefix,
                                     act=args.act)
    except (WeightConversionError, UnsafeCheckpointError, FileNotFoundError) as err:
        print(f'error: {args.checkpoint}: {err}', file=sys.stderr)
        if isinstance(err, WeightConversionError):
            if 'RESULT:' not in str(err):
                print('RESULT: ERROR', file=sys.stderr)
            print(f'Nothing was written to {args.out}.', file=sys.stderr)
        return 1
    print(f'Backbone: {info["kind"]} under {info["prefix"]!r}; {info["num_keys"]} tensors, '
          f'format {args.format}.')
    print(info['report_text'])
    print(f'Wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
