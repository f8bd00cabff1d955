# DiRA adversarial stage with the Barlow Twins optimisation for the generator: LARS(0.2,
# momentum 0.9, eta 0.001, wd 1.5e-6; 1-D params at 0.0048, no weight decay, no trust ratio)
# with 10 warm-up epochs then cosine to 0.001 x lr, per iteration (see lars_coslr-1200e.py);
# Adam(2e-4, betas (0.5, 0.999)) at a constant rate for the discriminator, as the official DiRA.
max_epochs = 400
warmup_epochs = 10
optim_wrapper = dict(
    constructor='MultiOptimWrapperConstructor',
    generator=dict(
        type='OptimWrapper', modules='ssl',
        optimizer=dict(type='LARS', lr=0.2, momentum=0.9, weight_decay=1.5e-6, eta=0.001,
                       lr_1d_mult=0.0048 / 0.2)),
    discriminator=dict(
        type='OptimWrapper', modules='discriminator',
        optimizer=dict(type='Adam', lr=2e-4, betas=(0.5, 0.999), weight_decay=0.0)))
param_scheduler = dict(
    generator=[
        dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
             convert_to_iter_based=True),
        dict(type='CosineAnnealingLR', eta_min_ratio=0.001, by_epoch=True,
             begin=warmup_epochs, convert_to_iter_based=True)
    ],
    discriminator=[dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0)])
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
