# DiRA on TransVW (our design): the generator (U-Net + classification head) keeps TransVW's
# Adam 1e-3 with StepLR(40, 0.5) per epoch; the 3-D discriminator takes DiRA's Adam 2e-4,
# betas (0.5, 0.999), constant. Early stopping / best checkpoint on the validation loss as
# TransVW (the loss now includes the adversarial term).
optim_wrapper = dict(
    constructor='MultiOptimWrapperConstructor',
    generator=dict(type='OptimWrapper', modules='ssl', optimizer=dict(type='Adam', lr=1e-3)),
    discriminator=dict(
        type='OptimWrapper', modules='discriminator',
        optimizer=dict(type='Adam', lr=2e-4, betas=(0.5, 0.999), weight_decay=0.0)))
param_scheduler = dict(
    generator=[dict(type='StepLR', step_size=40, gamma=0.5, by_epoch=True, begin=0)],
    discriminator=[dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0)])
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10000, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
early_stopping = [dict(type='EarlyStoppingHook', monitor='loss', rule='less', patience=50,
                       min_delta=0.0)]
