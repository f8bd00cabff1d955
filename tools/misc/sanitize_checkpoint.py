"""Re-save a TRUSTED checkpoint with plain types only, so dira_mm can load it safely.

dira_mm loads every checkpoint with ``torch.load(weights_only=True)``. Files written by
stock mmengine (``HistoryBuffer``, numpy arrays/scalars) or other tools may hold other
Python objects, which are refused. If you trust where such a file comes from, this tool
unpickles it once (``weights_only=False``, only with ``--trust``: unpickling can run
code), converts it with ``dira_mm.utils.to_plain`` and writes a file that loads with
``weights_only=True``. Classes defined in your own modules must be importable (set
``PYTHONPATH``).

Example::

    python tools/misc/sanitize_checkpoint.py epoch_100.pth epoch_100_plain.pth --trust
"""
import argparse
import os
import os.path as osp
import sys

try:
    import dira_mm  # noqa: F401
except ImportError:
    sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a trusted checkpoint to plain types (weights_only loadable).')
    parser.add_argument('src', help='checkpoint to convert (unpickled only with --trust)')
    parser.add_argument('dst', help='output path of the plain checkpoint')
    parser.add_argument(
        '--trust', action='store_true',
        help='I trust SRC: allow unpickling it with weights_only=False (can run code)')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    import torch

    from dira_mm.utils.checkpoint import find_unsafe_globals, to_plain

    if not osp.isfile(args.src):
        print(f'error: checkpoint "{args.src}" does not exist.', file=sys.stderr)
        return 1
    try:
        unsafe = find_unsafe_globals(args.src)
        print(f'Non-plain globals in "{args.src}": {unsafe or "none"}')
    except Exception as err:  # noqa: BLE001 (legacy non-zip files cannot be scanned)
        print(f'Could not list the globals of "{args.src}": {err}')
    if not args.trust:
        print(f'error: refusing to unpickle "{args.src}" without --trust. Unpickling a file '
              'can run arbitrary code; pass --trust only if you know where it comes from.',
              file=sys.stderr)
        return 2
    if osp.abspath(args.src) == osp.abspath(args.dst):
        print('error: DST must differ from SRC (keep the original).', file=sys.stderr)
        return 1
    try:
        # The one place in dira_mm that unpickles without weights_only, on explicit --trust.
        checkpoint = torch.load(args.src, map_location='cpu', weights_only=False)
    except Exception as err:  # noqa: BLE001
        print(f'error: could not unpickle "{args.src}": {err}. If it names a missing module '
              'or class, make the code that defines it importable (PYTHONPATH).',
              file=sys.stderr)
        return 1
    report: list = []
    plain = to_plain(checkpoint, 'checkpoint', report)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(plain, args.dst)
    left = find_unsafe_globals(args.dst)
    if left:
        print(f'error: "{args.dst}" still holds non-plain globals {left}.', file=sys.stderr)
        return 1
    torch.load(args.dst, map_location='cpu', weights_only=True)
    print(f'Converted {len(report)} object(s):')
    for line in report:
        print(f'  {line}')
    print(f'Wrote "{args.dst}" (loads with torch.load(weights_only=True)).')
    return 0


if __name__ == '__main__':
    sys.exit(main())
