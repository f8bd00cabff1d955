"""Small helpers shared by algorithms and hooks."""
from torch import nn
from mmengine.model import is_model_wrapper


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
