# Demo size of `di` (plain BYOL) on the embedded data: ResNet-18 at 128 x 128, 12 epochs.
_base_ = [
    '../_base_/models/dira_byol_resnet18_unet_demo.py',
    '../_base_/datasets/demo_views_128.py',
    '../_base_/schedules/lars_coslr-12e_demo.py',
    '../_base_/default_runtime.py',
]
model = dict(
    discriminative=dict(backbone=dict(with_decoder=False)), restorative=None, adversarial=None)
custom_hooks = _base_.ssl_hooks
# BYOL's LARS: biases and BN parameters at the same lr (the demo schedule keeps
# Barlow Twins' cosine floor of 0.001 x lr; BYOL's full recipe decays to 0)
optim_wrapper = dict(optimizer=dict(lr_1d_mult=1.0))
default_hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=2))
env_cfg = dict(cudnn_benchmark=False)
