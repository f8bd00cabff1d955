"""Chest-CT phantoms: HU per tissue, nodules where recorded, label rule, determinism."""
import numpy as np
import pytest

from dira_mm.datasets.ct_phantom import (CT_TISSUES, generate_ct_phantom, nodule_is_malignant,
                                         ras_to_lps, voxel_to_world, world_to_voxel)

SHAPE, SPACING = (48, 48, 24), (1.0, 1.0, 2.5)


@pytest.fixture(scope='module')
def phantoms():
    return [generate_ct_phantom(seed, SHAPE, SPACING) for seed in range(4)]


def _mean(ph, name):
    return float(ph.volume[ph.tissue == CT_TISSUES.index(name)].mean())


def test_hu_per_tissue(phantoms):
    for ph in phantoms:
        assert ph.volume.dtype == np.float32 and ph.volume.shape == SHAPE
        assert np.array_equal(ph.volume, np.rint(ph.volume))  # whole HU
        assert -900 <= _mean(ph, 'lung') <= -800
        assert abs(_mean(ph, 'air') + 1000) < 5
        assert 20 <= _mean(ph, 'soft_tissue') <= 70
        assert -120 <= _mean(ph, 'fat') <= -60
        assert _mean(ph, 'bone') > 300
        # body fractions: lungs and bone exist, air outside the body
        assert (ph.tissue == CT_TISSUES.index('lung')).mean() > 0.05
        assert ph.tissue[0, 0, 0] == 0 and ph.tissue[-1, -1, -1] == 0


def test_nodules_at_recorded_positions(phantoms):
    from scipy import ndimage
    total = 0
    for ph in phantoms:
        assert ph.mask.dtype == np.uint8 and set(np.unique(ph.mask)) <= {0, 1}
        labels, num = ndimage.label(ph.mask)
        assert num == len(ph.nodules)
        lung = _mean(ph, 'lung')
        for rec in ph.nodules:
            comp = labels == labels[rec['center_voxel']]
            assert labels[rec['center_voxel']] > 0
            centroid = np.argwhere(comp).mean(0)
            assert np.abs(centroid - np.asarray(rec['center_voxel'])).max() <= 1.0
            assert comp.sum() == rec['num_voxels']
            assert ph.volume[comp].mean() > lung + 500
            # world mm of the record = the affine applied to the centre voxel
            assert np.allclose(rec['center_mm'], voxel_to_world(ph.affine, rec['center_voxel']))
            assert rec['malignant'] == nodule_is_malignant(rec['diameter_mm'], rec['shape'])
            # nodules lie in the lungs: the voxels around the mask are lung or vessel
            ring = ndimage.binary_dilation(comp, iterations=1) & ~comp
            assert np.isin(ph.tissue[ring], [3, 5, 6]).all()
            total += 1
    assert total >= 4


def test_label_rule():
    assert nodule_is_malignant(5.0, 'spiculated') == 1
    assert nodule_is_malignant(10.0, 'smooth') == 1
    assert nodule_is_malignant(9.99, 'lobulated') == 0


def test_determinism():
    a = generate_ct_phantom(7, (32, 32, 16))
    b = generate_ct_phantom(7, (32, 32, 16))
    c = generate_ct_phantom(8, (32, 32, 16))
    assert a.volume.tobytes() == b.volume.tobytes() and a.mask.tobytes() == b.mask.tobytes()
    assert a.nodules == b.nodules
    assert a.volume.tobytes() != c.volume.tobytes()


def test_world_voxel_round_trip():
    ph = generate_ct_phantom(1, (32, 32, 16), (0.8, 0.9, 2.0))
    ijk = np.array([[0, 0, 0], [3, 17, 9], [31, 31, 15]], dtype=float)
    xyz = voxel_to_world(ph.affine, ijk)
    assert np.allclose(xyz[1] - xyz[0], [3 * 0.8, 17 * 0.9, 9 * 2.0])
    assert np.allclose(world_to_voxel(ph.affine, xyz), ijk)
    assert np.allclose(ras_to_lps(ras_to_lps(xyz)), xyz)
    assert np.allclose(ras_to_lps([1.0, 2.0, 3.0]), [-1.0, -2.0, 3.0])


def test_speed_default_size():
    import time
    start = time.perf_counter()
    ph = generate_ct_phantom(0)
    assert ph.volume.shape == (96, 96, 48)
    assert time.perf_counter() - start < 1.0


def test_bad_arguments():
    with pytest.raises(ValueError, match='shape'):
        generate_ct_phantom(0, (8, 32, 32))
    with pytest.raises(ValueError, match='spacing'):
        generate_ct_phantom(0, (32, 32, 32), (1, 0, 1))
