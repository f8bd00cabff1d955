# The demo of DiRA-BYOL on the embedded data in a few minutes on 2 CPU cores:
# ResNet-18 U-Net at 128 x 128; 6 warm-up epochs (`dir`), then 6 with the adversary.
_base_ = [
    '../_base_/models/dira_byol_resnet18_unet_demo.py',
    '../_base_/datasets/demo_dira_128.py',
    '../_base_/schedules/lars-adam_coslr-12e_demo.py',
    '../_base_/default_runtime.py',
]
# BYOL's LARS: biases and BN parameters at the same lr (the demo schedule keeps
# Barlow Twins' cosine floor of 0.001 x lr; BYOL's full recipe decays to 0)
optim_wrapper = dict(generator=dict(optimizer=dict(lr_1d_mult=1.0)))
default_hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=2))
env_cfg = dict(cudnn_benchmark=False)
custom_hooks = _base_.ssl_hooks + [
    dict(type='DiRAStageHook', adversarial_begin=6, by_epoch=True),
    dict(type='ReconstructionVisHook', interval=2, num_samples=8),
]
