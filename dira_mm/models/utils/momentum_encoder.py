"""A momentum (EMA) copy of a network, updated from outside by a hook."""
import copy

import torch
from torch import nn


class MomentumEncoder(nn.Module):
    """Keeps ``module`` as an EMA of a source network: ``p_k = m p_k + (1 - m) p_q``.

    Unlike mmengine's ``ExponentialMovingAverage`` (whose ``momentum`` is the weight of
    the *new* value and which copies the source on its first update), ``momentum`` here
    has the conventional MoCo/BYOL meaning and is set per iteration by
    ``MomentumUpdateHook`` (constant or cosine-scheduled). Parameters never require
    gradients. Buffers (BN running statistics) are not averaged: the key encoder keeps
    its own, as in the official MoCo/DiRA code.

    Args:
        source: network to copy.
        momentum: initial momentum (official MoCo-v2/DiRA 0.999).
    """

    def __init__(self, source: nn.Module, momentum: float = 0.999) -> None:
        super().__init__()
        self.module = copy.deepcopy(source)
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.momentum = float(momentum)

    def forward(self, *args, **kwargs):
        """Run the momentum network."""
        return self.module(*args, **kwargs)

    @torch.no_grad()
    def copy_from(self, source: nn.Module) -> None:
        """Make the momentum parameters equal to the source's."""
        for p_k, p_q in zip(self.module.parameters(), source.parameters()):
            p_k.data.copy_(p_q.data)

    @torch.no_grad()
    def update(self, source: nn.Module, momentum: float = None) -> None:
        """One EMA step from ``source`` (an unwrapped module with the same structure)."""
        m = self.momentum if momentum is None else float(momentum)
        params_k = [p.data for p in self.module.parameters()]
        params_q = [p.data for p in source.parameters()]
        if len(params_k) != len(params_q):
            raise RuntimeError('MomentumEncoder: the source network changed its structure')
        torch._foreach_mul_(params_k, m)
        torch._foreach_add_(params_k, params_q, alpha=1.0 - m)
