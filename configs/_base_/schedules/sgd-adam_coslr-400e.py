# Official DiRA optimisation: SGD(0.03, 0.9, 1e-4) + per-epoch cosine for the generator,
# Adam(2e-4, betas (0.5, 0.999)) at a constant rate for the discriminator. The schedulers
# have no `end`/`T_max`: the runner sets them to train_cfg.max_epochs.
optim_wrapper = dict(
    constructor='MultiOptimWrapperConstructor',
    generator=dict(
        type='OptimWrapper', modules='ssl',
        optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4)),
    discriminator=dict(
        type='OptimWrapper', modules='discriminator',
        optimizer=dict(type='Adam', lr=2e-4, betas=(0.5, 0.999), weight_decay=0.0)))
param_scheduler = dict(
    # lr_e = 0.03 * (1 + cos(pi * e / E)) / 2, stepped once per epoch as the official code
    generator=[dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=0)],
    discriminator=[dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0)])
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=400, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
