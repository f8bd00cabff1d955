# DiRA on TransVW, the DiRA paper's 3-D setting (our design: DiRA released no 3-D code):
# TransVW's self-classification (0.01) + self-restoration (1) + DiRA's adversary in 3-D
# (PatchDiscriminator(spatial_dims=3), LSGAN, 0.001). Generator as TransVW (Adam 1e-3,
# StepLR(40, 0.5)), discriminator as DiRA (Adam 2e-4, betas (0.5, 0.999)).
_base_ = [
    '../_base_/models/transvw_unet3d.py',
    '../_base_/datasets/luna16_transvw.py',
    '../_base_/schedules/adam-adam-steplr_dira-transvw.py',
    '../_base_/default_runtime.py',
]
model = dict(discriminative=dict(head=dict(num_classes=_base_.num_classes)),
             adversarial=dict(_base_.adversarial_3d, _delete_=True),
             loss_weights=dict(adv=0.001))
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel', broadcast_buffers=False,
                         find_unused_parameters=False)
custom_hooks = _base_.custom_hooks + _base_.early_stopping
# the best-validation-loss checkpoint, as the official trainers keep
default_hooks = dict(checkpoint=dict(save_best='loss', rule='less'))
