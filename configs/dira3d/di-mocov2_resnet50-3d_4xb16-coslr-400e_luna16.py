# `di` mode in 3-D: plain MoCo-v2 on two augmented views of LUNA16 cubes (3-D ResNet-50 encoder
# only, no distortion, no target), batch 64 (4 x 16), SGD 0.0075, per-epoch cosine, 400 epochs.
_base_ = [
    '../_base_/models/dira_mocov2_resnet50_unet3d.py',
    '../_base_/datasets/luna16_views.py',
    '../_base_/schedules/sgd_coslr-400e_3d.py',
    '../_base_/default_runtime.py',
]
model = dict(
    discriminative=dict(backbone=dict(with_decoder=False)), restorative=None, adversarial=None)
train_dataloader = dict(batch_size=16)  # per GPU: 4 x 16 = 64
val_dataloader = dict(batch_size=16)
test_dataloader = val_dataloader
custom_hooks = _base_.ssl_hooks
