# Demo: nodule vs. non-nodule candidates of the 3-D demo phantoms with a slim Genesis encoder
# (base 8, as the Genesis / TransVW demo pre-training), 32x32x16 cubes, BCE, Adam 1e-3
# constant, 10 epochs, AUC, in about a minute on 2 CPU cores.
#   python tools/misc/make_ct_demo_data.py --out data/demo3d
#   python tools/train.py configs/benchmarks/classification/nodule3d/<this file>
_base_ = [
    '../_base_/models/genesis_unet3d_ncc.py',
    '../_base_/datasets/demo3d_ncc_32.py',
    '../_base_/schedules/adam_plateau_genesis-ncc.py',
    '../_base_/default_runtime.py',
]
model = dict(backbone=dict(base_channels=8))
param_scheduler = None
train_cfg = dict(max_epochs=10, val_interval=2)
default_hooks = dict(logger=dict(interval=5))
custom_hooks = []
env_cfg = dict(cudnn_benchmark=False)
