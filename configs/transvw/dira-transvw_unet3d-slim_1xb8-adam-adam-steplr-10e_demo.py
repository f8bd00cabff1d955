# DiRA on TransVW, demo size (our design; see docs/transvw_genesis.md): the TransVW demo plus
# the 3-D patch discriminator (LSGAN, 0.001; Adam 2e-4 (0.5, 0.999)). Data as the TransVW demo
# (run tools/misc/transvw_discover.py first, see that config).
_base_ = ['./transvw_unet3d-slim_1xb8-adam-steplr-10e_demo.py']
model = dict(adversarial=dict(_base_.adversarial_3d, _delete_=True),
             loss_weights=dict(adv=0.001))
optim_wrapper = dict(
    _delete_=True,
    constructor='MultiOptimWrapperConstructor',
    generator=dict(type='OptimWrapper', modules='ssl', optimizer=dict(type='Adam', lr=1e-3)),
    discriminator=dict(type='OptimWrapper', modules='discriminator',
                       optimizer=dict(type='Adam', lr=2e-4, betas=(0.5, 0.999),
                                      weight_decay=0.0)))
param_scheduler = dict(
    _delete_=True,
    generator=[dict(type='StepLR', step_size=40, gamma=0.5, by_epoch=True, begin=0)],
    discriminator=[dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0)])
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel', broadcast_buffers=False,
                         find_unused_parameters=False)
