"""tools/analysis_tools/plot_curves.py: reading scalars.json, key selection, PNG, errors."""
import json
from pathlib import Path

import cv2
import pytest

from helpers import load_tool

plot_curves = load_tool('analysis_tools', 'plot_curves')


def _write_run(folder: Path, rows):
    path = folder / 'vis_data' / 'scalars.json'
    path.parent.mkdir(parents=True)
    path.write_text(''.join(json.dumps(r) + '\n' for r in rows))


def _work_dir(tmp_path: Path, name: str, shift: float = 0.0) -> Path:
    """Two epochs of 2 logged iterations, a validation per epoch with probe scores; the
    second epoch comes from a resumed run (a second timestamp) that re-logs iteration 2."""
    work = tmp_path / name
    train = [dict(loss=4.0 + shift, loss_res=1.0, lr=0.03, epoch=1, iter=1, step=1),
             dict(loss=3.0 + shift, loss_res=0.8, lr=0.03, epoch=1, iter=2, step=2)]
    val1 = dict(loss=3.5, **{'probe/knn_auc': 60.0 + shift, 'probe/knn_auc/Nodule': 55.0},
                step=1)
    _write_run(work / '20260101_000000', train + [val1])
    resumed = [dict(loss=2.5 + shift, loss_res=0.7, lr=0.02, epoch=1, iter=2, step=2),
               dict(loss=2.0 + shift, loss_res=0.6, lr=0.02, epoch=2, iter=3, step=3),
               dict(loss=1.0 + shift, loss_res=0.4, lr=0.02, epoch=2, iter=4, step=4),
               dict(loss=2.9, **{'probe/knn_auc': 70.0 + shift}, step=2)]
    _write_run(work / '20260102_000000', resumed)
    return work


def test_load_curves_splits_joins_resumes_and_averages(tmp_path):
    work = _work_dir(tmp_path, 'run')
    curves = plot_curves.load_curves(str(work))
    assert curves['train']['loss'] == {1.0: 4.0, 2.0: 2.5, 3.0: 2.0, 4.0: 1.0}  # last value
    assert curves['val']['loss'] == {1.0: 3.5, 2.0: 2.9}
    assert curves['val']['probe/knn_auc'] == {1.0: 60.0, 2.0: 70.0}
    assert 'iter' not in curves['train'] and 'step' not in curves['val']
    per_epoch = plot_curves.load_curves(str(work), train_x='epoch')
    assert per_epoch['train']['loss'] == {1.0: pytest.approx(3.25), 2.0: pytest.approx(1.5)}


def test_key_patterns(tmp_path):
    runs = [plot_curves.load_curves(str(_work_dir(tmp_path, 'run')))]
    assert plot_curves.match_keys(runs, plot_curves.DEFAULT_KEYS, strict=False) == [
        ('train', 'loss'), ('train', 'loss_res'), ('val', 'loss'), ('val', 'probe/knn_auc')]
    assert plot_curves.match_keys(runs, ['loss', 'val/probe/*']) == [
        ('train', 'loss'), ('val', 'loss'), ('val', 'probe/knn_auc'),
        ('val', 'probe/knn_auc/Nodule')]
    with pytest.raises(plot_curves.CurveError, match=r"\['val/lr'\].*train: loss, loss_res"):
        plot_curves.match_keys(runs, ['loss', 'val/lr'])


def test_overlay_writes_a_png(tmp_path, capsys):
    a, b = _work_dir(tmp_path, 'a'), _work_dir(tmp_path, 'b', shift=1.0)
    out = tmp_path / 'figs' / 'curves.png'
    assert plot_curves.main([str(a), str(b), '--labels', 'base', 'shifted', '--out',
                             str(out), '--train-x', 'epoch', '--title', 'demo']) == 0
    assert 'val/probe/knn_auc' in capsys.readouterr().out
    assert out.stat().st_size > 0
    img = cv2.imread(str(out))
    assert img is not None and img.shape[0] > 100 and img.shape[1] > 100
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_clear_errors(tmp_path, capsys):
    work = _work_dir(tmp_path, 'run')
    empty = tmp_path / 'empty'
    empty.mkdir()
    out = str(tmp_path / 'x.png')
    assert plot_curves.main([str(empty), '--out', out]) == 1
    assert 'No "*/vis_data/scalars.json"' in capsys.readouterr().err
    assert plot_curves.main([str(tmp_path / 'missing'), '--out', out]) == 1
    assert 'neither a work_dir' in capsys.readouterr().err
    assert plot_curves.main([str(work), '--keys', 'accuracy', '--out', out]) == 1
    err = capsys.readouterr().err
    assert "No scalar matches ['accuracy']" in err and 'probe/knn_auc' in err
    assert plot_curves.main([str(work), '--labels', 'a', 'b', '--out', out]) == 1
    assert '--labels has 2 names for 1 work_dirs' in capsys.readouterr().err
    assert not Path(out).exists()
