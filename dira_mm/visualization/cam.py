"""Class activation maps of a classifier: CAM (Zhou et al., CVPR 2016) and Grad-CAM (Selvaraju
et al., ICCV 2017), for weakly supervised localisation.

The DiRA benchmark's classifier is an encoder, global average pooling and one linear layer,
which is exactly the architecture CAM was defined for: the map of class ``k`` is
``M_k(x, y) = sum_c W[k, c] A_c(x, y)`` over the deepest feature map ``A``, and its spatial
mean plus the bias *is* the class logit, so the map splits the logit over the image with
nothing approximated. Grad-CAM weighs a (possibly shallower) layer's channels by the mean
gradient of the logit instead; on the deepest map of such a model it equals
``ReLU(M_k) / (h w)``. Both are a few lines on top of the model, written here rather than
pulling in a CAM package and its dependencies.

Maps are returned raw (signed, in logit units) at the feature resolution or bilinearly
resized to the input; :func:`normalize_cams` maps them to ``[0, 1]`` per image and class for
display.

2-D only: the maps, resizing and overlays are for images ``(B, C, H, W)``. A classifier
on volumes (``spatial_dims=3``) is refused with an error rather than mis-read.
"""
from contextlib import contextmanager
from typing import Iterator, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

__all__ = ['class_activation_maps', 'grad_cams', 'normalize_cams', 'resize_cams']


def _check_classifier(model: nn.Module, what: str) -> None:
    if not (hasattr(model, 'feature_map') and isinstance(getattr(model, 'head', None),
                                                         nn.Linear)):
        raise TypeError(
            f'{what} needs a classifier with `feature_map(inputs)` and a linear `head` '
            f'on the pooled map (e.g. MultiLabelClassifier); got {type(model).__name__}.')


def _check_2d(model: nn.Module, inputs: Tensor, what: str) -> None:
    dims = getattr(model, 'spatial_dims', 2)
    if dims != 2 or inputs.dim() != 4:
        raise ValueError(
            f'{what} is 2-D only: it takes a classifier on images (spatial_dims=2) and '
            f'inputs (B, C, H, W); got spatial_dims={dims} and inputs of shape '
            f'{tuple(inputs.shape)}. Class activation maps of volumes are not implemented.')


def _check_classes(classes: Optional[Sequence[int]], num_classes: int) -> list:
    classes = list(range(num_classes)) if classes is None else [int(c) for c in classes]
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad or not classes:
        raise ValueError(f'Class indices {bad or classes} are not in [0, {num_classes}).')
    return classes


def resize_cams(maps: Tensor, size: Tuple[int, int]) -> Tensor:
    """Bilinear resize of ``(B, K, h, w)`` maps to ``size`` (pixel centres aligned)."""
    return F.interpolate(maps, size=tuple(size), mode='bilinear', align_corners=False)


@torch.no_grad()
def class_activation_maps(model: nn.Module,
                          inputs: Tensor,
                          classes: Optional[Sequence[int]] = None,
                          upsample: bool = True) -> Tuple[Tensor, Tensor]:
    """CAM of ``classes`` for normalised ``inputs`` ``(B, C, H, W)``.

    Args:
        model: a classifier with ``feature_map`` and a linear ``head`` (in eval mode).
        inputs: images after the model's data preprocessor.
        classes: class indices (default: all).
        upsample: resize the maps to the input size (else the feature resolution).

    Returns:
        ``(maps (B, len(classes), H, W), logits (B, num_classes))``; the feature-resolution
        map's spatial mean plus ``head.bias`` equals the logit.
    """
    _check_classifier(model, 'class_activation_maps')
    _check_2d(model, inputs, 'class_activation_maps')
    classes = _check_classes(classes, model.head.out_features)
    feats = model.feature_map(inputs).float()
    weight = model.head.weight.float()
    logits = F.linear(feats.flatten(2).mean(2), weight, model.head.bias.float()
                      if model.head.bias is not None else None)
    maps = torch.einsum('kc,bchw->bkhw', weight[classes], feats)
    if upsample:
        maps = resize_cams(maps, inputs.shape[-2:])
    return maps, logits


@contextmanager
def _grad_through_backbone(model: nn.Module) -> Iterator[None]:
    """Let autograd run through a linear probe's frozen backbone (weights stay frozen)."""
    probe = getattr(model, 'linear_probe', False)
    if probe:
        model.linear_probe = False
    try:
        yield
    finally:
        if probe:
            model.linear_probe = probe


def grad_cams(model: nn.Module,
              inputs: Tensor,
              classes: Optional[Sequence[int]] = None,
              target_layer: Optional[str] = None,
              upsample: bool = True) -> Tuple[Tensor, Tensor]:
    """Grad-CAM of ``classes`` at ``target_layer`` for normalised ``inputs``.

    Args:
        model: a classifier with ``feature_map`` and a linear ``head`` (in eval mode).
        inputs: images after the model's data preprocessor.
        classes: class indices (default: all).
        target_layer: name of the module (as in ``model.named_modules()``) whose output is
            weighted, e.g. ``'backbone.encoder.layer3'``; None: the deepest feature map.
        upsample: resize the maps to the input size.

    Returns:
        ``(maps (B, len(classes), H, W), logits (B, num_classes))``, maps >= 0.
    """
    _check_classifier(model, 'grad_cams')
    _check_2d(model, inputs, 'grad_cams')
    classes = _check_classes(classes, model.head.out_features)
    captured = {}
    handle = None
    if target_layer is not None:
        modules = dict(model.named_modules())
        if target_layer not in modules:
            near = [n for n in modules if n and target_layer.split('.')[-1] in n][:8]
            raise KeyError(f'target_layer "{target_layer}" is not a module of '
                           f'{type(model).__name__}; names like it: {near}.')

        def keep(_module, _inputs, output):
            output = output[-1] if isinstance(output, (list, tuple)) else output
            captured['act'] = output
            return None

        handle = modules[target_layer].register_forward_hook(keep)
    try:
        with torch.enable_grad(), _grad_through_backbone(model):
            inputs = inputs.detach().requires_grad_(True)  # a graph even if all is frozen
            feats = model.feature_map(inputs)
            act = captured.get('act', feats)
            logits = model.head(feats.flatten(2).mean(2))
            maps = []
            for k in classes:
                (grad, ) = torch.autograd.grad(logits[:, k].sum(), act, retain_graph=True)
                alpha = grad.float().flatten(2).mean(2)  # (B, C)
                maps.append(F.relu(torch.einsum('bc,bchw->bhw', alpha, act.float())))
    finally:
        if handle is not None:
            handle.remove()
    maps = torch.stack(maps, dim=1).detach()
    if upsample:
        maps = resize_cams(maps, inputs.shape[-2:])
    return maps, logits.detach().float()


def normalize_cams(maps: Tensor, positive_only: bool = True, eps: float = 1e-8) -> Tensor:
    """Scale each ``(H, W)`` map to ``[0, 1]`` (min-max; negative evidence clipped first)."""
    if positive_only:
        maps = maps.clamp(min=0)
    flat = maps.flatten(-2)
    low = flat.min(-1, keepdim=True).values.unsqueeze(-1)
    high = flat.max(-1, keepdim=True).values.unsqueeze(-1)
    return (maps - low) / (high - low).clamp(min=eps)
