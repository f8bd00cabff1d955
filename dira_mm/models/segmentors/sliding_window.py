"""Whole-input or sliding-window inference of a segmentor (``test_cfg``), by MONAI.

Whole CT volumes are larger than the patches a 3-D U-Net is trained on (and their sizes are
rarely multiples of its total stride), so validation and test run MONAI's
``sliding_window_inference``: windows of ``roi_size`` overlapping by ``overlap``, batched
``sw_batch_size`` at a time, blended by a Gaussian (``sigma_scale`` of the window per axis)
or a constant weight, the input padded where it is smaller than a window. Nothing is
hand-written here beyond checking the configuration against the backbone.
"""
from typing import Callable, Optional

from torch import Tensor

__all__ = ['check_test_cfg', 'sliding_window_logits', 'TEST_MODES']

TEST_MODES = ('whole', 'slide')
_SLIDE_DEFAULTS = dict(overlap=0.5, sw_batch_size=4, blend_mode='gaussian', sigma_scale=0.125,
                       padding_mode='constant')
_BLEND = ('gaussian', 'constant')


def check_test_cfg(test_cfg: Optional[dict], backbone, owner: str) -> dict:
    """``test_cfg`` completed with the defaults and checked against ``backbone``.

    Raises:
        ValueError: an unknown mode or key, a ``roi_size`` of the wrong length or not a
            multiple of ``backbone.input_multiple``, an overlap outside [0, 1), a blend mode
            MONAI does not have; each message names ``model.test_cfg.<key>``.
    """
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
    if roi is None or len(roi) != dims:
        raise ValueError(f"{owner}: model.test_cfg.roi_size must give {dims} window sizes "
                         f"for mode='slide' (the backbone is {dims}-D), got {roi!r}.")
    roi = tuple(int(r) for r in roi)
    multiple = tuple(int(m) for m in backbone.input_multiple)
    if any(r < 1 or r % m for r, m in zip(roi, multiple)):
        raise ValueError(f'{owner}: model.test_cfg.roi_size={roi} must be positive multiples '
                         f'of the backbone\'s input_multiple {multiple}.')
    cfg['roi_size'] = roi
    if not 0.0 <= float(cfg['overlap']) < 1.0:
        raise ValueError(f'{owner}: model.test_cfg.overlap must be in [0, 1), got '
                         f'{cfg["overlap"]}.')
    if cfg['blend_mode'] not in _BLEND:
        raise ValueError(f'{owner}: model.test_cfg.blend_mode must be one of {_BLEND}, got '
                         f'{cfg["blend_mode"]!r}.')
    if int(cfg['sw_batch_size']) < 1:
        raise ValueError(f'{owner}: model.test_cfg.sw_batch_size must be >= 1, got '
                         f'{cfg["sw_batch_size"]}.')
    return cfg


def sliding_window_logits(predictor: Callable[[Tensor], Tensor], inputs: Tensor,
                          test_cfg: dict) -> Tensor:
    """``predictor`` over windows of ``inputs`` ``(N, C, *spatial)``, blended: MONAI's
    ``sliding_window_inference`` with the options of a checked ``test_cfg``."""
    from monai.inferers import sliding_window_inference

    out = sliding_window_inference(
        inputs, roi_size=tuple(test_cfg['roi_size']),
        sw_batch_size=int(test_cfg['sw_batch_size']), predictor=predictor,
        overlap=float(test_cfg['overlap']), mode=test_cfg['blend_mode'],
        sigma_scale=float(test_cfg['sigma_scale']), padding_mode=test_cfg['padding_mode'])
    return out.as_tensor() if hasattr(out, 'as_tensor') else out

