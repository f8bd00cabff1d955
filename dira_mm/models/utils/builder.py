"""Build a sub-module from a config, as every composite model of dira_mm does."""
from typing import Optional, Union

from torch import nn

from dira_mm.registry import MODELS

__all__ = ['build_module']


def build_module(cfg: Optional[Union[dict, nn.Module]]) -> Optional[nn.Module]:
    """Build a sub-module from a config dict; pass modules and None through."""
    if cfg is None or isinstance(cfg, nn.Module):
        return cfg
    return MODELS.build(cfg)
