# TransVW on LUNA16 as published: self-classification of 44 discovered visual-word classes
# (200 train / 30 val instances each, `tools/misc/transvw_discover.py`) + self-restoration,
# lambda 0.01 / 1, Genesis 3-D U-Net + YNet3D's head, elastic deformation then exactly one
# perturbation, Adam 1e-3 + StepLR(40, 0.5), batch 64, early stopping 50, best-validation
# checkpoint. DiRA's `dir` mode on SelfClassification (docs/transvw_genesis.md).
_base_ = [
    '../_base_/models/transvw_unet3d.py',
    '../_base_/datasets/luna16_transvw.py',
    '../_base_/schedules/adam-steplr_transvw.py',
    '../_base_/default_runtime.py',
]
model = dict(discriminative=dict(head=dict(num_classes=_base_.num_classes)))
custom_hooks = _base_.custom_hooks + _base_.early_stopping
# the best-validation-loss checkpoint, as the official trainers keep
default_hooks = dict(checkpoint=dict(save_best='loss', rule='less'))
