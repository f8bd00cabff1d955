# Demo size of `di` (plain Barlow Twins) on the embedded data: ResNet-18 at 128 x 128, 12 epochs.
_base_ = [
    '../_base_/models/dira_barlowtwins_resnet18_unet_demo.py',
    '../_base_/datasets/demo_views_128.py',
    '../_base_/schedules/lars_coslr-12e_demo.py',
    '../_base_/default_runtime.py',
]
model = dict(
    discriminative=dict(backbone=dict(with_decoder=False)), restorative=None, adversarial=None)
custom_hooks = _base_.ssl_hooks
default_hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=2))
env_cfg = dict(cudnn_benchmark=False)
