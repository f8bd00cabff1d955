"""Run a loss in float32 with autocast off, whatever precision the forward ran in."""
import functools
from contextlib import ExitStack
from typing import Any, Callable

import torch
from torch import Tensor

__all__ = ['run_in_float32', 'autocast_enabled']

_HALF = (torch.float16, torch.bfloat16)
_DEVICES = ('cpu', 'cuda')


def autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` ('cpu' or 'cuda'), on any torch >= 2.1."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 takes no device argument
        return (torch.is_autocast_cpu_enabled() if device_type == 'cpu'
                else torch.is_autocast_enabled())


def _float32(x: Any) -> Any:
    if isinstance(x, Tensor) and x.dtype in _HALF:
        return x.float()
    if isinstance(x, (list, tuple)):
        return type(x)(_float32(v) for v in x)
    return x


def run_in_float32(fn: Callable) -> Callable:
    """Decorate a loss: half-precision tensor arguments become float32, autocast is off.

    Under AMP the matmuls before a loss run in float16/bfloat16; the loss itself must not
    (mmpretrain and mmdet force their losses to float32 the same way). CPU autocast keeps
    ``mse_loss`` and ``cross_entropy`` in float32 but casts ``mm`` (the Barlow Twins
    cross-correlation) to bfloat16 and leaves ``cosine_similarity`` and the LSGAN
    ``(pred - label) ** 2`` in the input's bfloat16, where a mean over a batch keeps
    about 3 significant digits. Without autocast the decorator changes nothing for
    float32 inputs.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        args = tuple(_float32(a) for a in args)
        kwargs = {k: _float32(v) for k, v in kwargs.items()}
        with ExitStack() as stack:
            for device in _DEVICES:
                if autocast_enabled(device):
                    stack.enter_context(torch.autocast(device, enabled=False))
            return fn(*args, **kwargs)

    return wrapper
