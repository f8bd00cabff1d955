"""benchmarks/volume_pipeline.py in --quick mode: the table rows, the reproduce command, and
that the official-style reimplementation and GenesisDistortion give outputs of the same
shape, dtype and range."""
import re

import numpy as np

from helpers import load_module

STEPS = ('shuffle', 'nonlinear', 'painting', 'pair')


def test_volume_pipeline_quick():
    bench = load_module('benchmarks/volume_pipeline.py')
    results = bench.main(['--quick'])

    assert set(results['rows']) == {(s, p) for s in STEPS for p in ('official', 'ours')}
    for (step, pipeline), row in results['rows'].items():
        assert row['cubes_per_s'] > 0 and row['ms'] > 0
        assert np.isclose(row['cubes_per_s'] * row['ms'], 1e3)
        if pipeline == 'official':
            assert row['speedup'] == 1.0
    table = results['table']
    timing = re.findall(r'^\| [^|]+ \| (official-style loops|dira_mm) \| [\d.]+ \| [\d.]+ \| '
                        r'[\d.]+x \|$', table, flags=re.M)
    assert timing == ['official-style loops', 'dira_mm'] * 4
    assert '| full pair (flip, shuffle 0.5, non-linear 0.9, paint 0.9) | dira_mm |' in table
    assert '    python benchmarks/volume_pipeline.py --quick' in table

    pairs = results['pairs']
    assert len(pairs['official']) == len(pairs['ours']) == 6
    for x_off, y_off, x_ours, y_ours in (
            (*a, *b) for a, b in zip(pairs['official'], pairs['ours'])):
        assert x_off.shape == y_off.shape == x_ours.shape == y_ours.shape == (1, 64, 64, 32)
        assert x_off.dtype == x_ours.dtype == np.float32
        for arr in (x_off, y_off, x_ours, y_ours):
            assert np.isfinite(arr).all() and arr.min() >= 0 and arr.max() <= 1
    for stats in results['stats'].values():
        assert stats['target = a flip of the cube'] == 1.0
        assert stats['input shape'] == stats['target shape'] == '(1, 64, 64, 32)'


def test_official_style_shuffle_stays_local():
    """The reimplemented loop moves each voxel inside a window of side <= dim // 10 (read
    from the original): every output voxel is an original voxel at most 1 away in x and y
    (20 // 10 = 2) and in the same z slice (10 // 10 = 1)."""
    bench = load_module('benchmarks/volume_pipeline.py')
    rng = np.random.default_rng(0)
    cube = rng.random((1, 20, 20, 10)).astype(np.float32)
    bench.random.seed(0)
    bench.np.random.seed(0)
    out = bench.off_local_pixel_shuffling(cube.copy(), prob=1.0)
    assert out.shape == cube.shape and out.dtype == cube.dtype
    assert (out != cube).mean() > 0.5
    padded = np.pad(cube[0], ((1, 1), (1, 1), (0, 0)), constant_values=-1)
    near = np.zeros(cube.shape[1:], bool)
    for dx in range(3):
        for dy in range(3):
            near |= out[0] == padded[dx:dx + 20, dy:dy + 20]
    assert near.all()
