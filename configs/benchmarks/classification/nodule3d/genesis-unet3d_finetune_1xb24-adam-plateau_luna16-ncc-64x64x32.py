# LUNA16 nodule classification (false-positive reduction) with Models Genesis' UNet3D encoder:
# Models Genesis' NCC recipe (64x64x32 cubes, BCE, Adam 1e-3, batch 24, plateau 0.5/6, early
# stop 10), AUC. Data layout: ../_base_/datasets/luna16_ncc_64x64x32.py.
_base_ = [
    '../_base_/models/genesis_unet3d_ncc.py',
    '../_base_/datasets/luna16_ncc_64x64x32.py',
    '../_base_/schedules/adam_plateau_genesis-ncc.py',
    '../_base_/default_runtime.py',
]
