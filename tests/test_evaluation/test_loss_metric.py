"""SSLLossMetric: the mean of per-batch validation losses, and a warning when it is not finite."""
import math

import torch

from dira_mm.engine.hooks.reconstruction_vis_hook import _to_uint8
from dira_mm.evaluation.metrics import SSLLossMetric


def test_mean_of_batches_and_weighted_mean():
    rows = [dict(loss=2.0, loss_dis=1.0, batch_size=1), dict(loss=5.0, loss_dis=3.0, batch_size=3)]
    assert SSLLossMetric().compute_metrics(rows) == dict(loss=3.5, loss_dis=2.0)
    weighted = SSLLossMetric(weighted=True).compute_metrics(rows)
    assert weighted == dict(loss=(2 + 15) / 4, loss_dis=(1 + 9) / 4)


def test_non_finite_validation_loss_is_reported(mm_logs):
    records = mm_logs
    metrics = SSLLossMetric().compute_metrics([dict(loss=1.0, loss_res=float('nan')),
                                               dict(loss=2.0, loss_res=0.5)])
    assert metrics['loss'] == 1.5 and math.isnan(metrics['loss_res'])
    assert len(records.messages) == 1 and "'loss_res': nan" in records.messages[0]
    assert 'not finite' in records.messages[0]
    records.messages.clear()
    SSLLossMetric().compute_metrics([dict(loss=1.0)])
    assert records.messages == []


def test_restoration_grid_draws_non_finite_pixels_black():
    x = torch.tensor([[[0.5, float('nan')], [float('inf'), 1.0]]])
    assert _to_uint8(x).tolist() == [[128, 0], [0, 255]]
