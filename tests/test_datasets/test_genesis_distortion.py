"""Models Genesis / TransVW distortions (``dira_mm.datasets.transforms.genesis``) against
their specification (``/work/shared/reference/dira_3d_transvw.md`` §2.3, §3.2): seeded,
statistical where the specification is a probability."""
import numpy as np
import pytest

from dira_mm.datasets.transforms import GenesisDistortion, TransVWDistortion
from dira_mm.datasets.transforms import genesis as G
from dira_mm.registry import TRANSFORMS

SHAPES = [(1, 40, 36), (1, 40, 36, 20)]   # (C, H, W) and (C, X, Y, Z)


def within(k, n, p, sigmas=4.5):
    """``k`` successes in ``n`` draws agree with probability ``p`` (binomial tolerance)."""
    return abs(k / n - p) <= sigmas * np.sqrt(p * (1 - p) / n) + 1e-12


def ramp(shape):
    """Distinct values in [0, 1): the value identifies the source voxel."""
    n = int(np.prod(shape))
    return (np.arange(n, dtype=np.float64) / n).reshape(shape)


# ---------------------------------------------------------------- reference loops
def loop_from_draws(x, sizes, starts, keys):
    """Straightforward loop over the windows of ``_shuffle_window_draws``: read from the
    original, permute by ``argsort`` of the window's keys, later windows overwrite."""
    out, orig = x.copy(), x.copy()
    pos = 0
    for size, start in zip(sizes, starts):
        sl = (slice(None), ) + tuple(slice(s, s + n) for s, n in zip(start, size))
        vol = int(np.prod(size))
        perm = np.argsort(keys[pos:pos + vol], kind='stable')
        pos += vol
        win = orig[sl].reshape(x.shape[0], vol)
        out[sl] = win[:, perm].reshape((x.shape[0], ) + tuple(size))
    return out


def official_style_shuffle(x, rng, num_block=10000):
    """The official ``local_pixel_shuffling`` loop (one channel), its draws taken from
    ``rng`` one window at a time."""
    image_temp, orig = x.copy(), x.copy()
    spatial = x.shape[1:]
    for _ in range(num_block):
        size = [int(rng.integers(1, max(d // 10, 1) + 1)) for d in spatial]
        start = [int(rng.integers(0, d - s + 1)) for d, s in zip(spatial, size)]
        sl = tuple(slice(a, a + s) for a, s in zip(start, size))
        window = orig[(0, ) + sl].flatten()
        rng.shuffle(window)
        image_temp[(0, ) + sl] = window.reshape(size)
    return image_temp


# ------------------------------------------------------------------------- input
def test_spatial_dims_from_ndim():
    assert G.spatial_dims_of(np.zeros((1, 4, 4))) == 2
    assert G.spatial_dims_of(np.zeros((2, 4, 4, 4))) == 3
    for bad in [(4, 4), (1, 2, 3, 4, 5)]:
        with pytest.raises(ValueError):
            G.spatial_dims_of(np.zeros(bad))
    with pytest.raises(TypeError):
        GenesisDistortion()(dict(img=np.zeros((1, 8, 8), np.uint8),
                                 rng=np.random.default_rng(0)))


# -------------------------------------------------------------------------- flip
@pytest.mark.parametrize('shape', SHAPES)
def test_flip_spatial_axes_and_probability(shape):
    rng = np.random.default_rng(1)
    x = ramp(shape)
    n, counts, seen = 4000, np.zeros(4, int), []
    for _ in range(n):
        fx, fy, axes = G.genesis_flip(x, x + 1, rng)
        counts[len(axes)] += 1
        seen += axes
        ref = x
        for ax in axes:
            ref = np.flip(ref, ax)
        np.testing.assert_array_equal(fx, ref)
        np.testing.assert_array_equal(fy, ref + 1)     # target flipped together
    p = 0.4
    for k, pk in enumerate([1 - p, p * (1 - p), p**2 * (1 - p), p**3]):
        assert within(counts[k], n, pk), (k, counts)
    seen = np.array(seen)
    assert 0 not in seen                               # never the channel axis
    spatial_axes = list(range(1, len(shape)))
    for ax in spatial_axes:                            # uniform over spatial axes (depth too)
        assert within((seen == ax).sum(), seen.size, 1 / len(spatial_axes))


def test_flip_official_axes():
    rng = np.random.default_rng(2)
    x = ramp((1, 8, 8, 4))
    seen = []
    for _ in range(3000):
        _, _, axes = G.genesis_flip(x, x, rng, official_axes=True)
        seen += axes
    seen = np.array(seen)
    assert set(seen.tolist()) == {0, 1, 2}              # channel axis possible, depth never
    for ax in (0, 1, 2):
        assert within((seen == ax).sum(), seen.size, 1 / 3)


# ---------------------------------------------------------------- local shuffling
@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('table', [True, False])
def test_shuffle_equals_loop_on_same_draws(shape, table, monkeypatch):
    if not table:                                       # the path for large windows
        monkeypatch.setattr(G, '_OFFSET_TABLE_MAX', 0)
    rng = np.random.default_rng(3)
    x = np.concatenate([ramp(shape), ramp(shape) + 5])  # 2 channels move together
    for size_div in (10, 3):
        sizes, starts, keys = G._shuffle_window_draws(rng, x.shape[1:], 3000, size_div)
        np.testing.assert_array_equal(G._shuffle_from_draws(x, sizes, starts, keys),
                                      loop_from_draws(x, sizes, starts, keys))
    # and the public function is the same computation on the same draws
    a = G.local_pixel_shuffling(x, np.random.default_rng(4), 3000)
    s2 = G._shuffle_window_draws(np.random.default_rng(4), x.shape[1:], 3000, 10)
    np.testing.assert_array_equal(a, loop_from_draws(x, *s2))


@pytest.mark.parametrize('shape', SHAPES)
def test_shuffle_matches_official_statistics(shape):
    x = ramp(shape)
    spatial = np.array(shape[1:])
    max_side = np.maximum(spatial // 10, 1)
    ours, ref = [], []
    for seed in range(10):
        for fn, acc in ((lambda r: G.local_pixel_shuffling(x, r), ours),
                        (lambda r: official_style_shuffle(x, r), ref)):
            y = fn(np.random.default_rng(seed))
            src = np.stack(np.unravel_index(np.rint(y[0] * x.size).astype(int), shape[1:]))
            dst = np.stack(np.indices(shape[1:]))
            disp = np.abs(src - dst).reshape(len(shape) - 1, -1)
            # a voxel moves less than a window side on every axis
            assert (disp.max(axis=1) < max_side).all()
            acc.append([(y != x).mean(), disp.sum(0).mean(),
                        len(np.unique(y)) / x.size])
    ours, ref = np.array(ours), np.array(ref)
    # changed fraction, mean L1 displacement, fraction of distinct values: same law
    # (difference of means within 4.5 standard errors)
    se = np.sqrt(ours.var(0, ddof=1) / len(ours) + ref.var(0, ddof=1) / len(ref))
    assert (np.abs(ours.mean(0) - ref.mean(0)) <= 4.5 * se + 1e-9).all(), (ours.mean(0),
                                                                           ref.mean(0), se)
    np.testing.assert_allclose(ours.mean(0), ref.mean(0), rtol=0.05)


def test_shuffle_small_dims_and_zero_windows():
    rng = np.random.default_rng(5)
    x = ramp((1, 6, 7, 5))                            # dim // 10 == 0 -> side 1: identity
    np.testing.assert_array_equal(G.local_pixel_shuffling(x, rng), x)
    np.testing.assert_array_equal(G.local_pixel_shuffling(x, rng, 0), x)


# -------------------------------------------------------------------- non-linear
def test_bezier_map_monotone_endpoints_and_invert_rate():
    rng = np.random.default_rng(6)
    grid = np.linspace(0, 1, 2001)
    n, inverted = 600, 0
    for _ in range(n):
        xv, yv, inv = G.bezier_intensity_map(rng, n_times=20000)
        f = np.interp(grid, xv, yv)
        d = np.diff(f)
        if inv:
            inverted += 1
            assert (d <= 1e-12).all()
            assert f[0] == pytest.approx(1, abs=1e-9) and f[-1] == pytest.approx(0, abs=1e-9)
        else:
            assert (d >= -1e-12).all()
            assert f[0] == pytest.approx(0, abs=1e-9) and f[-1] == pytest.approx(1, abs=1e-9)
        assert f.min() >= -1e-9 and f.max() <= 1 + 1e-9
    assert within(inverted, n, 0.5)


def test_bezier_control_points_reversed_order():
    """t = 0 is the last control point; x and y use the 4 independent uniforms."""
    rng = np.random.default_rng(7)
    u = np.random.default_rng(7).random(4)
    basis = G._bernstein_basis(11)
    np.testing.assert_allclose(basis[:, 0], [0, 0, 0, 1])   # t=0: only point 3
    xv, yv, _ = G.bezier_intensity_map(rng, invert_prob=0.0, n_times=11)
    pts_x = np.array([0, u[0], u[2], 1])
    pts_y = np.array([0, u[1], u[3], 1])
    np.testing.assert_allclose(xv, np.sort(pts_x @ basis))
    np.testing.assert_allclose(yv, np.sort(pts_y @ basis))
    t = 0.3                                                   # standard-order value at 1 - t
    s = 1 - t
    std = ((1 - s)**3 * pts_x[0] + 3 * s * (1 - s)**2 * pts_x[1] + 3 * s**2 * (1 - s) * pts_x[2]
           + s**3 * pts_x[3])
    assert pts_x @ G._bernstein_basis(11)[:, 3] == pytest.approx(std)


@pytest.mark.parametrize('shape', SHAPES)
def test_nonlinear_keeps_dtype_and_range(shape):
    for seed in range(50):                              # the fast sort is np.sort
        r = np.random.default_rng(seed)
        pts = np.concatenate([[0], r.random(2), [1]])
        for v in (pts @ G._bernstein_basis(1000), r.random(1000)):
            np.testing.assert_array_equal(G._sort(v), np.sort(v))
    x = ramp(shape).astype(np.float32)
    y = G.nonlinear_transformation(x, np.random.default_rng(8))
    assert y.dtype == np.float32 and y.shape == x.shape
    assert y.min() >= 0 and y.max() <= 1


# ---------------------------------------------------------------------- painting
@pytest.mark.parametrize('shape', SHAPES)
def test_inpainting_blocks(shape):
    rng = np.random.default_rng(9)
    x = np.full(shape, 2.0)                            # out of [0, 1]: noise is visible
    spatial = np.array(shape[1:])
    n, counts = 3000, np.zeros(6, int)
    for i in range(n):
        out, boxes = G.image_in_painting(x, rng, return_boxes=True)
        counts[len(boxes)] += 1
        for start, size in boxes:
            assert (size >= spatial // 6).all() and (size <= spatial // 3).all()
            assert (start >= 3).all() and (start + size <= spatial - 3).all()
        if i < 200:
            mask = np.zeros(shape[1:], bool)
            for box in boxes:
                mask[G._box_slices(box)] = True
            assert (out[:, ~mask] == 2).all()
            assert (out[:, mask] >= 0).all() and (out[:, mask] < 1).all()
    for k in range(5):
        assert within(counts[k], n, 0.95**k * 0.05), counts
    assert within(counts[5], n, 0.95**5), counts


@pytest.mark.parametrize('shape', SHAPES)
def test_outpainting_windows(shape):
    rng = np.random.default_rng(10)
    x = np.full(shape, 2.0)
    spatial = np.array(shape[1:])
    n, counts = 3000, np.zeros(6, int)
    for i in range(n):
        out, boxes = G.image_out_painting(x, rng, return_boxes=True)
        counts[len(boxes)] += 1
        for start, size in boxes:
            assert (size >= spatial - 4 * spatial // 7).all()
            assert (size <= spatial - 3 * spatial // 7).all()
            assert (start >= 3).all() and (start + size <= spatial - 3).all()
        if i < 200:
            mask = np.zeros(shape[1:], bool)
            for box in boxes:
                mask[G._box_slices(box)] = True
            assert (out[:, mask] == 2).all()
            assert (out[:, ~mask] >= 0).all() and (out[:, ~mask] < 1).all()
    assert counts[0] == 0
    for k in range(1, 5):
        assert within(counts[k], n, 0.95**(k - 1) * 0.05), counts
    assert within(counts[5], n, 0.95**4), counts


# -------------------------------------------------------------------- transforms
def test_genesis_transform_probabilities_and_target():
    t = TRANSFORMS.build(dict(type='GenesisDistortion', shuffle_windows=20))
    x = ramp((1, 24, 24, 12)).astype(np.float32)
    x_before = x.copy()
    rng = np.random.default_rng(11)
    n = 3000
    steps = {k: 0 for k in ('flip', 'shuffle', 'nonlinear', 'inpaint', 'outpaint')}
    for _ in range(n):
        r = t(dict(img=x, rng=rng))
        for s in r['distortion']:
            steps[s] += 1
        assert r['img'].shape == x.shape and r['img'].dtype == np.float32
        ref = x
        for ax in r['flip_axes']:
            assert ax != 0
            ref = np.flip(ref, ax)
        np.testing.assert_array_equal(r['target'], ref)  # target: only flipped
        if not r['distortion'] or r['distortion'] == ['flip']:
            np.testing.assert_array_equal(r['img'], ref)
    np.testing.assert_array_equal(x, x_before)          # input never written
    assert within(steps['flip'], n, 0.4)
    assert within(steps['shuffle'], n, 0.5)
    assert within(steps['nonlinear'], n, 0.9)
    assert within(steps['inpaint'] + steps['outpaint'], n, 0.9)
    assert within(steps['inpaint'], n, 0.9 * 0.2)


@pytest.mark.parametrize('shape', SHAPES)
def test_genesis_transform_2d_3d_and_determinism(shape):
    x = ramp(shape).astype(np.float32)
    t = GenesisDistortion()
    a = [t(dict(img=x, rng=np.random.default_rng(s))) for s in (0, 0, 1)]
    np.testing.assert_array_equal(a[0]['img'], a[1]['img'])
    np.testing.assert_array_equal(a[0]['target'], a[1]['target'])
    assert a[0]['distortion'] == a[1]['distortion']
    assert not np.array_equal(a[0]['img'], a[2]['img'])
    t_off = GenesisDistortion(flip_prob=0, shuffle_prob=0, nonlinear_prob=0, paint_prob=0)
    r = t_off(dict(img=x, rng=np.random.default_rng(0)))
    np.testing.assert_array_equal(r['img'], x)
    assert r['distortion'] == [] and 'GenesisDistortion(' in repr(t_off)


@pytest.mark.parametrize('shape', SHAPES)
def test_transvw_exactly_one(shape):
    t = TRANSFORMS.build(dict(type='TransVWDistortion'))
    x = np.full(shape, 0.5, np.float32) + ramp(shape).astype(np.float32) * 0.4
    spatial = np.array(shape[1:])
    rng = np.random.default_rng(12)
    n, counts = 1200, {b: 0 for b in TransVWDistortion.BRANCHES}
    for _ in range(n):
        r = t(dict(img=x, rng=rng))
        assert len(r['distortion']) == 1 and r['flip_axes'] == []
        b = r['distortion'][0]
        counts[b] += 1
        np.testing.assert_array_equal(r['target'], x)
        changed = np.argwhere((r['img'] != x).any(0))
        if b == 'shuffle':                               # 5 windows at most
            assert len(changed) <= 5 * np.prod(np.maximum(spatial // 10, 1))
        elif b == 'inpaint' and len(changed):            # one cuboid
            ext = changed.max(0) - changed.min(0) + 1
            assert (ext <= spatial // 3).all()
            assert (changed.min(0) >= 3).all()
        elif b == 'outpaint':                            # one window kept
            kept = np.argwhere((r['img'] == x).all(0))
            ext = kept.max(0) - kept.min(0) + 1
            assert (ext <= spatial - 3 * spatial // 7).all()
            assert len(kept) == np.prod(ext)
    for b in counts:
        assert within(counts[b], n, 0.25), counts


def test_nonlinear_lookup_table_equals_np_interp_to_float32_rounding():
    """The default table lookup gives np.interp's values (the official per-voxel path)."""
    x = np.random.default_rng(3).random((1, 24, 20, 12)).astype(np.float32)
    x.flat[:4] = [0.0, 1.0, 0.5, 1.0 - 2 ** -24]                   # ends and mid-point
    for seed in range(20):
        fast = G.nonlinear_transformation(x, np.random.default_rng(seed))
        exact = G.nonlinear_transformation(x, np.random.default_rng(seed), lut_size=None)
        assert fast.dtype == np.float32
        np.testing.assert_allclose(fast, exact, rtol=0, atol=2.5e-7)
        assert (fast == exact).mean() > 0.9
