"""Batch normalisation with statistics over the global batch of all processes."""
import logging
from typing import List, Tuple

import torch
from mmengine import dist
from mmengine.logging import print_log
from torch import Tensor, nn


class _AllReduceSum(torch.autograd.Function):
    """Sum over all processes; the gradient is summed over them too (as SyncBN's).

    torch's ``torch.distributed.nn.functional.all_reduce`` does the same but warns at every
    call (FutureWarning, deprecated); its replacement in ``_functional_collectives`` only
    carries autograd in recent torch releases, and dira_mm supports torch >= 2.1.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        out = x.clone()
        torch.distributed.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        torch.distributed.all_reduce(grad)
        return grad


def differentiable_all_reduce(x: Tensor) -> Tensor:
    """Sum of ``x`` over all processes, differentiable."""
    return _AllReduceSum.apply(x)


def _global_moments(x: Tensor,
                    dims: Tuple[int, ...]) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Mean and biased variance per channel over ``dims`` of every process's ``x``.

    Sums, squared sums and the sample count travel in one differentiable all-reduce (in
    float32, also under AMP), so the gradient of each process's input includes the other
    processes' terms, as SyncBN's does. Returns ``(mean, var, total, x in float32)``; the
    count stays a tensor (no host sync in the training step).
    """
    xf = x.float()
    count = xf.new_full((1, ), float(x.numel() // x.shape[1]))
    stats = differentiable_all_reduce(torch.cat([xf.sum(dim=dims), (xf * xf).sum(dim=dims),
                                                 count]))
    c = x.shape[1]
    total = stats[-1].detach()
    mean = stats[:c] / total
    var = (stats[c:2 * c] / total - mean * mean).clamp_min(0)
    return mean, var, total, xf


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm (1d/2d/3d) whose training statistics span all processes.

    The official Barlow Twins, SimSiam and BYOL normalise over the global batch (torch's
    ``SyncBatchNorm``, or cross-replica BN). torch's ``SyncBatchNorm`` only runs on GPU,
    so this small hand-written layer does the same on any backend (gloo on CPU, nccl):
    one all-reduce of per-channel sums and squared sums per call. In one process, or in
    eval mode, it is exactly ``nn.BatchNorm``. Running statistics use the unbiased
    global variance, as torch's layers do.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f'GlobalBatchNorm: expected (N, C, ...) input, got {input.dim()}D')

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        distributed = dist.get_world_size() > 1
        if not (self.training and distributed):
            return super().forward(x)
        dims = (0, ) + tuple(range(2, x.dim()))
        mean, var, total, xf = _global_moments(x, dims)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else \
                    1.0 / float(self.num_batches_tracked)
                unbiased = var.detach() * total / (total - 1).clamp_min(1)
                self.running_mean.mul_(1 - m).add_(mean.detach().to(self.running_mean), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased.to(self.running_var), alpha=m)
        shape = (1, -1) + (1, ) * (x.dim() - 2)
        out = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape).float() + self.bias.view(shape).float()
        return out.to(x.dtype)


def convert_global_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm{1,2,3}d`` in ``module`` by :class:`GlobalBatchNorm`.

    Parameters and buffers are kept (shared tensors, no copy). Returns the converted
    module (a new object only when ``module`` itself is a BatchNorm).

    BatchNorm subclasses with a ``forward`` of their own are left as they are, and a
    warning names them: ``GenesisUNet3D(official_batchnorm=True)``'s ``ContBatchNorm3d``
    and ``TransVWClsHead(official_batchnorm=True)``'s norm use the batch statistics in
    ``eval()`` too (per process), which :class:`GlobalBatchNorm` would silently replace by
    the running statistics; other such layers (e.g. timm's ``BatchNormAct2d``) would lose
    what their ``forward`` adds. torch's ``SyncBatchNorm.convert_sync_batchnorm`` (mmengine's
    ``sync_bn``) does not make this exception.
    """
    kept: List[str] = []
    module = _convert(module, '', kept)
    if kept:
        print_log('convert_global_batchnorm: left as they are (a BatchNorm subclass with '
                  'its own forward, e.g. batch statistics in eval(); their statistics stay '
                  f'per process): {kept}', logger='current', level=logging.WARNING)
    return module


def _own_forward(module: nn.Module) -> bool:
    """A BatchNorm subclass whose forward is not torch's (nor a global one's)."""
    return not isinstance(module, (GlobalBatchNorm, nn.SyncBatchNorm)) and \
        type(module).forward is not nn.modules.batchnorm._BatchNorm.forward


def _convert(module: nn.Module, name: str, kept: List[str]) -> nn.Module:
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and _own_forward(module):
        kept.append(f'{name or "(root)"}: {type(module).__name__}')
        return module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and \
            not isinstance(module, (GlobalBatchNorm, nn.SyncBatchNorm)):
        new = GlobalBatchNorm(module.num_features, module.eps, module.momentum,
                              module.affine, module.track_running_stats)
        if module.affine:
            new.weight = module.weight
            new.bias = module.bias
        if module.track_running_stats:
            new.running_mean = module.running_mean
            new.running_var = module.running_var
            new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for child_name, child in module.named_children():
        new_child = _convert(child, f'{name}.{child_name}' if name else child_name, kept)
        if new_child is not child:
            setattr(module, child_name, new_child)
    return module


def global_batch_norm(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Functional, affine-free batch norm of (N, C) ``x`` over the global batch.

    Used by loss heads that normalise embeddings (Barlow Twins); no running statistics.
    """
    if dist.get_world_size() > 1:
        mean, var, _, _ = _global_moments(x, (0, ))
    else:
        mean, var = x.mean(dim=0), x.var(dim=0, unbiased=False)
    return (x - mean) * torch.rsqrt(var + eps)
