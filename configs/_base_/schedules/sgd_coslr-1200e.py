# Official DiRA warm-up / MoCo-v2 optimisation: SGD(0.03, 0.9, 1e-4), per-epoch cosine.
# The schedulers have no `end`/`T_max`: the runner sets them to train_cfg.max_epochs, so a
# config that changes max_epochs needs no new param_scheduler.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4))
# lr_e = 0.03 * (1 + cos(pi * e / E)) / 2, stepped once per epoch as the official code
param_scheduler = [dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=0)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1200, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
