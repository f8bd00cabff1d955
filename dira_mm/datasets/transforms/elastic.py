"""TransVW's elastic deformation (in-plane displacement), 2-D or 3-D.

TransVW (``pytorch/utils/purturbation.py`` ``elastic_transform``, reference
``/work/shared/reference/dira_3d_transvw.md`` §3.2) deforms each training cube before its
perturbation: two random fields ``U(-1, 1)`` over the whole array, each smoothed by a
Gaussian of ``sigma`` (``mode='constant'``, so the displacement fades near the borders) and
scaled by ``alpha``, displace the first two spatial axes (x and y); the third (z) is not
moved. The array is resampled at the displaced coordinates by linear interpolation with
``reflect`` at the edges. Built on ``scipy.ndimage`` (``gaussian_filter``,
``map_coordinates``); MONAI's ``Rand3DElastic`` draws a coarse grid and displaces all
three axes, which is a different law, so this one is written here.

Deviation with a flag restoring the official behaviour: the official coordinate grid
comes from ``np.meshgrid`` with its default ``'xy'`` indexing, which swaps the first two
axes; it equals the ``'ij'`` grid used here only when the first two sides are equal (the
64 x 64 x 32 cubes), and fails for other shapes. ``official_meshgrid=True`` builds the
``'xy'`` grid (an error for non-square in-plane shapes, as the official code).
"""
from typing import Optional, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from scipy.ndimage import gaussian_filter, map_coordinates

from dira_mm.registry import TRANSFORMS
from .utils import get_rng

__all__ = ['elastic_displacement', 'elastic_deform', 'ElasticDeformation']


def elastic_displacement(shape: Tuple[int, ...], rng: np.random.Generator,
                         alpha: float = 991.0, sigma: float = 8.0) -> np.ndarray:
    """``(2, *shape)`` float64 displacements of the first two spatial axes.

    Each field is ``alpha * gaussian_filter(U(-1, 1), sigma, mode='constant')`` over
    ``shape`` (the spatial shape; every slice along z gets its own noise, as the official
    filter runs over the whole array).
    """
    out = np.empty((2, ) + tuple(shape), dtype=np.float64)
    for i in range(2):
        noise = rng.random(shape) * 2.0 - 1.0
        out[i] = gaussian_filter(noise, sigma, mode='constant', cval=0.0) * alpha
    return out


def _grid(shape: Tuple[int, ...], official_meshgrid: bool):
    axes = [np.arange(n, dtype=np.float64) for n in shape]
    if not official_meshgrid:
        return np.meshgrid(*axes, indexing='ij')
    if shape[0] != shape[1]:
        raise ValueError(
            f'elastic_deform(official_meshgrid=True): the official "xy" grid only fits arrays '
            f'with equal first two sides, got spatial shape {tuple(shape)}; use '
            'official_meshgrid=False (the default).')
    g = np.meshgrid(*axes)  # 'xy': the first two outputs vary along axes 1 and 0
    # official: coordinates (y + dy, x + dx, z) with x = g[0], y = g[1]
    return [g[1], g[0]] + list(g[2:])


def elastic_deform(x: np.ndarray, rng: np.random.Generator, alpha: float = 991.0,
                   sigma: float = 8.0, order: int = 1, mode: str = 'reflect',
                   official_meshgrid: bool = False,
                   displacement: Optional[np.ndarray] = None) -> np.ndarray:
    """Deform a channel-first ``(C, *spatial)`` array (2 or 3 spatial axes) in-plane.

    Every channel moves with the same displacement. The first spatial axis is shifted by
    the first field and the second by the second (the official ``dy``/``dx``: which field
    goes where does not change the law); a third axis is left in place. ``alpha=0`` returns
    an exact copy. Returns a new array of ``x``'s dtype; ``x`` is not written.
    """
    if x.ndim - 1 not in (2, 3):
        raise ValueError(f'elastic_deform: expected a channel-first (C, H, W) or (C, X, Y, Z) '
                         f'array, got shape {x.shape}')
    spatial = x.shape[1:]
    if alpha == 0 and displacement is None:
        return x.copy()
    if displacement is None:
        displacement = elastic_displacement(spatial, rng, alpha, sigma)
    grid = _grid(spatial, official_meshgrid)
    coords = [grid[0] + displacement[0], grid[1] + displacement[1]] + list(grid[2:])
    coords = np.stack([c.reshape(-1) for c in coords])
    out = np.empty_like(x)
    for c in range(x.shape[0]):
        out[c] = map_coordinates(x[c], coords, order=order, mode=mode).reshape(spatial)
    return out


@TRANSFORMS.register_module()
class ElasticDeformation(BaseTransform):
    """TransVW's elastic deformation of ``results['img']`` (channel-first float array).

    With ``keep_target=True`` (TransVW: the restoration target ``x_ori`` is copied
    *before* the deformation) the undeformed image is stored in ``results['target']``
    unless a target is already there; a later :class:`TransVWDistortion` would overwrite
    it with the deformed image, so TransVW pipelines use :class:`TransVWPerturbation`,
    which runs both in the official order. Randomness from ``results['rng']``.

    Args:
        alpha (float): Displacement scale (official 991).
        sigma (float): Gaussian smoothing of the noise (official 8).
        prob (float): Probability of deforming a sample (official 1 when
            ``data_augmentation`` is on).
        official_meshgrid (bool): Build the coordinate grid as the official code (``'xy'``
            meshgrid: equal results for square in-plane shapes, an error otherwise).
        keep_target (bool): Copy the undeformed image to ``results['target']`` first.
    """

    def __init__(self, alpha: float = 991.0, sigma: float = 8.0, prob: float = 1.0,
                 official_meshgrid: bool = False, keep_target: bool = False) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'ElasticDeformation: prob must be in [0, 1], got {prob}')
        if sigma < 0 or alpha < 0:
            raise ValueError(f'ElasticDeformation: alpha and sigma must be >= 0, got '
                             f'alpha={alpha}, sigma={sigma}')
        self.alpha = float(alpha)
        self.sigma = float(sigma)
        self.prob = float(prob)
        self.official_meshgrid = bool(official_meshgrid)
        self.keep_target = bool(keep_target)

    def transform(self, results: dict) -> dict:
        rng = get_rng(results)
        img = np.asarray(results['img'])
        if self.keep_target and results.get('target') is None:
            results['target'] = img.copy()
        if self.prob >= 1 or rng.random() < self.prob:
            results['img'] = elastic_deform(img, rng, self.alpha, self.sigma,
                                            official_meshgrid=self.official_meshgrid)
            results['elastic'] = True
        else:
            results['elastic'] = False
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(alpha={self.alpha}, sigma={self.sigma}, '
                f'prob={self.prob}, official_meshgrid={self.official_meshgrid}, '
                f'keep_target={self.keep_target})')
