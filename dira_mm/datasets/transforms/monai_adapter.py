"""Run MONAI dictionary transforms inside a dira_mm pipeline, seeded per sample."""
import copy
import inspect
from typing import List, Sequence, Union

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from dira_mm.registry import TRANSFORMS
from .utils import get_rng

__all__ = ['MONAITransforms']


def _build_monai(cfg: Union[dict, object]):
    """A MONAI transform from ``dict(monai='RandFlipd', ...)`` (a name in
    ``monai.transforms``; the key is ``monai``, not ``type``, because ``type`` names a
    dira_mm registry entry and is checked against it by the config preflight) or an already
    built one. Dictionary transforms get
    ``allow_missing_keys=True`` unless the config says otherwise, so one view pipeline serves
    the view that carries the restoration ``target`` and the one that does not."""
    import monai.transforms as mt
    if not isinstance(cfg, dict):
        return cfg
    cfg = copy.deepcopy(cfg)
    if 'type' in cfg:
        raise ValueError(f"MONAITransforms: name the MONAI transform with `monai=` (e.g. "
                         f"dict(monai='RandFlipd', keys=['img'])), not `type=` (got {cfg!r})")
    name = cfg.pop('monai', None)
    cls = getattr(mt, name, None) if isinstance(name, str) else None
    if cls is None or not isinstance(cls, type):
        raise ValueError(f'MONAITransforms: {name!r} is not a transform of monai.transforms '
                         '(e.g. RandFlipd, RandScaleIntensityd, RandSpatialCropd, Resized).')
    if 'allow_missing_keys' in inspect.signature(cls).parameters:
        cfg.setdefault('allow_missing_keys', True)
    return cls(**cfg)


def _to_numpy(x, like: np.ndarray) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.as_tensor() if hasattr(x, 'as_tensor') else x
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(x, dtype=like.dtype)


@TRANSFORMS.register_module()
class MONAITransforms(BaseTransform):
    """Apply MONAI dictionary transforms (``RandFlipd``, ``RandScaleIntensityd``,
    ``RandSpatialCropd``, ``Resized``, ...) to ``results``, as one ``monai.transforms.Compose``.

    **Randomness.** Before each call, the Compose's random state is set
    (``Randomizable.set_random_state``) from a seed drawn from the per-sample generator
    (:func:`~dira_mm.datasets.transforms.utils.get_rng`); MONAI's Compose then seeds each
    random child from it. The output is therefore a pure function of ``(seed, epoch, index)``,
    whatever the number of workers, as every dira_mm transform.

    **Keys.** Each MONAI transform names its own keys: spatial transforms list every array
    that must move together (``keys=['img', 'target']`` flips the restoration target with its
    view), intensity transforms only ``'img'``. ``keys`` here are the ``results`` entries handed
    to MONAI (those present and not None); the arrays come back as numpy with their dtype.
    Arrays are channel-first ``(C, *spatial)``, MONAI's convention.

    Args:
        transforms (Sequence[dict]): MONAI dictionary transform configs, ``monai`` = a name
            in ``monai.transforms`` (e.g. ``dict(monai='RandFlipd', keys=['img', 'target'],
            prob=0.5, spatial_axis=0)``), or transform objects.
        keys (Sequence[str]): The ``results`` keys passed to MONAI. Defaults to
            ``('img', 'target')``.
    """

    def __init__(self, transforms: Sequence[Union[dict, object]],
                 keys: Sequence[str] = ('img', 'target')) -> None:
        from monai.transforms import Compose
        self.transform_cfgs = copy.deepcopy(list(transforms))
        self.keys = tuple(keys)
        self.compose = Compose([_build_monai(t) for t in self.transform_cfgs])

    def transform(self, results: dict) -> dict:
        rng = get_rng(results)
        data = {k: results[k] for k in self.keys if results.get(k) is not None}
        like = {k: np.asarray(v) for k, v in data.items()}
        self.compose.set_random_state(seed=int(rng.integers(0, 2**32)))
        out = self.compose(data)
        for k in data:
            results[k] = _to_numpy(out[k], like[k])
        first = results.get(self.keys[0]) if self.keys else None
        if isinstance(first, np.ndarray):
            results['img_shape'] = tuple(first.shape[1:])
        return results

    def transform_names(self) -> List[str]:
        return [type(t).__name__ for t in self.compose.transforms]

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(transforms={self.transform_names()}, '
                f'keys={self.keys})')
