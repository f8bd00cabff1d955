"""TransVW's per-sample pipeline: target copy, optional elastic deformation, one perturbation."""
from typing import Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from dira_mm.registry import TRANSFORMS
from .elastic import elastic_deform
from .genesis import TransVWDistortion
from .utils import get_rng

__all__ = ['TransVWPerturbation']


@TRANSFORMS.register_module()
class TransVWPerturbation(BaseTransform):
    """TransVW's ``luna_loader`` for one cube, 2-D or 3-D, in the official order.

    1. ``target`` = a copy of ``results['img']`` (TransVW's ``x_ori``, copied *before* the
       elastic step, so the model restores the undeformed cube);
    2. with ``elastic`` (TransVW's ``data_augmentation``, on by default), the in-plane
       elastic deformation (:func:`~dira_mm.datasets.transforms.elastic.elastic_deform`,
       ``alpha`` 991, ``sigma`` 8);
    3. exactly one of local shuffle / non-linear / in-paint / out-paint
       (:class:`TransVWDistortion`, p 0.25 each).

    Added keys: ``target``, ``distortion`` (``[branch]``, with ``'elastic'`` first when it
    ran), ``flip_axes`` (``[]``).

    Args:
        elastic (bool): Deform before the perturbation.
        alpha (float): Elastic displacement scale.
        sigma (float): Elastic smoothing.
        official_meshgrid (bool): The official ``'xy'`` coordinate grid (see ``elastic.py``).
        probs (Sequence[float]): Branch probabilities of :class:`TransVWDistortion`.
        shuffle_windows (int): Windows of the local shuffle (official 5).
        invert_prob (float): Probability that the intensity map decreases.
    """

    def __init__(self, elastic: bool = True, alpha: float = 991.0, sigma: float = 8.0,
                 official_meshgrid: bool = False,
                 probs: Sequence[float] = (0.25, 0.25, 0.25, 0.25), shuffle_windows: int = 5,
                 invert_prob: float = 0.5) -> None:
        self.elastic = bool(elastic)
        self.alpha = float(alpha)
        self.sigma = float(sigma)
        self.official_meshgrid = bool(official_meshgrid)
        self.distortion = TransVWDistortion(probs, shuffle_windows, invert_prob)

    def transform(self, results: dict) -> dict:
        rng = get_rng(results)
        img = np.asarray(results['img'])
        target = img.copy()
        if self.elastic:
            img = elastic_deform(img, rng, self.alpha, self.sigma,
                                 official_meshgrid=self.official_meshgrid)
        results['img'] = img
        had_rng = results.get('rng') is not None
        results['rng'] = rng  # the same generator for the perturbation
        results = self.distortion.transform(results)
        if not had_rng:
            results.pop('rng')
        results['target'] = target
        if self.elastic:
            results['distortion'] = ['elastic'] + list(results['distortion'])
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(elastic={self.elastic}, alpha={self.alpha}, '
                f'sigma={self.sigma}, official_meshgrid={self.official_meshgrid}, '
                f'distortion={self.distortion!r})')
