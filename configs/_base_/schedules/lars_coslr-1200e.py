# Barlow Twins optimisation (paper + facebookresearch/barlowtwins): LARS(momentum 0.9,
# eta 0.001, wd 1.5e-6 as in the paper; the code's default is 1e-6), lr 0.2 for weights and
# 0.0048 for biases / norm weights (1-D params: no weight decay, no trust ratio), both
# x batch / 256 (0.2 here for DiRA's total batch of 256), 10 warm-up epochs then cosine to
# 0.001 x lr, both per iteration. The cosine has no `end`/`T_max`: the runner sets them to
# train_cfg.max_epochs.
# Barlow Twins published 1000 epochs at batch 2048; DiRA did not publish its Barlow Twins
# schedule, so this one keeps DiRA's warm-up (di / dir) length of 1200 epochs.
max_epochs = 1200
warmup_epochs = 10
optim_wrapper = dict(
    type='OptimWrapper',
    # lr_1d_mult: the 1-D params train at 0.2 x 0.024 = 0.0048 under the same schedule
    optimizer=dict(type='LARS', lr=0.2, momentum=0.9, weight_decay=1.5e-6, eta=0.001,
                   lr_1d_mult=0.0048 / 0.2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.001, by_epoch=True, begin=warmup_epochs,
         convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
