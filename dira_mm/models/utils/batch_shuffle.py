"""Shuffle-BN for momentum encoders (MoCo): shuffle a batch across processes.

BatchNorm statistics computed on the keys of one GPU leak which samples are positives;
MoCo shuffles the key batch across all processes before the key encoder and undoes it
after. In a single process both are the identity (mmengine.dist degrades gracefully), so
the same code runs on one CPU, one GPU or many.
"""
from typing import Tuple

import torch
from mmengine import dist
from torch import Tensor


@torch.no_grad()
def concat_all_gather(x: Tensor) -> Tensor:
    """Concatenate ``x`` from every process along dim 0 (no gradient)."""
    if dist.get_world_size() == 1:
        return x
    return torch.cat(dist.all_gather(x.contiguous()), dim=0)


@torch.no_grad()
def batch_shuffle_ddp(x: Tensor) -> Tuple[Tensor, Tensor]:
    """Return this rank's part of a globally shuffled batch and the unshuffle index."""
    world = dist.get_world_size()
    if world == 1:
        return x, torch.arange(x.shape[0], device=x.device)
    local = x.shape[0]
    x_all = concat_all_gather(x)
    idx_shuffle = torch.randperm(x_all.shape[0], device=x.device)
    dist.broadcast(idx_shuffle, src=0)
    idx_unshuffle = torch.argsort(idx_shuffle)
    rank = dist.get_rank()
    idx_this = idx_shuffle.view(world, -1)[rank]
    assert idx_this.numel() == local
    return x_all[idx_this], idx_unshuffle


@torch.no_grad()
def batch_unshuffle_ddp(x: Tensor, idx_unshuffle: Tensor) -> Tensor:
    """Undo :func:`batch_shuffle_ddp` for the key embeddings."""
    world = dist.get_world_size()
    if world == 1:
        return x[idx_unshuffle]
    x_all = concat_all_gather(x)
    idx_this = idx_unshuffle.view(world, -1)[dist.get_rank()]
    return x_all[idx_this]
