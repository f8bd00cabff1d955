# DiRA's adversary on Models Genesis (our design): Genesis restoration (MSE, weight 1) + the
# 3-D patch discriminator (LSGAN, weight 0.001 as DiRA); the generator keeps Genesis' SGD lr 1
# + StepLR(40, 0.5), the discriminator DiRA's Adam 2e-4 (0.5, 0.999).
_base_ = ['./genesis_unet3d_1xb6-sgd-steplr_luna16.py']
model = dict(adversarial=dict(_base_.adversarial_3d, _delete_=True), loss_weights=dict(adv=0.001))
optim_wrapper = dict(
    _delete_=True,
    constructor='MultiOptimWrapperConstructor',
    generator=dict(type='OptimWrapper', modules='ssl',
                   optimizer=dict(type='SGD', lr=1.0, momentum=0.9, weight_decay=0.0)),
    discriminator=dict(type='OptimWrapper', modules='discriminator',
                       optimizer=dict(type='Adam', lr=2e-4, betas=(0.5, 0.999),
                                      weight_decay=0.0)))
param_scheduler = dict(
    _delete_=True,
    generator=[dict(type='StepLR', step_size=40, gamma=0.5, by_epoch=True, begin=0)],
    discriminator=[dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0)])
# generator and discriminator are separate DDP modules with their own optimizers
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel', broadcast_buffers=False,
                         find_unused_parameters=False)
