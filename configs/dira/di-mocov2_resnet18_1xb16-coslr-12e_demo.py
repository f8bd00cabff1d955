# Demo size of `di` (plain MoCo-v2) on the embedded data: ResNet-18 at 128 x 128, 12 epochs.
_base_ = [
    '../_base_/models/dira_mocov2_resnet18_unet_demo.py',
    '../_base_/datasets/demo_views_128.py',
    '../_base_/schedules/sgd_coslr-1200e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    discriminative=dict(backbone=dict(with_decoder=False)), restorative=None, adversarial=None)
custom_hooks = _base_.ssl_hooks
train_cfg = dict(max_epochs=12, val_interval=2)
default_hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=2))
env_cfg = dict(cudnn_benchmark=False)
