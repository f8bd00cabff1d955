# Models Genesis demo on the 3-D demo data (procedural chest-CT phantoms, no download):
#   python tools/misc/make_ct_demo_data.py --out data/demo3d
#   python tools/train.py configs/genesis/genesis_unet3d-slim_1xb6-sgd-steplr-10e_demo.py
# A slim Genesis U-Net (base_channels 8) restoring 32x32x16 cubes with the published
# distortions; Genesis' SGD lr 1 + StepLR, 10 epochs, no early stopping.
_base_ = [
    '../_base_/models/genesis_unet3d.py',
    '../_base_/datasets/volume_folder.py',
    '../_base_/schedules/sgd-steplr_genesis.py',
    '../_base_/default_runtime.py',
]
model = dict(discriminative=dict(backbone=dict(base_channels=8)))

data_root = 'data/demo3d/'
_cubes = dict(_base_.cubes, size=(32, 32, 16), border=(8, 8, 4), air_filter=False)
_pipeline = [_base_.load, _cubes, _base_.distortion, _base_.pack]
_dataset = dict(data_root=data_root, data_prefix=dict(img_path='ct/'), cubes_per_volume=4)
train_dataloader = dict(batch_size=6, num_workers=2, pin_memory=False,
                        dataset=dict(_dataset, ann_file='train.txt', pipeline=_pipeline))
val_dataloader = dict(batch_size=6, num_workers=2, pin_memory=False,
                      dataset=dict(_dataset, ann_file='val.txt', pipeline=_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=10, val_interval=2)
default_hooks = dict(logger=dict(interval=2),
                     checkpoint=dict(interval=2, save_best='loss', rule='less'))
env_cfg = dict(cudnn_benchmark=False)
custom_hooks = [dict(type='ReconstructionVisHook', interval=2, num_samples=4)]
