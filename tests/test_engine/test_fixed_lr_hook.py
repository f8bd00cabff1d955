"""FixedLRHook holds the lr of flagged param groups while the schedulers move the rest."""
import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.optim import CosineAnnealingLR, OptimWrapper, OptimWrapperDict
from torch import nn

from dira_mm.engine.hooks import FixedLRHook


def _wrapper(lr=0.05):
    model = nn.ModuleDict(dict(encoder=nn.Linear(2, 2), predictor=nn.Linear(2, 2)))
    opt = torch.optim.SGD([
        dict(params=model.encoder.parameters()),
        dict(params=model.predictor.parameters(), fix_lr=True)], lr=lr)
    return OptimWrapper(opt)


@pytest.mark.parametrize('as_dict', [False, True])
def test_flagged_groups_keep_their_initial_lr(as_dict):
    wrapper = _wrapper()
    scheduler = CosineAnnealingLR(wrapper, T_max=4, by_epoch=False)
    runner = SimpleNamespace(optim_wrapper=OptimWrapperDict(generator=wrapper)
                             if as_dict else wrapper)
    hook = FixedLRHook()
    hook.before_train(runner)
    seen = []
    for it in range(4):
        hook.before_train_iter(runner, it)
        seen.append([g['lr'] for g in wrapper.optimizer.param_groups[:2]])
        scheduler.step()
    # the encoder follows the cosine: 0.05 (1 + cos(pi t / 4)) / 2
    for t, (enc, pred) in enumerate(seen):
        assert enc == pytest.approx(0.05 * (1 + math.cos(math.pi * t / 4)) / 2)
        assert pred == pytest.approx(0.05)


def test_explicit_lr_and_missing_flag_errors():
    wrapper = _wrapper()
    runner = SimpleNamespace(optim_wrapper=wrapper)
    hook = FixedLRHook(lr=0.01)
    hook.before_train(runner)
    assert wrapper.param_groups[1]['lr'] == 0.01 and wrapper.param_groups[0]['lr'] == 0.05
    plain = OptimWrapper(torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1))
    with pytest.raises(ValueError, match='fix_lr'):
        FixedLRHook().before_train(SimpleNamespace(optim_wrapper=plain))
    with pytest.raises(ValueError, match='lr'):
        FixedLRHook(lr=0)
