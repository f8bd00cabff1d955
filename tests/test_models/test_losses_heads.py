"""Losses and heads against hand-computed values."""
import math

import torch
import torch.nn.functional as F

from dira_mm.models import ContrastiveHead, LSGANLoss, RestorativeHead


def test_contrastive_head_matches_hand_computation():
    pos = torch.tensor([[0.5], [0.1]])
    neg = torch.tensor([[0.2, -0.3], [0.4, 0.0]])
    t = 0.2
    head = ContrastiveHead(temperature=t)
    # -log softmax of the first logit, averaged over the batch
    expected = []
    for p, n in zip(pos[:, 0].tolist(), neg.tolist()):
        logits = [p / t] + [x / t for x in n]
        expected.append(-(logits[0] - math.log(sum(math.exp(v) for v in logits))))
    assert torch.isclose(head.loss(pos, neg), torch.tensor(sum(expected) / 2), atol=1e-6)


def test_lsgan_losses_match_hand_computation():
    loss = LSGANLoss()
    fake = torch.tensor([0.0, 0.5, 2.0])
    real = torch.tensor([1.0, 0.0, 3.0])
    # generator: mean((fake - 1)^2) = (1 + 0.25 + 1) / 3
    assert torch.isclose(loss.generator_loss(fake), torch.tensor(2.25 / 3))
    # discriminator: 0.5 * [mean((real-1)^2) + mean(fake^2)] = 0.5 * [(0+1+4)/3 + (0+.25+4)/3]
    assert torch.isclose(loss.discriminator_loss(real, fake), torch.tensor(0.5 * (5 / 3 + 4.25 / 3)))


def test_restorative_head_mse_and_l1():
    rec = torch.tensor([[[[0.0, 1.0], [0.5, 0.5]]]])
    tgt = torch.tensor([[[[1.0, 1.0], [0.0, 0.5]]]])
    assert torch.isclose(RestorativeHead('mse').loss(rec, tgt), torch.tensor((1 + 0 + 0.25 + 0) / 4))
    assert torch.isclose(RestorativeHead('l1').loss(rec, tgt), torch.tensor((1 + 0 + 0.5 + 0) / 4))
    assert torch.isclose(RestorativeHead('mse').loss(rec, tgt), F.mse_loss(rec, tgt))


def test_restorative_head_rejects_shape_mismatch():
    import pytest
    with pytest.raises(ValueError, match='out_channels'):
        RestorativeHead().loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 1, 4, 4))
