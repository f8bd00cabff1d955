"""Plot training curves of one or more work_dirs from mmengine's ``scalars.json``.

mmengine's ``LocalVisBackend`` writes one JSON object per line to
``<work_dir>/<timestamp>/vis_data/scalars.json``: training rows carry ``iter`` and
``epoch`` (the logged iterations), validation rows only ``step`` (the epoch). A key is
chosen as ``train/<pattern>``, ``val/<pattern>`` or ``<pattern>`` (both), where the pattern
is a shell-style glob (``loss*``, ``probe/*_auc``). Each matched key gets one panel, with
one line per work_dir (legend). Runs resumed in the same work_dir are joined; a step
logged twice keeps its last value.

Examples::

    # default: training loss terms, validation loss, probe AUCs
    python tools/analysis_tools/plot_curves.py work_dirs/demo --out curves.png
    # two runs overlaid, chosen keys, training terms averaged per epoch
    python tools/analysis_tools/plot_curves.py work_dirs/a work_dirs/b --labels a b \\
        --keys train/loss_res val/probe/knn_auc --train-x epoch --out cmp.png
"""
import argparse
import fnmatch
import glob
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

DEFAULT_KEYS = ('train/loss*', 'val/loss', 'val/probe/*_auc')
SPLITS = ('train', 'val')
_INDEX_KEYS = ('epoch', 'iter', 'step')

# {split: {key: {x: value}}}
Curves = Dict[str, Dict[str, Dict[float, float]]]


class CurveError(ValueError):
    """Nothing to plot: no scalars file, or a key that matches nothing."""


def find_scalar_files(path: str) -> List[str]:
    """``scalars.json`` files of a work_dir (every run in it, oldest first), or the file."""
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise CurveError(f'"{path}" is neither a work_dir nor a scalars.json file.')
    files = sorted(glob.glob(osp.join(path, '*', 'vis_data', 'scalars.json')))
    files += sorted(glob.glob(osp.join(path, 'vis_data', 'scalars.json')))
    if not files:
        raise CurveError(
            f'No "*/vis_data/scalars.json" in "{path}". Curves need mmengine\'s '
            "LocalVisBackend (vis_backends=[dict(type='LocalVisBackend'), ...]) in the config "
            'of the run.')
    return files


def load_curves(path: str, train_x: str = 'iter') -> Curves:
    """The scalars of a work_dir by split: train rows (with ``iter``) and val rows.

    Args:
        path: a work_dir, or one ``scalars.json``.
        train_x: ``'iter'`` (each logged iteration) or ``'epoch'`` (mean per epoch).
    """
    curves: Curves = {split: {} for split in SPLITS}
    sums: Dict[str, Dict[float, List[float]]] = {}
    for file in find_scalar_files(path):
        with open(file, encoding='utf-8') as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as err:
                    raise CurveError(f'{file}, line {lineno}: not JSON ({err}).') from None
                split = 'train' if 'iter' in row else 'val'
                x = row['iter'] if split == 'train' else row.get('step', 0)
                for key, value in row.items():
                    if key in _INDEX_KEYS or not isinstance(value, (int, float)):
                        continue
                    if split == 'train' and train_x == 'epoch':
                        sums.setdefault(key, {}).setdefault(row.get('epoch', 0), {})[x] = value
                    else:
                        curves[split].setdefault(key, {})[float(x)] = float(value)
    for key, by_epoch in sums.items():  # per-iteration dict first: a re-logged step counts once
        curves['train'][key] = {float(e): sum(v.values()) / len(v) for e, v in by_epoch.items()}
    return curves


def match_keys(runs: Sequence[Curves], patterns: Sequence[str],
               strict: bool = True) -> List[Tuple[str, str]]:
    """``(split, key)`` pairs selected by ``patterns``, in pattern order, without repeats.

    Raises:
        CurveError: with ``strict``, a pattern that matches nothing; in any case, when
            nothing matches at all. The message lists the keys there are.
    """
    available = {split: sorted(set().union(*(r[split] for r in runs))) for split in SPLITS}
    selected: List[Tuple[str, str]] = []
    unmatched = []
    for pattern in patterns:
        split, _, glob_pattern = pattern.partition('/')
        splits = (split, ) if split in SPLITS and glob_pattern else SPLITS
        glob_pattern = glob_pattern if split in SPLITS and glob_pattern else pattern
        found = [(s, k) for s in splits for k in available[s]
                 if fnmatch.fnmatchcase(k, glob_pattern)]
        if not found:
            unmatched.append(pattern)
        selected += [pair for pair in found if pair not in selected]
    if (strict and unmatched) or not selected:
        listing = '; '.join(f'{s}: {", ".join(available[s]) or "(none)"}' for s in SPLITS)
        raise CurveError(f'No scalar matches {unmatched or list(patterns)}. Keys in the runs '
                         f'(use train/<key>, val/<key> or a glob such as "loss*") - {listing}.')
    return selected


def plot_curves(runs: Sequence[Curves], labels: Sequence[str],
                series: Sequence[Tuple[str, str]], out: str, train_x: str = 'iter',
                title: Optional[str] = None, dpi: int = 100) -> str:
    """Draw one panel per ``(split, key)`` with a line per run; save a PNG to ``out``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    cols = min(3, len(series))
    rows = (len(series) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax, (split, key) in zip(axes.flat, series):
        for run, label in zip(runs, labels):
            points = run[split].get(key)
            if not points:
                continue
            xs = sorted(points)
            few = len(xs) <= 30
            ax.plot(xs, [points[x] for x in xs], marker='o' if few else None,
                    markersize=3, linewidth=1.2, label=label)
        ax.set_title(f'{key} ({split})', fontsize=10)
        ax.set_xlabel('iteration' if split == 'train' and train_x == 'iter' else 'epoch')
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(series):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Plot scalars (losses, probe AUCs, ...) of mmengine work_dirs to a PNG.')
    parser.add_argument('work_dirs', nargs='+',
                        help='work_dirs (or scalars.json files); several are overlaid')
    parser.add_argument('--keys', nargs='+', default=None,
                        help='train/<glob>, val/<glob> or <glob>; default: '
                        + ' '.join(DEFAULT_KEYS))
    parser.add_argument('--out', default='curves.png', help='output PNG')
    parser.add_argument('--labels', nargs='+', default=None,
                        help='legend names, one per work_dir (default: folder names)')
    parser.add_argument('--train-x', choices=('iter', 'epoch'), default='iter',
                        help='training curves per logged iteration or averaged per epoch')
    parser.add_argument('--title', default=None, help='figure title')
    parser.add_argument('--dpi', type=int, default=100)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    labels = args.labels or [osp.basename(osp.normpath(p)) for p in args.work_dirs]
    try:
        if len(labels) != len(args.work_dirs):
            raise CurveError(f'--labels has {len(labels)} names for '
                             f'{len(args.work_dirs)} work_dirs.')
        runs = [load_curves(p, args.train_x) for p in args.work_dirs]
        series = match_keys(runs, args.keys or DEFAULT_KEYS, strict=args.keys is not None)
        out = plot_curves(runs, labels, series, args.out, args.train_x, args.title, args.dpi)
    except CurveError as err:
        print(f'plot_curves: error: {err}', file=sys.stderr)
        return 1
    print(f'Wrote {out}: ' + ', '.join(f'{s}/{k}' for s, k in series))
    return 0


if __name__ == '__main__':
    sys.exit(main())
