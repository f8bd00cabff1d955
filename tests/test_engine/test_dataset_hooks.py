"""DatasetEpochHook and SkippedSamplesHook, alone and in a tiny mmengine Runner."""
import logging
import re
import uuid
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import ConcatDataset, RepeatDataset
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.runner import Runner

from dira_mm.datasets import ChestPhantomDataset, ChestXray14Dataset
from dira_mm.engine.hooks import DatasetEpochHook, SkippedSamplesHook
from dira_mm.engine.hooks.dataset_epoch_hook import leaf_datasets
from dira_mm.engine.hooks.skipped_samples_hook import count_skipped
from dira_mm.structures import DiRADataSample

from helpers import LogRecords


def record_draw(results):
    results['draw'] = float(results['rng'].random()) if 'rng' in results else -1.0
    return results


def tiny_pack(results):
    """A minimal pack: one gray view and the metadata the hooks read."""
    img = torch.from_numpy(np.ascontiguousarray(results['img']))[None]
    sample = DiRADataSample(metainfo=dict(sample_idx=results['sample_idx'],
                                          skipped=results.get('skipped', 0),
                                          draw=results.get('draw', -1.0)))
    return dict(inputs=[img], data_samples=sample)


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen = []

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = inputs[0].float().mean() / 255
        if mode == 'loss':
            self.seen.extend((int(s.sample_idx), float(s.draw)) for s in data_samples)
            return dict(loss=((self.w - x)**2).sum())
        return list(data_samples)


class CountMetric(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results.append(len(data_samples))

    def compute_metrics(self, results):
        return dict(count=float(sum(results)))


def loader(dataset, batch_size=4, **kwargs):
    cfg = dict(dataset=dataset, batch_size=batch_size, num_workers=0,
               sampler=dict(type='DefaultSampler', shuffle=False),
               collate_fn=dict(type='default_collate'))
    cfg.update(kwargs)
    return cfg


def make_runner(tmp_path, train_dataset, epochs=2, val_dataset=None, **loader_kwargs):
    extra = {}
    if val_dataset is not None:
        extra = dict(val_dataloader=loader(val_dataset, batch_size=3), val_cfg=dict(),
                     val_evaluator=Evaluator([CountMetric()]))
    return Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=loader(train_dataset, **loader_kwargs),
        train_cfg=dict(by_epoch=True, max_epochs=epochs, val_interval=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        custom_hooks=[dict(type='DatasetEpochHook'), dict(type='SkippedSamplesHook')],
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1), checkpoint=None),
        default_scope='dira_mm',
        randomness=dict(seed=0),
        experiment_name=f'test_dataset_hooks_{uuid.uuid4().hex}',
        log_level='INFO',
        **extra)


def test_epoch_hook_changes_seeds_per_epoch_through_workers(tmp_path):
    dataset = ChestPhantomDataset(num_samples=8, img_size=32, seed=5,
                                  pipeline=[record_draw, tiny_pack])
    runner = make_runner(tmp_path, dataset, epochs=2, num_workers=1,
                         persistent_workers=False)
    runner.train()
    seen = runner.model.seen
    assert len(seen) == 16
    for epoch in (0, 1):
        for idx, value in seen[8 * epoch:8 * (epoch + 1)]:
            assert value == np.random.default_rng([5, epoch, idx]).random()
    assert runner.train_dataloader.dataset.epoch == 1


def test_persistent_workers_with_seeded_dataset_is_refused(tmp_path):
    dataset = ChestPhantomDataset(num_samples=4, img_size=32, seed=0, pipeline=[tiny_pack])
    runner = make_runner(tmp_path, dataset, num_workers=1, persistent_workers=True)
    with pytest.raises(RuntimeError, match='persistent_workers=False'):
        runner.train()


def write_list(root, num, corrupt):
    lines = []
    for i in range(num):
        name = f'{i:03d}.png'
        ok, buf = cv2.imencode('.png', np.full((16, 16), 20 * i, np.uint8))
        data = buf.tobytes()
        (root / name).write_bytes(data[:40] if i in corrupt else data)
        lines.append(name + ' 0' * 14)
    (root / 'list.txt').write_text('\n'.join(lines) + '\n')


def test_skipped_samples_are_counted_logged_and_in_the_message_hub(tmp_path):
    data = tmp_path / 'data'
    data.mkdir()
    write_list(data, num=6, corrupt=(2, ))

    def dataset():
        return ChestXray14Dataset(ann_file='list.txt', data_root=str(data), seed=0,
                                  pipeline=[dict(type='LoadMedicalImage'), tiny_pack])

    runner = make_runner(tmp_path / 'work', dataset(), epochs=1, val_dataset=dataset(),
                         batch_size=3)
    records = LogRecords()
    runner.logger.addHandler(records)
    runner.train()
    hub = runner.message_hub
    assert hub.get_scalar('train/skipped_images').current() == 1
    assert hub.get_scalar('val/skipped_images').current() == 1
    assert hub.get_info('skipped_images_total') == 1
    assert any('SkippedSamplesHook: 1 unreadable image(s) skipped in this train batch' in m
               for m in records.messages)
    assert any('002.png' in m and 'skipping sample 2' in m for m in records.messages)
    with open(f'{runner.log_dir}/{runner.timestamp}.log') as f:
        log = f.read()
    assert re.search(r'skipped_images: 1(\.0+)?\b', log)
    # the sample that replaced the unreadable one: sample 3, seen twice in the epoch
    assert [idx for idx, _ in runner.model.seen] == [0, 1, 3, 3, 4, 5]


def test_skipped_total_survives_resume_and_reduces_at_interval():
    hook = SkippedSamplesHook(interval=2)
    hub = MessageHub.get_instance(f'test_skipped_{uuid.uuid4().hex}')
    hub.update_info('skipped_images_total', 4)
    runner = SimpleNamespace(hooks=[hook], message_hub=hub, iter=0, epoch=0,
                             train_dataloader=list(range(10)),
                             logger=logging.getLogger('test_skipped'))
    hook.before_train(runner)
    batch = dict(data_samples=[DiRADataSample(metainfo=dict(skipped=1)),
                               DiRADataSample(metainfo=dict(skipped=0))])
    hook.after_train_iter(runner, 0, batch)  # iter 1: not a reduction iteration
    assert hub.get_scalar('train/skipped_images').current() == 4
    runner.iter = 1
    hook.after_train_iter(runner, 1, dict(data_samples=[DiRADataSample()]))  # iter 2
    assert hub.get_scalar('train/skipped_images').current() == 5
    assert hub.get_info('skipped_images_total') == 5
    with pytest.raises(ValueError, match='interval'):
        SkippedSamplesHook(interval=0)


def test_count_skipped():
    assert count_skipped(None) == 0 and count_skipped(dict(inputs=[])) == 0
    samples = [DiRADataSample(metainfo=dict(skipped=2)), DiRADataSample(),
               DiRADataSample(metainfo=dict(skipped=1))]
    assert count_skipped(dict(data_samples=samples)) == 3


def test_epoch_hook_unwraps_dataset_wrappers():
    a = ChestPhantomDataset(num_samples=2, img_size=32, seed=0)
    b = ChestPhantomDataset(num_samples=2, img_size=32, seed=1)
    assert leaf_datasets(ConcatDataset([a, b])) == [a, b]
    assert leaf_datasets(RepeatDataset(a, times=2)) == [a]
    wrapped = torch.utils.data.ConcatDataset(
        [RepeatDataset(a, times=2), torch.utils.data.Subset(b, [0])])
    assert leaf_datasets(wrapped) == [a, b]
    runner = SimpleNamespace(train_dataloader=SimpleNamespace(dataset=wrapped), epoch=3)
    DatasetEpochHook().before_train_epoch(runner)
    assert a.epoch == 3 and b.epoch == 3
