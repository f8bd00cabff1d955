"""Small helpers shared by algorithms and hooks."""
from contextlib import contextmanager
from typing import Iterator

import torch
from mmengine.model import is_model_wrapper
from torch import nn

from dira_mm.utils.checkpoint import get_rng_state, set_rng_state


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a (MM)DistributedDataParallel wrapper, or the module itself."""
    while is_model_wrapper(module):
        module = module.module
    return module


def get_ssl_algorithm(model: nn.Module) -> nn.Module:
    """The discriminative algorithm of a runner's model: ``model.ssl`` for DiRA, else
    the model itself (a plain SSL algorithm)."""
    model = unwrap(model)
    ssl = getattr(model, 'ssl', None)
    return unwrap(ssl) if ssl is not None else model


@contextmanager
def preserve_training_state(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no gradients inside; RNG states and every module's mode put back after.

    Each module's own ``training`` flag is restored (not ``model.train(flag)``), so modules
    that training keeps in eval mode on purpose stay so. In eval mode BatchNorm reads its
    running statistics and updates none of them.
    """
    rng = get_rng_state()
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        for module, mode in modes:
            module.training = mode
        set_rng_state(rng)
