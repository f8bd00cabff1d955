"""LoadVolume and RandomCubes (issue 9, section 2)."""
import nibabel as nib
import numpy as np
import pytest

from dira_mm.datasets import ImageReadError, hu_window
from dira_mm.datasets.transforms import LoadVolume, RandomCubes
from dira_mm.datasets.transforms.volume_loading import genesis_air_score
from dira_mm.registry import TRANSFORMS


def _write_nifti(path, data, spacing=(0.7, 0.8, 2.5)):
    nib.save(nib.Nifti1Image(data, np.diag(list(spacing) + [1.0])), str(path))
    return str(path)


def _ramp(shape):
    """A volume whose value encodes its voxel index: x * 10000 + y * 100 + z."""
    x, y, z = np.meshgrid(*(np.arange(s) for s in shape), indexing='ij')
    return (x * 10000 + y * 100 + z).astype(np.float32)


def _origin(cube):
    v = int(cube[0, 0, 0, 0])
    return v // 10000, (v // 100) % 100, v % 100


def test_load_volume_windowed_by_hand(tmp_path):
    rng = np.random.default_rng(0)
    hu = rng.uniform(-1500, 1500, size=(12, 10, 6)).astype(np.float32)
    path = _write_nifti(tmp_path / 'ct.nii.gz', hu)
    t = TRANSFORMS.build(dict(type='LoadVolume'))
    out = t(dict(img_path=path))
    expected = (np.clip(hu, -1000, 1000) + 1000) / 2000
    assert out['img'].shape == (1, 12, 10, 6) and out['img'].dtype == np.float32
    np.testing.assert_allclose(out['img'][0], expected, atol=1e-6)
    assert out['img'].min() >= 0 and out['img'].max() <= 1
    assert out['spatial_dims'] == 3 and out['img_shape'] == (12, 10, 6)
    np.testing.assert_allclose(out['spacing'], (0.7, 0.8, 2.5), rtol=1e-6)
    assert out['affine'].shape == (4, 4) and 'img_hu' not in out
    # another window
    out = LoadVolume(window=(-175, 250))(dict(img_path=path))
    np.testing.assert_allclose(out['img'][0], (np.clip(hu, -175, 250) + 175) / 425, atol=1e-6)


def test_load_volume_hu_path(tmp_path):
    hu = np.linspace(-1200, 1200, 8 * 6 * 4, dtype=np.float32).reshape(8, 6, 4)
    path = _write_nifti(tmp_path / 'ct.nii', hu)
    out = LoadVolume(window=None)(dict(img_path=path))
    np.testing.assert_allclose(out['img'][0], hu, atol=1e-3)  # HU, unwindowed
    assert out['hu_window'] is None
    out = LoadVolume(keep_hu=True)(dict(img_path=path))
    np.testing.assert_allclose(out['img_hu'], hu, atol=1e-3)
    assert out['img'].max() <= 1 and out['img_hu'].min() < -1000


def test_load_volume_unreadable_raises(tmp_path):
    bad = tmp_path / 'broken.nii.gz'
    bad.write_bytes(b'not a nifti at all')
    with pytest.raises(ImageReadError, match='broken.nii.gz'):
        LoadVolume()(dict(img_path=str(bad)))
    with pytest.raises(ImageReadError):
        LoadVolume()(dict(img_path=str(tmp_path / 'missing.nii')))
    nan = np.zeros((4, 4, 4), np.float32)
    nan[1, 2, 3] = np.nan
    with pytest.raises(ImageReadError, match='not finite'):
        LoadVolume()(dict(img_path=_write_nifti(tmp_path / 'nan.nii', nan)))
    with pytest.raises(ImageReadError, match='max_voxels'):
        LoadVolume(max_voxels=10)(dict(img_path=_write_nifti(tmp_path / 'z.nii', nan * 0)))
    with pytest.raises(ValueError):
        LoadVolume(window=(5, 1))
    with pytest.raises(ValueError):
        LoadVolume(nonfinite='zero')


def test_random_cubes_shapes_and_positions_within_borders():
    shape = (40, 36, 30)
    vol = _ramp(shape)[None]
    t = RandomCubes(size=(8, 6, 4), border=(5, 4, 3), extra_depth=3)
    seen = set()
    for seed in range(200):
        out = t(dict(img=vol, rng=np.random.default_rng(seed)))
        cube = out['img']
        assert cube.shape == (1, 8, 6, 4) and out['img_shape'] == (8, 6, 4)
        o = _origin(cube)
        assert tuple(out['cube_origins'][0]) == o
        np.testing.assert_array_equal(cube[0], vol[0, o[0]:o[0] + 8, o[1]:o[1] + 6, o[2]:o[2] + 4])
        assert 5 <= o[0] <= 40 - 8 - 5 and 4 <= o[1] <= 36 - 6 - 4
        assert 3 <= o[2] <= 30 - (4 + 3) - 3  # the crop depth includes extra_depth
        seen.add(o)
    xs = {o[0] for o in seen}
    assert min(xs) == 5 and max(xs) == 27  # both ends are reached
    assert max(o[2] for o in seen) == 20


def test_random_cubes_small_volume_border_rule():
    vol = _ramp((80, 70, 40))[None]
    t = RandomCubes()  # default size 64x64x32, borders 100/100/30
    assert t._bounds((80, 70, 40), 'v') == [(4, 12), (1, 5), (1, 4)]
    for seed in range(50):
        out = t(dict(img=vol, rng=np.random.default_rng(seed)))
        assert out['img'].shape == (1, 64, 64, 32)
        o = out['cube_origins'][0]
        assert 4 <= o[0] <= 12 and 1 <= o[1] <= 5 and 1 <= o[2] <= 4
    # exactly the crop: one position; smaller than the crop: skipped as unreadable
    assert RandomCubes(size=(8, 8, 4), border=(2, 2, 2))._bounds((8, 8, 7), 'v') == \
        [(0, 0)] * 3
    with pytest.raises(ImageReadError, match='smaller than the cube'):
        RandomCubes(size=(8, 8, 4))(dict(img=np.zeros((1, 8, 8, 6), np.float32),
                                         img_path='small.nii'))


def test_random_cubes_deterministic_per_seed():
    vol = _ramp((40, 40, 30))[None]
    t = RandomCubes(size=(8, 8, 4), num_cubes=3, border=(2, 2, 2))
    a = t(dict(img=vol, rng=np.random.default_rng(7)))
    b = t(dict(img=vol, rng=np.random.default_rng(7)))
    c = t(dict(img=vol, rng=np.random.default_rng(8)))
    assert a['cube_origins'] == b['cube_origins'] != c['cube_origins']
    for x, y in zip(a['img'], b['img']):
        np.testing.assert_array_equal(x, y)


def test_random_cubes_multiple_per_read():
    vol = np.concatenate([_ramp((30, 30, 20))[None], -_ramp((30, 30, 20))[None]])  # 2 channels
    out = RandomCubes(size=(6, 5, 4), num_cubes=4, border=(1, 1, 1))(
        dict(img=vol, rng=np.random.default_rng(3)))
    assert isinstance(out['img'], list) and len(out['img']) == 4
    assert len(out['cube_origins']) == 4 and len(set(out['cube_origins'])) > 1
    for cube, o in zip(out['img'], out['cube_origins']):
        assert cube.shape == (2, 6, 5, 4)
        assert _origin(cube) == o
        np.testing.assert_array_equal(cube[1], -cube[0])


def test_genesis_air_score_matches_official_loop():
    rng = np.random.default_rng(0)
    hu = rng.choice([-900.0, 40.0], size=(5, 4, 9), p=[0.7, 0.3])
    depth, look = 6, 3
    d_img = np.zeros((5, 4, depth))
    for d in range(depth):  # infinite_generator_3D.py lines 162-181
        for i in range(5):
            for j in range(4):
                for k in range(look):
                    if hu[i, j, d + k] >= -150:
                        d_img[i, j, d] = k
                        break
                    if k == look - 1:
                        d_img[i, j, d] = k
    official = np.mean(1.0 - d_img / (look - 1))
    assert genesis_air_score(hu, depth, -150, look) == pytest.approx(official)


def _half_air_half_tissue(shape=(60, 40, 30)):
    hu = np.full(shape, 40.0, np.float32)  # soft tissue
    hu[:30] = -850.0  # lung / air for x < 30
    return hu


def test_air_filter_accepts_air_rejects_tissue():
    hu = _half_air_half_tissue()
    t = RandomCubes(size=(10, 8, 6), border=(2, 2, 2), air_filter=True)
    assert genesis_air_score(hu[0:10, :8, :9], 6) == 0.0  # an air cube passes
    assert genesis_air_score(hu[40:50, :8, :9], 6) == 1.0  # a tissue cube does not
    for seed in range(40):
        res = dict(img=hu[None].copy(), img_hu=hu, rng=np.random.default_rng(seed))
        out = t(res)
        o = out['cube_origins'][0]
        crop = hu[o[0]:o[0] + 10, o[1]:o[1] + 8, o[2]:o[2] + 6]
        assert np.mean(crop >= -150) <= 0.15, o
        assert out['cube_fallbacks'] == 0
    # without the filter, tissue cubes are drawn too
    plain = RandomCubes(size=(10, 8, 6), border=(2, 2, 2))
    xs = [plain(dict(img=hu[None], rng=np.random.default_rng(s)))['cube_origins'][0][0]
          for s in range(40)]
    assert max(xs) > 30


def test_air_filter_needs_hu_and_falls_back():
    hu = np.full((30, 30, 20), 40.0, np.float32)  # all tissue: nothing passes
    t = RandomCubes(size=(8, 8, 4), num_cubes=2, border=(1, 1, 1), air_filter=True, max_tries=5)
    with pytest.raises(KeyError, match=r"LoadVolume\(keep_hu=True\)"):
        t(dict(img=hu[None]))
    out = t(dict(img=hu[None], img_hu=hu, rng=np.random.default_rng(0)))
    assert out['cube_fallbacks'] == 2 and t.num_fallbacks == 2
    assert [c.shape for c in out['img']] == [(1, 8, 8, 4)] * 2
    # the same draws as without the filter's success: the last of 5 candidates
    rng = np.random.default_rng(0)
    for o in out['cube_origins']:
        cands = [tuple(int(rng.integers(lo, hi + 1)) for lo, hi in t._bounds(hu.shape, None))
                 for _ in range(5)]
        assert o == cands[-1]


def test_load_then_cubes_pipeline(tmp_path):
    hu = _half_air_half_tissue((48, 40, 30))
    path = _write_nifti(tmp_path / 'ct.nii.gz', hu, spacing=(1, 1, 1))
    res = dict(img_path=path, rng=np.random.default_rng(1))
    res = LoadVolume(keep_hu=True)(res)
    res = RandomCubes(size=(16, 16, 8), border=(4, 4, 4), air_filter=True)(res)
    assert res['img'].shape == (1, 16, 16, 8) and res['cube_fallbacks'] == 0
    air = np.float32((-850 + 1000) / 2000)
    assert np.mean(res['img'] != air) <= 0.15  # the windowed cube is mostly air
    o = res['cube_origins'][0]
    crop = res['img_hu'][o[0]:o[0] + 16, o[1]:o[1] + 16, o[2]:o[2] + 8]
    np.testing.assert_array_equal(res['img'][0], hu_window(crop))


def test_load_volume_resampled_spacing_and_values(tmp_path):
    x = np.arange(11, dtype=np.float32)
    hu = np.broadcast_to(x[:, None, None] * 100 - 500, (11, 6, 5)).astype(np.float32)
    path = _write_nifti(tmp_path / 'ct.nii', hu, spacing=(1.0, 1.5, 3.0))
    out = LoadVolume(spacing=(2.0, None, 1.5), keep_hu=True)(dict(img_path=path))
    # MONAI keeps the first and last voxel centres: 10 mm / 2 -> 6 voxels, 12 mm / 1.5 -> 9
    assert out['img'].shape == (1, 6, 6, 9) and out['img_shape'] == (6, 6, 9)
    np.testing.assert_allclose(out['spacing'], (2.0, 1.5, 1.5), rtol=1e-6)
    np.testing.assert_allclose(out['source_spacing'], (1.0, 1.5, 3.0), rtol=1e-6)
    np.testing.assert_allclose(np.diag(out['affine'])[:3], (2.0, 1.5, 1.5), rtol=1e-6)
    # every second x voxel (HU -500, -300, ..., 500), resampled *before* the window
    np.testing.assert_allclose(out['img_hu'][:, 2, 4], [-500, -300, -100, 100, 300, 500],
                               atol=1e-3)
    np.testing.assert_allclose(out['img'][0, :, 2, 4], [0.25, 0.35, 0.45, 0.55, 0.65, 0.75],
                               atol=1e-6)
    with pytest.raises(ValueError, match='spacing'):
        LoadVolume(spacing=(1, -1, 1))
    with pytest.raises(ValueError, match='resample_mode'):
        LoadVolume(resample_mode='cubic')


def test_air_filter_on_windowed_volume_equals_hu(tmp_path):
    """Without img_hu the filter thresholds the windowed volume at the windowed air_hu, as
    the official code does: the same cubes on integer HU."""
    hu = _half_air_half_tissue((48, 40, 30))
    hu[30:34] = -150.0  # exactly at the threshold: tissue in both
    hu[34:36] = -151.0  # just below: air in both
    path = _write_nifti(tmp_path / 'ct.nii', hu, spacing=(1, 1, 1))
    cubes = RandomCubes(size=(10, 8, 6), border=(2, 2, 2), air_filter=True, max_tries=3)
    for seed in range(20):
        with_hu = cubes(LoadVolume(keep_hu=True)(dict(img_path=path,
                                                      rng=np.random.default_rng(seed))))
        windowed = cubes(LoadVolume()(dict(img_path=path, rng=np.random.default_rng(seed))))
        assert with_hu['cube_origins'] == windowed['cube_origins']
        np.testing.assert_array_equal(with_hu['img'], windowed['img'])
    hu_only = cubes(LoadVolume(window=None)(dict(img_path=path, rng=np.random.default_rng(0))))
    assert hu_only['cube_origins'] == cubes(LoadVolume(keep_hu=True)(
        dict(img_path=path, rng=np.random.default_rng(0))))['cube_origins']
