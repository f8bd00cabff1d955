# Nodule classification on the 3-D demo phantoms (docs/demo3d_data.md): 32x32x16 cubes at the
# candidates of candidates.csv (nodule centres and vessel / parenchyma negatives), split by
# the demo's train/val/test lists (NIfTI volumes in ct/).
_base_ = ['./luna16_ncc_64x64x32.py']
data_root = 'data/demo3d/'
_demo = dict(data_root=data_root, cube_size=(32, 32, 16), volume_ext='.nii.gz',
             data_prefix=dict(img_path='ct'))
train_dataloader = dict(batch_size=8, num_workers=2,
                        dataset=dict(dataset=dict(_demo, split_file='train.txt')))
val_dataloader = dict(batch_size=8, num_workers=2, dataset=dict(_demo, split_file='val.txt'))
test_dataloader = dict(batch_size=8, num_workers=2, dataset=dict(_demo, split_file='test.txt'))
