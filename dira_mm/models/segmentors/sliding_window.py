"""Whole-input or sliding-window inference of a segmentor (``test_cfg``), by MONAI.

Whole CT volumes are larger than the patches a 3-D U-Net is trained on (and their sizes are
rarely multiples of its total stride), so validation and test run MONAI's
``sliding_window_inference``: windows of ``roi_size`` overlapping by ``overlap``, batched
``sw_batch_size`` at a time, blended by a Gaussian (``sigma_scale`` of the window per axis)
or a constant weight, the input padded where it is smaller than a window. Nothing is
hand-written here beyond checking the configuration against the backbone.

With ``GenesisUNet3D(official_batchnorm=True)`` (the official ``ContBatchNorm3d``, batch
statistics in ``eval()`` too) the sliding-window output depends on ``sw_batch_size`` and on
which windows share a batch, so a warning is logged for that combination.
"""
import logging
from numbers import Integral, Real
from typing import Callable, Optional, Sequence

from mmengine.logging import print_log
from torch import Tensor

__all__ = ['check_test_cfg', 'sliding_window_logits', 'TEST_MODES']

TEST_MODES = ('whole', 'slide')
_SLIDE_DEFAULTS = dict(overlap=0.5, sw_batch_size=4, blend_mode='gaussian', sigma_scale=0.125,
                       padding_mode='constant')
_BLEND = ('gaussian', 'constant')


def check_test_cfg(test_cfg: Optional[dict], backbone, owner: str) -> dict:
    """``test_cfg`` completed with the defaults and checked against ``backbone``.

    ``roi_size`` is one int (every axis, as MONAI allows) or ``spatial_dims`` ints;
    ``sigma_scale`` one positive number or ``spatial_dims`` of them (per axis).

    Raises:
        ValueError: an unknown mode or key, a ``roi_size`` of the wrong length or not a
            multiple of ``backbone.input_multiple``, an overlap outside [0, 1), a blend or
            padding mode MONAI does not have, a ``sigma_scale`` that is not positive numbers;
            each message names ``model.test_cfg.<key>``.
    """
    from monai.utils import PytorchPadMode
    cfg = dict(test_cfg or dict(mode='whole'))
    mode = cfg.setdefault('mode', 'whole')
    if mode not in TEST_MODES:
        raise ValueError(f"{owner}: model.test_cfg.mode must be one of {TEST_MODES}, got "
                         f'{mode!r}.')
    if mode == 'whole':
        extra = sorted(set(cfg) - {'mode'})
        if extra:
            raise ValueError(f"{owner}: model.test_cfg has {extra} but mode='whole' takes no "
                             "options; set mode='slide' for sliding-window inference.")
        return cfg
    known = {'mode', 'roi_size'} | set(_SLIDE_DEFAULTS)
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ValueError(f'{owner}: model.test_cfg has unknown keys {unknown}; '
                         f'mode=\'slide\' takes {sorted(known)}.')
    cfg = dict(_SLIDE_DEFAULTS, **cfg)
    dims = int(backbone.spatial_dims)
    roi = cfg.get('roi_size')
    if isinstance(roi, Integral) and not isinstance(roi, bool):
        roi = (int(roi), ) * dims  # one size for every axis, as MONAI's int roi_size
    if not (_is_sequence(roi) and len(roi) == dims and all(
            isinstance(r, Integral) and not isinstance(r, bool) for r in roi)):
        raise ValueError(f"{owner}: model.test_cfg.roi_size must give {dims} window sizes "
                         f"(ints) or one int for mode='slide' (the backbone is {dims}-D), "
                         f'got {roi!r}.')
    roi = tuple(int(r) for r in roi)
    multiple = tuple(int(m) for m in backbone.input_multiple)
    if any(r < 1 or r % m for r, m in zip(roi, multiple)):
        raise ValueError(f'{owner}: model.test_cfg.roi_size={roi} must be positive multiples '
                         f'of the backbone\'s input_multiple {multiple}.')
    cfg['roi_size'] = roi
    overlap = cfg['overlap']
    if not (_is_number(overlap) and 0.0 <= float(overlap) < 1.0):
        raise ValueError(f'{owner}: model.test_cfg.overlap must be in [0, 1) (one number), got '
                         f'{overlap!r}.')
    if cfg['blend_mode'] not in _BLEND:
        raise ValueError(f'{owner}: model.test_cfg.blend_mode must be one of {_BLEND}, got '
                         f'{cfg["blend_mode"]!r}.')
    sigma = cfg['sigma_scale']
    per_axis = _is_sequence(sigma)
    sigmas = tuple(sigma) if per_axis else (sigma, )
    if len(sigmas) != (dims if per_axis else 1) or \
            not all(_is_number(v) and v > 0 for v in sigmas):
        raise ValueError(f'{owner}: model.test_cfg.sigma_scale must be a positive number or '
                         f'{dims} of them (one per axis), got {sigma!r}.')
    cfg['sigma_scale'] = tuple(float(v) for v in sigmas) if per_axis else float(sigma)
    pads = tuple(m.value for m in PytorchPadMode)
    if cfg['padding_mode'] not in pads:
        raise ValueError(f'{owner}: model.test_cfg.padding_mode must be one of {pads} '
                         f'(MONAI\'s), got {cfg["padding_mode"]!r}.')
    batch = cfg['sw_batch_size']
    if not (isinstance(batch, Integral) and not isinstance(batch, bool) and batch >= 1):
        raise ValueError(f'{owner}: model.test_cfg.sw_batch_size must be an int >= 1, got '
                         f'{batch!r}.')
    if _official_batch_statistics(backbone):
        print_log(f"{owner}: model.test_cfg.mode='slide' with a backbone whose BatchNorm "
                  'uses batch statistics in eval() (official_batchnorm=True): the outputs '
                  'depend on sw_batch_size and on which windows share a batch.',
                  logger='current', level=logging.WARNING)
    return cfg


def _is_sequence(value) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _official_batch_statistics(backbone) -> bool:
    """Whether ``backbone`` has the official ``ContBatchNorm3d`` (batch statistics always)."""
    from ..backbones.genesis_unet3d import ContBatchNorm3d
    return any(isinstance(m, ContBatchNorm3d) for m in backbone.modules())


def sliding_window_logits(predictor: Callable[[Tensor], Tensor], inputs: Tensor,
                          test_cfg: dict) -> Tensor:
    """``predictor`` over windows of ``inputs`` ``(N, C, *spatial)``, blended: MONAI's
    ``sliding_window_inference`` with the options of a checked ``test_cfg``."""
    from monai.inferers import sliding_window_inference

    out = sliding_window_inference(
        inputs, roi_size=tuple(test_cfg['roi_size']),
        sw_batch_size=int(test_cfg['sw_batch_size']), predictor=predictor,
        overlap=float(test_cfg['overlap']), mode=test_cfg['blend_mode'],
        sigma_scale=test_cfg['sigma_scale'], padding_mode=test_cfg['padding_mode'])
    return out.as_tensor() if hasattr(out, 'as_tensor') else out

