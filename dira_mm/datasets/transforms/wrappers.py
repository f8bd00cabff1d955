"""DiRA's two augmented views of one image and the restoration target."""
import copy
from typing import List, Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform, Compose

from dira_mm.registry import TRANSFORMS
from .processing import flip_image
from .utils import get_rng

__all__ = ['DiRAViews']

_OFFICIAL_VIEW_PIPELINE = (
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1,
         prob=0.8),
    dict(type='GaussianBlur', sigma=(0.1, 2.0), prob=0.5),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
)

# Per-view keys: dropped from the input of a view, gathered as lists in the output.
_VIEW_KEYS = ('crop_bbox', 'flip', 'flip_direction', 'distortion', 'distortion_boxes')


def _build(cfg: Union[dict, BaseTransform]) -> BaseTransform:
    """Build from ``dira_mm``'s registry (whatever the current default scope is)."""
    return TRANSFORMS.build(copy.deepcopy(cfg)) if isinstance(cfg, dict) else cfg


@TRANSFORMS.register_module()
class DiRAViews(BaseTransform):
    """Make ``num_views`` augmented views of one image, plus DiRA's restoration target.

    Per view, from the same full image: ``crop`` -> (for ``target_view``: a copy of the
    crop is the target) -> ``view_pipeline`` (mmcv ``Compose``) -> if the view was
    flipped and ``flip_target``: the target is flipped the same way -> ``distortion`` on
    the views in ``distort_views``. Every sub-transform draws from the same per-sample
    generator (``results['rng']``, else one from
    :func:`~dira_mm.datasets.transforms.utils.get_rng`), so the views are a pure
    function of it.

    Deviation from the official code, with a flag that restores it: the official target
    is never flipped, so whenever view 0 is flipped (p=0.5) the network must also mirror
    the image, which is a real change for left-right asymmetric X-rays. Here
    ``flip_target=True`` (default) flips it with the view; ``flip_target=False`` is the
    official behaviour.

    Unlike mmselfsup's ``MultiView``, ``results`` is not deep-copied per view: a view
    gets a shallow copy whose ``img`` is the full image, which the transforms never
    write in place.

    **Volumes** (``spatial_dims=3``): ``img`` is a channel-first float ``(C, X, Y, Z)``
    array (a cube of ``RandomCubes``), and ``crop`` / ``view_pipeline`` are 3-D transforms,
    typically :class:`~dira_mm.datasets.transforms.MONAITransforms` (e.g. ``RandScaleCropd``
    + ``Resized`` as the crop, ``RandFlipd`` and intensity transforms as the view pipeline),
    all fed from the per-sample generator. The restoration target (the crop of
    ``target_view``) travels through the view pipeline as ``results['target']``: spatial
    transforms whose keys include ``'target'`` move it with the view (the 3-D form of
    ``flip_target=True``; leave ``'target'`` out of the flip's keys for the official
    never-flipped target), intensity transforms keyed on ``'img'`` leave it alone. The
    distortion never replaces it, but the axes a distortion flipped (``flip_axes``, as
    ``GenesisDistortion``'s flip of input and target) are flipped on it too. Per-view
    ``distortion_boxes`` of undistorted views are ``(0, 2 * spatial_dims)``.

    Required keys: ``img`` (``(H, W)`` uint8; ``(C, X, Y, Z)`` float with
    ``spatial_dims=3``). Modified keys: ``img`` (list of views),
    ``img_shape`` (of a view). Added keys: ``target`` (when ``with_target``), ``clean``
    (when ``keep_clean``), and per-view lists ``crop_bbox``, ``flip``,
    ``flip_direction``, ``distortion``, ``distortion_boxes`` (``distortion`` is
    ``'none'`` for an undistorted view).

    Args:
        num_views (int): Number of views.
        crop (dict): Config of the crop of each view.
        view_pipeline (Sequence[dict], optional): Configs applied to each view after the
            crop. ``None`` means the official ones: ``ColorJitter(0.4, 0.4, 0.4, 0.1,
            prob=0.8)``, ``GaussianBlur((0.1, 2.0), prob=0.5)``, ``RandomFlip(0.5)``.
        distortion (dict, optional): Config of the restorative distortion; ``None``
            disables it (DiRA's ``di`` stage).
        distort_views (Sequence[int]): The views that are distorted (official: both).
        with_target (bool): Whether to output the restoration target.
        target_view (int): Which view's crop is the target.
        flip_target (bool): Flip the target when its view is flipped (see above).
        keep_clean (bool): Also output ``clean``, view ``target_view`` after the view
            pipeline and before the distortion (for pictures of the restoration, e.g.
            ``ReconstructionVisHook``). Off by default: it costs a copy per sample.
        spatial_dims (int): 2 (images, default) or 3 (volumes; see above).
    """

    def __init__(self,
                 num_views: int = 2,
                 crop: dict = dict(type='RandomResizedCrop', size=224, scale=(0.2, 1.0)),
                 view_pipeline: Optional[Sequence[dict]] = None,
                 distortion: Optional[dict] = dict(type='DiRADistortion'),
                 distort_views: Sequence[int] = (0, 1),
                 with_target: bool = True,
                 target_view: int = 0,
                 flip_target: bool = True,
                 keep_clean: bool = False,
                 spatial_dims: int = 2) -> None:
        if spatial_dims not in (2, 3):
            raise ValueError(f'DiRAViews: spatial_dims must be 2 or 3, got {spatial_dims!r}')
        if spatial_dims == 3 and not flip_target:
            raise ValueError("DiRAViews(spatial_dims=3): flip_target is a 2-D option; in 3-D "
                             "the target follows the spatial transforms whose keys include "
                             "'target' (remove 'target' from the flip's keys instead).")
        if num_views < 1:
            raise ValueError(f'num_views must be >= 1, got {num_views}')
        if (with_target or keep_clean) and not 0 <= target_view < num_views:
            raise ValueError(f'target_view {target_view} is not a view index '
                             f'(num_views={num_views})')
        if distortion is not None and any(not 0 <= v < num_views for v in distort_views):
            raise ValueError(f'distort_views {distort_views} has an index outside '
                             f'[0, {num_views})')
        self.num_views = int(num_views)
        self.crop_cfg = copy.deepcopy(crop)
        self.view_pipeline_cfg = copy.deepcopy(
            list(_OFFICIAL_VIEW_PIPELINE if view_pipeline is None else view_pipeline))
        self.distortion_cfg = copy.deepcopy(distortion)
        self.crop = _build(crop)
        self.view_pipeline = Compose([_build(cfg) for cfg in self.view_pipeline_cfg])
        self.distortion = _build(distortion) if distortion is not None else None
        self.distort_views = tuple(int(v) for v in distort_views)
        self.with_target = bool(with_target)
        self.target_view = int(target_view)
        self.flip_target = bool(flip_target)
        self.keep_clean = bool(keep_clean)
        self.spatial_dims = int(spatial_dims)

    def _make_view(self, results: dict, index: int, rng: np.random.Generator
                   ) -> Optional[dict]:
        view = {k: v for k, v in results.items() if k not in _VIEW_KEYS}
        view['rng'] = rng
        view = self.crop(view)
        if view is None:
            return None
        target = view['img'].copy() if self.with_target and index == self.target_view \
            else None
        if self.spatial_dims == 3:  # the target rides through the view pipeline by its keys
            view['target'] = target
        view = self.view_pipeline(view)
        if view is None:
            return None
        if self.spatial_dims == 3:
            target = view.get('target')
        elif target is not None and self.flip_target and view.get('flip', False):
            target = flip_image(target, view.get('flip_direction') or 'horizontal')
        view['target'] = target
        if self.keep_clean and index == self.target_view:
            view['clean'] = view['img'].copy()
        if self.distortion is not None and index in self.distort_views:
            view = self.distortion(view)
            if view is None:
                return None
            # The view's target stays (a distortion's own target, a copy of the view after
            # intensity transforms, does not win), but a distortion that flips its input
            # (GenesisDistortion, ``flip_axes``) flips the target too, so they stay aligned.
            if target is not None and view.get('flip_axes'):
                for axis in view['flip_axes']:
                    target = np.flip(target, axis=axis)
                target = np.ascontiguousarray(target)
            view['target'] = target
        else:
            view['distortion'] = 'none'
            view['distortion_boxes'] = np.zeros((0, 2 * self.spatial_dims), dtype=np.int64)
        return view

    def transform(self, results: dict) -> Optional[dict]:
        rng = get_rng(results)
        views: List[dict] = []
        for index in range(self.num_views):
            view = self._make_view(results, index, rng)
            if view is None:
                return None
            views.append(view)
        results['img'] = [v['img'] for v in views]
        results['img_shape'] = tuple(views[0]['img'].shape[:2] if self.spatial_dims == 2
                                     else views[0]['img'].shape[1:])
        if self.with_target:
            results['target'] = views[self.target_view]['target']
        if self.keep_clean:
            results['clean'] = views[self.target_view]['clean']
        for key in _VIEW_KEYS:
            results[key] = [v.get(key) for v in views]
        results['flip'] = [bool(f) for f in results['flip']]
        return results

    def __repr__(self) -> str:
        pipeline = ', '.join(repr(t) for t in self.view_pipeline.transforms)
        return (f'{self.__class__.__name__}(num_views={self.num_views}, '
                f'crop={self.crop!r}, view_pipeline=[{pipeline}], '
                f'distortion={self.distortion!r}, distort_views={self.distort_views}, '
                f'with_target={self.with_target}, target_view={self.target_view}, '
                f'flip_target={self.flip_target}, keep_clean={self.keep_clean}, '
                f'spatial_dims={self.spatial_dims})')
