# Demo size of `di` (plain BYOL) on the embedded data: ResNet-18 at 128 x 128, 12 epochs.
_base_ = [
    '../_base_/models/dira_byol_resnet18_unet_demo.py',
    '../_base_/datasets/demo_views_128.py',
    '../_base_/schedules/lars-byol_coslr-1200e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    discriminative=dict(backbone=dict(with_decoder=False)), restorative=None, adversarial=None)
custom_hooks = _base_.ssl_hooks
# 1 warm-up epoch of 12 (the full recipe warms up for 10)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.0, by_epoch=True, begin=1,
         convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=12, val_interval=2)
default_hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=2))
env_cfg = dict(cudnn_benchmark=False)
