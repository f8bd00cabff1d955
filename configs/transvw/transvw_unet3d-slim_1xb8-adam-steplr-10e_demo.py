# TransVW demo on the 3-D demo data (procedural chest-CT phantoms, no download):
#   python tools/misc/make_ct_demo_data.py --out data/demo3d
#   python tools/misc/transvw_discover.py data/demo3d/train.txt --val data/demo3d/val.txt \
#       --prefix data/demo3d/ct --out data/demo3d_transvw --num-classes 8 --top-k 10 \
#       --top-k-val 4 --crop-size 32 32 16 --border 8 8 4 --no-air-filter \
#       --feature-source intensity
#   python tools/train.py configs/transvw/transvw_unet3d-slim_1xb8-adam-steplr-10e_demo.py
# (add `--multi-res --multi-res-size 25 40 --multi-res-offset 5` for TransVW's three resolutions:
# three times the instances and the time)
# A slim Genesis U-Net (base_channels 8) + a slim TransVW head (128 -> 128 -> 8 classes) on
# 32x32x16 visual-word instances; lambda 0.01 / 1, Adam 1e-3 + StepLR, 10 epochs.
_base_ = [
    '../_base_/models/transvw_unet3d.py',
    '../_base_/datasets/luna16_transvw.py',
    '../_base_/schedules/adam-steplr_transvw.py',
    '../_base_/default_runtime.py',
]
num_classes = 8
model = dict(discriminative=dict(
    backbone=dict(base_channels=8),
    head=dict(in_channels=128, mid_channels=128, num_classes=num_classes)))

data_root = 'data/demo3d_transvw/'
_dataset = dict(data_root=data_root, num_classes=num_classes)
train_dataloader = dict(batch_size=8, num_workers=2, pin_memory=False,
                        dataset=dict(_dataset, ann_file='train.csv'))
val_dataloader = dict(batch_size=8, num_workers=2, pin_memory=False,
                      dataset=dict(_dataset, ann_file='val.csv'))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=10, val_interval=2)
default_hooks = dict(logger=dict(interval=2),
                     checkpoint=dict(interval=2, save_best='loss', rule='less'))
env_cfg = dict(cudnn_benchmark=False)
custom_hooks = [dict(type='ReconstructionVisHook', interval=2, num_samples=4)]
