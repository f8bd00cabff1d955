# Runtime shared by every dira_mm config.
default_scope = 'dira_mm'
# mmengine's Runner whose environment printout says `device: cpu` on a CPU-only run
runner_type = 'DiraRunner'

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # keep the last checkpoints, no best-by-validation-loss one: the contrastive loss rises
    # as the MoCo queue fills, so the lowest loss is the least-trained model (docs/defaults.md,
    # "Best checkpoint"). A ProbeHook(save_best=...) keeps the best by probe score; the
    # official rule is `--cfg-options default_hooks.checkpoint.save_best=loss`.
    # mmengine's CheckpointHook writing each file under a temporary name and renaming it, so
    # a kill never leaves a broken checkpoint; --resume falls back to the newest complete one
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3, save_last=True,
                    save_best=None, rule='less'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # per-epoch seeds of the per-sample augmentation RNG (exact resume)
    dataset_epoch=dict(type='DatasetEpochHook'),
    # unreadable images are skipped, counted and logged
    skipped_samples=dict(type='SkippedSamplesHook'),
    # checkpoints hold plain types only and the RNG states (safe loading, exact resume)
    safe_checkpoint=dict(type='SafeCheckpointHook'),
    # a load_from / resume checkpoint that does not fit the model is an error (the key
    # report), not a partial load; load_from_strict=False below opts in to a partial load
    checked_load=dict(type='CheckedLoadHook'),
    # a NaN/Inf loss stops the run naming the term and iteration (loss_policy='skip' skips
    # the step instead); a non-finite weight is never saved (docs/defaults.md)
    nonfinite_check=dict(type='NonFiniteCheckHook', loss_policy='stop',
                         max_consecutive_skips=10),
    # where the checkpoints and pictures are, best epoch, final losses, next commands
    run_summary=dict(type='RunSummaryHook'),
    # an empty train/val dataloader (batch > dataset with drop_last) stops before training
    preflight=dict(type='PreflightHook'),
)

env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # timeout (s): a collective that waits longer (a frozen or dead DDP worker) ends the job
    # with an error instead of hanging it forever. 30 min leaves room for a rank that works
    # alone (rank 0 writing a checkpoint or a picture). gloo (no CUDA) is chosen by preflight.
    dist_cfg=dict(backend='nccl', timeout=1800),
)

vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')

# validation/test lines and scalars.json show each evaluation's own values (mmengine's
# default averages val/loss over the last 10 validations)
log_processor = dict(type='EvalCurrentLogProcessor', window_size=10, by_epoch=True)
log_level = 'INFO'
load_from = None
# False: a load_from whose weights do not all fit the model loads the matching ones with a
# warning instead of stopping (CheckedLoadHook; a resume must always fit)
load_from_strict = True
resume = False
randomness = dict(seed=0, diff_rank_seed=False, deterministic=False)
