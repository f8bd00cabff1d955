# `di` mode: plain SimSiam (encoder only, no distortion, no target) on ChestX-ray14,
# batch 256 (4 x 64), SGD 0.05, cosine, fixed predictor lr, 1200 epochs.
_base_ = [
    '../_base_/models/dira_simsiam_resnet50_unet.py',
    '../_base_/datasets/chestxray14_views_224.py',
    '../_base_/schedules/sgd-fixpred_coslr-1200e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    discriminative=dict(backbone=dict(with_decoder=False)), restorative=None, adversarial=None)
custom_hooks = _base_.ssl_hooks
