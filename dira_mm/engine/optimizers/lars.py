"""LARS: layer-wise adaptive rate scaling, as Barlow Twins uses it."""
from typing import Callable, Iterable, Optional, Tuple, Union

import torch
from torch import Tensor
from torch.optim import Optimizer

from dira_mm.registry import OPTIMIZERS

_Params = Union[Iterable[Tensor], Iterable[dict]]


@OPTIMIZERS.register_module()
class LARS(Optimizer):
    """SGD with momentum and a per-tensor trust ratio (You et al., 2017).

    Written here because neither PyTorch nor any of our dependencies (mmengine,
    timm, ...) ships a maintained LARS. It follows the optimizer of the official
    Barlow Twins code (facebookresearch/barlowtwins). For each parameter ``p``
    with gradient ``g``:

    - not excluded: ``g <- g + weight_decay * p``, then ``g <- q * g`` with the
      trust ratio ``q = eta * ||p|| / ||g||`` (``q = 1`` if either norm is 0);
    - excluded: ``g`` is used as it is (no weight decay, no trust ratio);
    - ``mu <- momentum * mu + g`` and ``p <- p - lr' * mu``.

    Which parameters are excluded: a param group's ``lars_exclude`` (True or
    False) decides if given; otherwise, as in the official code, every 1-D
    parameter (biases, norm weights) when ``exclude_1d`` is True.

    ``lr'`` is the group's ``lr``, times ``lr_1d_mult`` for the parameters that
    the 1-D rule excludes. Barlow Twins trains those at 0.0048 and the others at
    0.2 under one schedule, which mmengine's ``paramwise_cfg`` cannot express
    (it has no lr multiplier for norm layers). ``lr=0.2, lr_1d_mult=0.024``
    reproduces it, and the schedulers keep scaling both rates together::

        optimizer=dict(type='LARS', lr=0.2, momentum=0.9, weight_decay=1.5e-6,
                       eta=0.001, lr_1d_mult=0.0048 / 0.2)

    Every argument except ``params`` may also be set per param group, e.g.
    ``paramwise_cfg=dict(custom_keys={'head': dict(lars_exclude=True)})``.

    Args:
        params: parameters or param-group dicts to optimise.
        lr: learning rate (of the non-excluded parameters).
        momentum: momentum factor in [0, 1). Defaults to 0.9.
        weight_decay: L2 penalty added to the gradient of the non-excluded
            parameters. Defaults to 0.
        eta: trust coefficient of the trust ratio. Defaults to 0.001.
        exclude_1d: exclude 1-D parameters (the official rule). Defaults to True.
        lr_1d_mult: lr multiplier of the parameters the 1-D rule excludes; not
            applied where ``lars_exclude`` decides. Defaults to 1.
        lars_exclude: force exclusion (True) or inclusion (False) of every
            parameter of a group; None uses the 1-D rule. Defaults to None.
    """

    def __init__(self,
                 params: _Params,
                 lr: float,
                 momentum: float = 0.9,
                 weight_decay: float = 0.0,
                 eta: float = 0.001,
                 exclude_1d: bool = True,
                 lr_1d_mult: float = 1.0,
                 lars_exclude: Optional[bool] = None) -> None:
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta,
                        exclude_1d=exclude_1d, lr_1d_mult=lr_1d_mult,
                        lars_exclude=lars_exclude)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        """Adds a group (filled with the defaults) after checking its settings."""
        super().add_param_group(param_group)
        self._check_group(self.param_groups[-1])

    @staticmethod
    def _check_group(group: dict) -> None:
        for key in ('lr', 'weight_decay', 'lr_1d_mult'):
            value = group[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f'LARS: {key} must be a number >= 0, got {value!r}')
        momentum, eta = group['momentum'], group['eta']
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or \
                not 0 <= momentum < 1:
            raise ValueError(f'LARS: momentum must be in [0, 1), got {momentum!r}')
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or eta <= 0:
            raise ValueError(f'LARS: eta must be a number > 0, got {eta!r}')
        if not isinstance(group['exclude_1d'], bool):
            raise ValueError(f'LARS: exclude_1d must be True or False, '
                             f'got {group["exclude_1d"]!r}')
        if group['lars_exclude'] not in (None, True, False):
            raise ValueError('LARS: lars_exclude must be None, True or False, got '
                             f'{group["lars_exclude"]!r}')

    @staticmethod
    def _exclusion(group: dict, param: Tensor) -> Tuple[bool, float]:
        """Whether ``param`` skips weight decay and trust ratio, and its lr factor."""
        if group['lars_exclude'] is not None:
            return group['lars_exclude'], 1.0
        if group['exclude_1d'] and param.ndim == 1:
            return True, group['lr_1d_mult']
        return False, 1.0

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], float]] = None) -> Optional[float]:
        """Performs one update; ``closure`` re-evaluates the loss if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group['params']:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError('LARS does not support sparse gradients')
                excluded, lr_mult = self._exclusion(group, p)
                d_p = p.grad
                if not excluded:
                    if group['weight_decay'] != 0:
                        d_p = d_p.add(p, alpha=group['weight_decay'])
                    p_norm = torch.linalg.vector_norm(p)
                    g_norm = torch.linalg.vector_norm(d_p)
                    trust = torch.where((p_norm > 0) & (g_norm > 0),
                                        group['eta'] * p_norm / g_norm,
                                        torch.ones_like(p_norm))
                    d_p = d_p.mul(trust)
                state = self.state[p]
                if 'momentum_buffer' not in state:
                    state['momentum_buffer'] = torch.zeros_like(p)
                buf = state['momentum_buffer']
                buf.mul_(group['momentum']).add_(d_p)
                p.add_(buf, alpha=-group['lr'] * lr_mult)
        return loss
