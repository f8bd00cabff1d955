# `di` mode: plain Barlow Twins (encoder only, no distortion, no target) on ChestX-ray14,
# batch 256 (4 x 64), LARS 0.2 / 0.0048 (1-D params), 10 warm-up epochs, cosine, 1200 epochs.
_base_ = [
    '../_base_/models/dira_barlowtwins_resnet50_unet.py',
    '../_base_/datasets/chestxray14_views_224.py',
    '../_base_/schedules/lars_coslr-1200e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    discriminative=dict(backbone=dict(with_decoder=False)), restorative=None, adversarial=None)
custom_hooks = _base_.ssl_hooks
