# Runtime shared by every dira_mm config.
default_scope = 'dira_mm'

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # the best checkpoint is the one with the lowest validation loss (as the official code)
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3, save_last=True,
                    save_best='loss', rule='less'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # per-epoch seeds of the per-sample augmentation RNG (exact resume)
    dataset_epoch=dict(type='DatasetEpochHook'),
    # unreadable images are skipped, counted and logged
    skipped_samples=dict(type='SkippedSamplesHook'),
    # checkpoints hold plain types only and the RNG states (safe loading, exact resume)
    safe_checkpoint=dict(type='SafeCheckpointHook'),
)

env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')

log_processor = dict(window_size=10, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, diff_rank_seed=False, deterministic=False)
