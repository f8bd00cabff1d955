# Nodule segmentation on the 3-D demo phantoms (`python tools/misc/make_ct_demo_data.py --out
# data/demo3d`; docs/demo3d_data.md): 96x96x48 CT phantoms with nodule masks, train/val/test
# lists (10 / 4 / 6 volumes). 32x32x16 training crops (half of them on a nodule); validation
# and test on whole volumes by sliding window (the model's test_cfg).
_base_ = ['./luna16_nodule_64x64x32.py']
data_root = 'data/demo3d/'
crop_size = (32, 32, 16)
train_pipeline = [dict(_base_.train_pipeline[0], size=crop_size), _base_.train_pipeline[1]]
_dataset = dict(data_root=data_root)
train_dataloader = dict(batch_size=4, num_workers=2,
                        dataset=dict(dataset=dict(_dataset, pipeline=train_pipeline)))
val_dataloader = dict(num_workers=2, dataset=dict(_dataset))
test_dataloader = dict(num_workers=2, dataset=dict(_dataset))
