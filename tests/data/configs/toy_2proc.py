# Tiny CPU config for the tool tests (train, resume, test, 2-process gloo launch).
# Components come from tests/data/toy_modules.py through custom_imports; the repo root
# must be importable (tools/*.py and tools/dist_*.sh arrange that).
custom_imports = dict(
    imports=['tests.data.toy_modules', 'dira_mm.engine.hooks.safe_checkpoint_hook'],
    allow_failed_imports=False)
default_scope = 'dira_mm'

model = dict(type='ToyModel', in_features=4)

train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ToyDataset', length=16))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ToyDataset', length=8, augment=False))
val_evaluator = dict(type='ToyLossMetric')
val_cfg = dict(type='ValLoop')

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2, val_interval=1)
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
param_scheduler = [dict(type='MultiStepLR', milestones=[1], gamma=0.5, by_epoch=True)]

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'))
custom_hooks = [dict(type='SafeCheckpointHook'), dict(type='ToyWeightDumpHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
randomness = dict(seed=0)
log_level = 'INFO'
load_from = None
resume = False
