# Models Genesis on LUNA16 as published: the Genesis 3-D U-Net restores 64x64x32 cubes
# (HU [-1000, 1000] -> [0, 1], air/lung filter, flip / local shuffle / non-linear / painting
# at the published rates), MSE, SGD lr 1 + StepLR(40, 0.5), batch 6, early stopping 50,
# best-validation checkpoint. DiRA's `dir` mode on RestorationOnly (docs/transvw_genesis.md).
_base_ = [
    '../_base_/models/genesis_unet3d.py',
    '../_base_/datasets/luna16_genesis.py',
    '../_base_/schedules/sgd-steplr_genesis.py',
    '../_base_/default_runtime.py',
]
custom_hooks = _base_.custom_hooks + _base_.early_stopping
# the best-validation-loss checkpoint, as the official trainers keep
default_hooks = dict(checkpoint=dict(save_best='loss', rule='less'))
