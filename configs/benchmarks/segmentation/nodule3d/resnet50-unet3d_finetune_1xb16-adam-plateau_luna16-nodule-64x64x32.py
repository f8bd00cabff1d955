# LUNA16-style nodule segmentation with the 3-D ResNet-50 U-Net (configs/dira3d pre-training):
# Models Genesis' NCS recipe (64x64x32, Dice loss, Adam 1e-3, batch 16, plateau 0.5/6, early
# stop 50), sliding-window Dice on whole volumes. Data layout: ../_base_/datasets/.
#   python tools/train.py configs/benchmarks/segmentation/nodule3d/<this file> \
#       --cfg-options model.pretrained=work_dirs/<3-D pre-training>/epoch_N.pth
_base_ = [
    '../_base_/models/resnet50_unet3d.py',
    '../_base_/datasets/luna16_nodule_64x64x32.py',
    '../_base_/schedules/adam_plateau_genesis-ncs.py',
    '../_base_/default_runtime.py',
]
custom_hooks = [
    dict(type='EarlyStoppingHook', monitor='dice', rule='greater', patience=50, min_delta=0.0)
]
