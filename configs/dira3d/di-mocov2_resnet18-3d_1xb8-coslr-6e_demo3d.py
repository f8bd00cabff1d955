# Demo size of 3-D `di` (plain MoCo-v2) on the 3-D demo data: 3-D ResNet-18 encoder on
# 32x32x32 cubes, batch 8, SGD 0.03 (per-epoch cosine), 6 epochs.
_base_ = [
    '../_base_/models/dira_mocov2_resnet18_unet3d_demo.py',
    '../_base_/datasets/demo3d_views_32.py',
    '../_base_/schedules/sgd_coslr-1200e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    discriminative=dict(backbone=dict(with_decoder=False)), restorative=None, adversarial=None)
train_cfg = dict(max_epochs=6, val_interval=2)
default_hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=2))
env_cfg = dict(cudnn_benchmark=False)
custom_hooks = _base_.ssl_hooks
