"""Mixed precision on any device: bfloat16 autocast on CPU, mmengine's AMP on CUDA."""
import logging
import warnings
from contextlib import contextmanager
from typing import Optional, Union

import torch
from mmengine.device import get_device
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from torch import nn

from dira_mm.registry import OPTIM_WRAPPERS

__all__ = ['AutoAmpOptimWrapper', 'enable_amp']

_SCALED_DEVICES = ('cuda', 'npu', 'mlu', 'musa')


@OPTIM_WRAPPERS.register_module()
class AutoAmpOptimWrapper(AmpOptimWrapper):
    """``AmpOptimWrapper`` that also runs on CPU, so the AMP path is tested in CI.

    mmengine 0.10.7's ``AmpOptimWrapper`` asserts a CUDA/NPU/MLU/MUSA device. This wrapper
    picks the device type of the run (``mmengine.device.get_device()``) and:

    - on CUDA (and the other accelerators): is mmengine's ``AmpOptimWrapper`` unchanged:
      autocast in ``dtype`` (default float16) with a ``GradScaler`` (``loss_scale``);
    - on CPU: autocasts to bfloat16 (``torch.autocast('cpu', dtype=torch.bfloat16)``) and
      scales no loss: bfloat16 has float32's exponent range, so gradients do not
      underflow; backward, gradient clipping and the step are ``OptimWrapper``'s.
      float16 on CPU is refused (CPU autocast is meant for bfloat16 and, without a
      scaler, float16 gradients underflow).

    The state dict is the optimizer's, plus ``loss_scaler`` where one exists. A CUDA
    checkpoint resumes on CPU (its loss-scaler state is dropped with a warning) and a
    CPU one on CUDA (the scaler starts fresh, as mmengine's does).

    Args:
        loss_scale: ``GradScaler`` setting on CUDA (``'dynamic'``, a float or a dict);
            unused on CPU (a value other than ``'dynamic'`` is logged as ignored).
        dtype: autocast dtype, ``'float16'`` / ``'bfloat16'`` (or a ``torch.dtype``).
            Default: float16 on CUDA, bfloat16 on CPU.
        device_type: override the device type (``'cpu'`` / ``'cuda'``); default the
            run's device.
        **kwargs: ``OptimWrapper`` arguments (optimizer, clip_grad, accumulative_counts).
    """

    def __init__(self,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Optional[Union[str, torch.dtype]] = None,
                 use_fsdp: bool = False,
                 device_type: Optional[str] = None,
                 **kwargs) -> None:
        self.device_type = device_type or get_device()
        if self.device_type in _SCALED_DEVICES:
            with warnings.catch_warnings():
                # mmengine builds torch.cuda.amp.GradScaler, deprecated in torch >= 2.4
                warnings.filterwarnings('ignore', category=FutureWarning,
                                        message=r'.*torch\.cuda\.amp\.GradScaler')
                super().__init__(loss_scale=loss_scale, dtype=dtype, use_fsdp=use_fsdp,
                                 **kwargs)
            return
        if self.device_type != 'cpu':
            raise ValueError(f'AutoAmpOptimWrapper: mixed precision on {self.device_type!r} '
                             'is not supported; train without --amp (or optim_wrapper.type='
                             "'OptimWrapper') on this device.")
        if isinstance(dtype, str):
            if dtype not in self.valid_dtypes:
                raise ValueError(f'AutoAmpOptimWrapper: dtype must be one of '
                                 f'{self.valid_dtypes}, got {dtype!r}')
            dtype = getattr(torch, dtype)
        dtype = torch.bfloat16 if dtype is None else dtype
        if dtype != torch.bfloat16:
            raise ValueError(
                f'AutoAmpOptimWrapper: {dtype} autocast is not supported on CPU; use '
                "--amp-dtype bfloat16 (or optim_wrapper dtype='bfloat16'), or run on a CUDA "
                'device for float16 with loss scaling.')
        if use_fsdp:
            raise ValueError('AutoAmpOptimWrapper: use_fsdp needs a CUDA device.')
        OptimWrapper.__init__(self, **kwargs)
        if loss_scale != 'dynamic':
            print_log(f'AutoAmpOptimWrapper: loss_scale={loss_scale!r} is ignored on CPU: '
                      'bfloat16 needs no loss scaling.', logger='current',
                      level=logging.WARNING)
        self._scale_update_param = None
        self.loss_scaler = None
        self.cast_dtype = dtype

    @property
    def scales_loss(self) -> bool:
        """Whether a ``GradScaler`` scales the loss (CUDA) or not (CPU bfloat16)."""
        return self.loss_scaler is not None

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        """Backward of the (scaled, on CUDA) loss."""
        if self.scales_loss:
            super().backward(loss, **kwargs)
        else:
            OptimWrapper.backward(self, loss, **kwargs)

    def step(self, **kwargs) -> None:
        """Step (through the scaler on CUDA); gradient clipping as configured."""
        if self.scales_loss:
            super().step(**kwargs)
        else:
            OptimWrapper.step(self, **kwargs)

    def state_dict(self) -> dict:
        """The optimizer state (+ ``loss_scaler`` on CUDA)."""
        if self.scales_loss:
            return super().state_dict()
        return OptimWrapper.state_dict(self)

    def load_state_dict(self, state_dict: dict) -> None:
        """Load the optimizer state; a ``loss_scaler`` entry needs a scaler to go to."""
        if self.scales_loss:
            super().load_state_dict(state_dict)
            return
        state_dict = dict(state_dict)
        if state_dict.pop('loss_scaler', None) is not None:
            print_log('AutoAmpOptimWrapper: the checkpoint has a loss-scaler state (a CUDA '
                      'float16 run); it is dropped: bfloat16 on CPU scales no loss.',
                      logger='current', level=logging.WARNING)
        OptimWrapper.load_state_dict(self, state_dict)

    @contextmanager
    def optim_context(self, model: nn.Module):
        """Autocast on the wrapper's device type and dtype (and no_sync when accumulating)."""
        if self.scales_loss:
            with super().optim_context(model):
                yield
            return
        with OptimWrapper.optim_context(self, model), \
                torch.autocast(device_type='cpu', dtype=self.cast_dtype):
            yield

    def __repr__(self) -> str:
        return (f'{super().__repr__()}\ndevice_type: {self.device_type}, '
                f'dtype: {self.cast_dtype}, loss scaling: {self.scales_loss}')


def _is_wrapper_cfg(cfg) -> bool:
    return isinstance(cfg, dict) and 'optimizer' in cfg


def enable_amp(cfg, dtype: Optional[str] = None) -> None:
    """Switch the optimizer wrapper(s) of ``cfg`` to ``AutoAmpOptimWrapper``.

    ``AutoAmpOptimWrapper`` is mmengine's ``AmpOptimWrapper`` (dynamic loss scale) on CUDA
    and bfloat16 autocast without scaling on CPU. A single ``optim_wrapper`` gets
    ``type='AutoAmpOptimWrapper'``; a multi-optimizer config
    (``constructor=...`` with sub-wrapper dicts such as ``generator``/``discriminator``)
    gets it on each sub-wrapper.
    """
    optim_wrapper = cfg.get('optim_wrapper')
    if optim_wrapper is None:
        raise ValueError(f'--amp: config {cfg.filename} has no optim_wrapper to switch.')
    if 'optimizer' in optim_wrapper or 'constructor' not in optim_wrapper:
        targets = {'optim_wrapper': optim_wrapper}
    else:
        targets = {f'optim_wrapper.{k}': v for k, v in optim_wrapper.items()
                   if _is_wrapper_cfg(v)}
        if not targets:
            raise ValueError('--amp: optim_wrapper has a constructor but no sub-wrapper '
                             'dicts (with an optimizer) to switch.')
    for key, wrapper in targets.items():
        wrapper_type = wrapper.get('type', 'OptimWrapper')
        wrapper_type = getattr(wrapper_type, '__name__', wrapper_type)
        if wrapper_type not in ('OptimWrapper', 'AmpOptimWrapper', 'AutoAmpOptimWrapper'):
            raise ValueError(f'--amp: {key}.type is {wrapper_type!r}; only OptimWrapper can be '
                             'switched to AutoAmpOptimWrapper. Set it in the config instead.')
        wrapper['type'] = 'AutoAmpOptimWrapper'
        wrapper.setdefault('loss_scale', 'dynamic')
        if dtype is not None:
            wrapper['dtype'] = dtype
