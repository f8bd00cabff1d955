# Demo: nodule segmentation of the 3-D demo phantoms with a slim Genesis UNet3D (base 8, as
# the Genesis / TransVW / DiRA-TransVW demo pre-training configs), in a few minutes on 2 CPU
# cores. 32x32x16 crops, DiceCE (Dice + BCE: our choice for short runs), Adam 1e-3 constant,
# 20 epochs; whole-volume sliding-window Dice (64x64x32 windows, overlap 0.5, Gaussian:
# the network is fully convolutional, and 8 large windows cost a quarter of 125 small ones).
#   python tools/misc/make_ct_demo_data.py --out data/demo3d
#   python tools/train.py configs/benchmarks/segmentation/nodule3d/<this file> \
#       [--cfg-options model.pretrained=work_dirs/<genesis or transvw demo>/epoch_10.pth]
_base_ = [
    '../_base_/models/genesis_unet3d.py',
    '../_base_/datasets/demo3d_nodule_32.py',
    '../_base_/schedules/adam_plateau_genesis-ncs.py',
    '../_base_/default_runtime.py',
]
model = dict(backbone=dict(base_channels=8), bce_weight=1.0,
             test_cfg=dict(roi_size=(64, 64, 32)))
param_scheduler = None
train_cfg = dict(max_epochs=20, val_interval=5)
default_hooks = dict(logger=dict(interval=5))
custom_hooks = []
env_cfg = dict(cudnn_benchmark=False)
