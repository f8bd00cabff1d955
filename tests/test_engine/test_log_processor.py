"""EvalCurrentLogProcessor: each evaluation's own values, not mmengine's running mean."""
from types import SimpleNamespace

import pytest
from mmengine.logging import MessageHub
from mmengine.runner import LogProcessor

from dira_mm.engine.runner import EvalCurrentLogProcessor


def _runner(name):
    hub = MessageHub.get_instance(name)
    loop = SimpleNamespace(dataloader=[0, 1])  # 2 batches per evaluation
    return SimpleNamespace(message_hub=hub, val_loop=loop, test_loop=loop, _train_loop=None,
                           epoch=0, iter=0)


@pytest.mark.parametrize('mode', ['val', 'test'])
def test_eval_values_are_the_current_evaluation(mode):
    runner = _runner(f'log_processor_{mode}')
    hub = runner.message_hub
    for loss, auc in ((6.0, 70.0), (5.0, 72.0), (4.0, 71.0)):  # three evaluations
        for t in (0.2, 0.4):  # per-batch times of this evaluation
            hub.update_scalar(f'{mode}/time', t)
        hub.update_scalar(f'{mode}/loss', loss)
        hub.update_scalar(f'{mode}/loss_dis', loss - 1)
        hub.update_scalar(f'{mode}/auc', auc)
    tag, text = EvalCurrentLogProcessor(window_size=10).get_log_after_epoch(runner, 2, mode)
    assert tag['loss'] == 4.0 and tag['loss_dis'] == 3.0 and tag['auc'] == 71.0
    assert 'loss: 4.0000' in text
    # mmengine's own processor: the mean of the last <= 10 evaluations for `loss` keys;
    # per-batch keys (time) are left to it
    base, _ = LogProcessor(window_size=10).get_log_after_epoch(runner, 2, mode)
    assert base['loss'] == 5.0 and base['auc'] == 71.0 and base['time'] == tag['time']


def test_custom_cfg_and_training_logs_are_unchanged():
    runner = _runner('log_processor_custom')
    hub = runner.message_hub
    for loss in (3.0, 2.0):
        hub.update_scalar('val/loss', loss)
    custom = [dict(data_src='loss', log_name='loss_max', method_name='max', window_size=2)]
    tag, _ = EvalCurrentLogProcessor(window_size=10, custom_cfg=custom).get_log_after_epoch(
        runner, 2, 'val')
    assert tag['loss'] == 2.0 and tag['loss_max'] == 3.0
    # training buffers (one entry per iteration) keep the window mean
    for loss in (1.0, 2.0, 3.0):
        hub.update_scalar('train/loss', loss)
    processor = EvalCurrentLogProcessor(window_size=2)
    tag = processor._collect_scalars([], runner, 'train')
    assert tag['loss'] == 2.5
