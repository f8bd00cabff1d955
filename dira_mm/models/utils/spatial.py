"""``spatial_dims``: the one argument that makes a model component 2-D or 3-D.

Arrays are channel-first ``(N, C, *spatial)``; a component is told how many spatial axes
it works on (2: images, 3: volumes) and never infers it from a shape (a ``(B, N, C, H, W)``
stack of crops and a ``(B, C, D, H, W)`` volume batch have the same rank). These helpers
check the argument and the inputs with errors that name the config key, and pick the
2-D or 3-D layer class (the 2-D classes are the ones the 2-D code always used, so 2-D
outputs are unchanged).
"""
from typing import Dict, Mapping, Optional, Type

from torch import Tensor, nn

__all__ = ['check_spatial_dims', 'check_input_dims', 'spatial_dims_conflict',
           'adaptive_avg_pool_cls', 'conv_cls', 'instance_norm_cls']

_POOL: Dict[int, Type[nn.Module]] = {2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}
_CONV: Dict[int, Type[nn.Module]] = {2: nn.Conv2d, 3: nn.Conv3d}
_INORM: Dict[int, Type[nn.Module]] = {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}


def check_spatial_dims(value, key: str) -> int:
    """``value`` as an int if it is 2 or 3; else a ``ValueError`` naming ``key``."""
    if isinstance(value, bool) or value not in (2, 3):
        raise ValueError(f'{key} must be 2 (images) or 3 (volumes), got {value!r}.')
    return int(value)


def check_input_dims(x: Tensor, spatial_dims: int, owner: str, key: str,
                     extra_dims: int = 2, layout: Optional[str] = None) -> None:
    """Raise a ``ValueError`` unless ``x`` has ``spatial_dims + extra_dims`` axes.

    Args:
        x: the input.
        spatial_dims: what the component was built for.
        owner: the component (class name) for the message.
        key: the config key that sets ``spatial_dims`` (e.g. ``'model.neck.spatial_dims'``).
        extra_dims: non-spatial axes (2 for ``(N, C, *spatial)``).
        layout: the expected layout in words (default ``(N, C, *spatial)`` spelled out).
    """
    if x.dim() == spatial_dims + extra_dims:
        return
    if layout is None:
        axes = 'D, H, W' if spatial_dims == 3 else 'H, W'
        layout = f'(N, C, {axes})'
    raise ValueError(
        f'{owner} was built with spatial_dims={spatial_dims} and takes {layout} inputs, got '
        f'shape {tuple(x.shape)} ({x.dim()} axes). Set {key} to the dimensionality of the '
        'data (2: images, 3: volumes), the same in every part of the model.')


def spatial_dims_conflict(parts: Mapping[str, Optional[nn.Module]], owner: str) -> None:
    """Raise a ``ValueError`` when the parts that declare ``spatial_dims`` disagree.

    Args:
        parts: config key of each part (``'model.backbone'``) -> the built module or None;
            modules without a ``spatial_dims`` attribute (embedding heads, plain
            preprocessors) are dimension-free and skipped.
        owner: the model class name for the message.
    """
    found = {key: getattr(mod, 'spatial_dims', None) for key, mod in parts.items()
             if mod is not None}
    found = {k: int(v) for k, v in found.items() if isinstance(v, int)}
    if len(set(found.values())) > 1:
        listed = ', '.join(f'{k}.spatial_dims={v}' for k, v in found.items())
        raise ValueError(
            f'{owner}: the parts disagree on spatial_dims: {listed}. Set spatial_dims to the '
            'same value (2 for images, 3 for volumes) in each of these config keys.')


def adaptive_avg_pool_cls(spatial_dims: int) -> Type[nn.Module]:
    """``nn.AdaptiveAvgPool2d`` or ``nn.AdaptiveAvgPool3d``."""
    return _POOL[spatial_dims]


def conv_cls(spatial_dims: int) -> Type[nn.Module]:
    """``nn.Conv2d`` or ``nn.Conv3d``."""
    return _CONV[spatial_dims]


def instance_norm_cls(spatial_dims: int) -> Type[nn.Module]:
    """``nn.InstanceNorm2d`` or ``nn.InstanceNorm3d``."""
    return _INORM[spatial_dims]
