"""Tiny registered components for the tool/checkpoint tests (no real model or data).

The model and the dataset draw from python's ``random``, numpy's global RNG and torch's
RNG, so a resume is only exact when all three random states are restored.
"""
import os.path as osp
import random
from collections import OrderedDict
from typing import List, Optional, Sequence

import numpy as np
import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel, is_model_wrapper
from torch import nn
from torch.utils.data import Dataset

from dira_mm.registry import DATASETS, HOOKS, METRICS, MODELS

__all__ = [
    'ToyModel', 'ToyDataset', 'ToyLossMetric', 'ToyWeightDumpHook', 'ToyOrderedDict'
]


@MODELS.register_module(force=True)
class ToyModel(BaseModel):
    """Linear regression with dropout and numpy/python noise during training."""

    def __init__(self, in_features: int = 4) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, 1)
        self.dropout = nn.Dropout(0.3)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[list] = None,
                mode: str = 'loss'):
        x = inputs.float()
        target = x.sum(dim=1, keepdim=True) * 0.1
        if self.training:
            noise = np.random.randn(*x.shape).astype(np.float32) * random.random()
            x = self.dropout(x) + torch.from_numpy(noise) * 0.1
        loss = ((self.linear(x) - target) ** 2).mean()
        if mode == 'loss':
            return dict(loss=loss)
        return [dict(loss=loss.detach())]


@DATASETS.register_module(force=True)
class ToyDataset(Dataset):
    """``length`` random 4-vectors, jittered with numpy/python RNG when ``augment``."""

    metainfo = dict(classes=('toy', ), scale=np.arange(3))

    def __init__(self, length: int = 16, augment: bool = True) -> None:
        self.length = length
        self.augment = augment
        self.base = torch.from_numpy(
            np.random.RandomState(0).rand(length, 4).astype(np.float32))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, idx: int) -> dict:
        x = self.base[idx].clone()
        if self.augment:
            x = x + float(np.random.rand()) * 0.1 + random.random() * 0.1
        return dict(inputs=x)


@METRICS.register_module(force=True)
class ToyLossMetric(BaseMetric):
    """Mean loss over the evaluation set (``toy/loss``)."""

    default_prefix = 'toy'

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            self.results.append(float(sample['loss']))

    def compute_metrics(self, results: List[float]) -> dict:
        return dict(loss=float(np.mean(results)))


@HOOKS.register_module(force=True)
class ToyWeightDumpHook(Hook):
    """Saves every rank's final weights to ``work_dir/weights_rank{rank}.pth``."""

    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        torch.save(dict(rank=get_rank(), world_size=get_world_size(), state_dict=state),
                   osp.join(runner.work_dir, f'weights_rank{get_rank()}.pth'))


class ToyOrderedDict(OrderedDict):
    """An ``OrderedDict`` subclass: a global that weights_only loading refuses."""
