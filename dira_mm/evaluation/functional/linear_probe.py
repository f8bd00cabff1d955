"""Logistic-regression (linear) probe of frozen features, one binary classifier per class."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['linear_probe_predict']

_OPTIMIZERS = ('lbfgs', 'adam')


def linear_probe_predict(train_feats: Tensor,
                         train_labels: Tensor,
                         test_feats: Tensor,
                         train_mask: Optional[Tensor] = None,
                         steps: int = 300,
                         optimizer: str = 'lbfgs',
                         lr: Optional[float] = None,
                         weight_decay: float = 1e-4,
                         standardize: bool = True) -> Tensor:
    """Fit per-class logistic regressions on ``train_feats`` and score ``test_feats``.

    Full batch: the mean binary cross-entropy over the labels that count plus
    ``weight_decay / 2 * ||W||^2`` (bias not decayed), minimised by L-BFGS (strong-Wolfe line
    search, at most ``steps`` iterations) or ``steps`` Adam steps. The weights start at
    zero and the problem is convex, so the result draws no random number and is the same on
    every call. Features are standardised with the training mean and std first
    (``standardize``), which makes one ``weight_decay`` fit features of any scale.

    Args:
        train_feats: ``(N, C)`` training features.
        train_labels: ``(N, K)`` labels in {0, 1} where they count.
        test_feats: ``(M, C)`` features to score.
        train_mask: ``(N, K)`` booleans, the labels that count (default: those in {0, 1}).
        steps: L-BFGS iterations or Adam steps.
        optimizer: ``'lbfgs'`` or ``'adam'``.
        lr: step size (default 1.0 for L-BFGS, 0.01 for Adam).
        weight_decay: L2 penalty of the weights.
        standardize: z-score the features with the training statistics.

    Returns:
        ``(M, K)`` float32 probabilities on ``test_feats``' device.
    """
    if optimizer not in _OPTIMIZERS:
        raise ValueError(f'linear_probe_predict: optimizer must be one of {_OPTIMIZERS}, got '
                         f'{optimizer!r}.')
    if train_feats.ndim != 2 or test_feats.ndim != 2 or \
            train_feats.shape[1] != test_feats.shape[1]:
        raise ValueError(f'linear_probe_predict: features must be (N, C) and (M, C); got '
                         f'{tuple(train_feats.shape)} and {tuple(test_feats.shape)}.')
    if steps < 1:
        raise ValueError(f'linear_probe_predict: steps must be >= 1, got {steps}.')
    device = test_feats.device
    x = train_feats.detach().float().to(device)
    x_test = test_feats.detach().float()
    y = train_labels.detach().float().to(device)
    mask = (y == 0) | (y == 1)
    if train_mask is not None:
        mask &= train_mask.to(device).bool()
    y = torch.where(mask, y, torch.zeros_like(y))
    weight_of = mask.float() / mask.float().sum().clamp_min(1.0)
    if standardize:
        mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-6)
        x, x_test = (x - mean) / std, (x_test - mean) / std

    with torch.enable_grad():
        weight = torch.zeros(x.shape[1], y.shape[1], device=device, requires_grad=True)
        bias = torch.zeros(y.shape[1], device=device, requires_grad=True)

        def objective() -> Tensor:
            logits = x @ weight + bias
            bce = F.binary_cross_entropy_with_logits(logits, y, reduction='none')
            return (bce * weight_of).sum() + 0.5 * weight_decay * weight.pow(2).sum()

        if optimizer == 'lbfgs':
            opt = torch.optim.LBFGS([weight, bias], lr=1.0 if lr is None else lr,
                                    max_iter=steps, history_size=20,
                                    line_search_fn='strong_wolfe')

            def closure() -> Tensor:
                opt.zero_grad()
                loss = objective()
                loss.backward()
                return loss

            opt.step(closure)
        else:
            opt = torch.optim.Adam([weight, bias], lr=0.01 if lr is None else lr)
            for _ in range(steps):
                opt.zero_grad()
                objective().backward()
                opt.step()
    with torch.no_grad():
        return torch.sigmoid(x_test @ weight + bias)
