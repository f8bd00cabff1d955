"""One optimizer wrapper per group of sub-modules (generator / discriminator)."""
from typing import Dict, List, Optional, Union

from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from torch import nn

from dira_mm.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MultiOptimWrapperConstructor:
    """Builds an ``OptimWrapperDict`` from per-name optimizer configs.

    mmengine has no multi-optimizer constructor (mmagic has one; this is our own, small
    version). Each entry of the config is an ordinary ``optim_wrapper`` config plus
    ``modules``: the names of the model's children it optimises (default: the entry's
    own name). Example::

        optim_wrapper = dict(
            constructor='MultiOptimWrapperConstructor',
            generator=dict(type='OptimWrapper', modules='ssl',
                           optimizer=dict(type='SGD', lr=0.03, momentum=0.9,
                                          weight_decay=1e-4)),
            discriminator=dict(type='OptimWrapper', modules='discriminator',
                               optimizer=dict(type='Adam', lr=2e-4, betas=(0.5, 0.999))))

    Args:
        optim_wrapper_cfg: the dict above (without ``constructor``).
        paramwise_cfg: unused here; give ``paramwise_cfg`` inside each entry.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        if not isinstance(optim_wrapper_cfg, dict) or not optim_wrapper_cfg:
            raise TypeError('MultiOptimWrapperConstructor: optim_wrapper needs one entry per '
                            'optimizer, e.g. generator=dict(...), discriminator=dict(...)')
        for name, cfg in optim_wrapper_cfg.items():
            if not isinstance(cfg, dict) or 'optimizer' not in cfg:
                raise TypeError(f'MultiOptimWrapperConstructor: optim_wrapper.{name} must be a '
                                'dict with an "optimizer" key')
        self.optim_wrapper_cfg = optim_wrapper_cfg

    @staticmethod
    def _collect(model: nn.Module, names: Union[str, List[str]], key: str) -> nn.Module:
        names = [names] if isinstance(names, str) else list(names)
        modules = {}
        for n in names:
            child = getattr(model, n, None)
            if child is None:
                raise KeyError(f'optim_wrapper.{key}.modules names "{n}", which the model '
                               f'({type(model).__name__}) does not have; its children are '
                               f'{[c for c, _ in model.named_children()]}')
            while is_model_wrapper(child):
                child = child.module
            modules[n] = child
        return modules[names[0]] if len(modules) == 1 else nn.ModuleDict(modules)

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        while is_model_wrapper(model):
            model = model.module
        wrappers: Dict = {}
        for name, cfg in self.optim_wrapper_cfg.items():
            cfg = dict(cfg)
            modules = cfg.pop('modules', name)
            paramwise = cfg.pop('paramwise_cfg', None)
            sub = self._collect(model, modules, name)
            wrappers[name] = DefaultOptimWrapperConstructor(cfg, paramwise)(sub)
        return OptimWrapperDict(**wrappers)
