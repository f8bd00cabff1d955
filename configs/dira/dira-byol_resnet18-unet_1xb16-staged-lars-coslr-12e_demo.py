# The demo of DiRA-BYOL on the embedded data in a few minutes on 2 CPU cores:
# ResNet-18 U-Net at 128 x 128; 6 warm-up epochs (`dir`), then 6 with the adversary.
_base_ = [
    '../_base_/models/dira_byol_resnet18_unet_demo.py',
    '../_base_/datasets/demo_dira_128.py',
    '../_base_/schedules/lars-byol-adam_coslr-400e.py',
    '../_base_/default_runtime.py',
]
# 1 warm-up epoch of 12 (the full recipe warms up for 10)
param_scheduler = dict(
    generator=[
        dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=1,
             convert_to_iter_based=True),
        dict(type='CosineAnnealingLR', eta_min_ratio=0.0, by_epoch=True, begin=1,
             convert_to_iter_based=True)
    ],
    discriminator=[dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0)])
train_cfg = dict(max_epochs=12, val_interval=2)
default_hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=2))
env_cfg = dict(cudnn_benchmark=False)
custom_hooks = _base_.ssl_hooks + [
    dict(type='DiRAStageHook', adversarial_begin=6, by_epoch=True),
    dict(type='ReconstructionVisHook', interval=2, num_samples=8),
]
