# `dir` mode (warm-up stage): BYOL + restoration on ChestX-ray14, batch 256 (4 x 64),
# LARS 0.2, 10 warm-up epochs, cosine, 1200 epochs.
_base_ = [
    '../_base_/models/dira_byol_resnet50_unet.py',
    '../_base_/datasets/chestxray14_dira_224.py',
    '../_base_/schedules/lars-byol_coslr-1200e.py',
    '../_base_/default_runtime.py',
]
model = dict(adversarial=None)
