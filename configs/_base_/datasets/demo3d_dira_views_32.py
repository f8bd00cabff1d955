# The 3-D demo data (no download): 10 procedural chest-CT phantoms in HU (96x96x48 voxels of
# 1x1x2.5 mm) + nilearn's MNI152 T1 template (a real volume: a brain MRI, intensities 0..1,
# 2 mm), written by `tools/misc/make_ct_demo_data.py --out data/demo3d` (docs/demo3d_data.md).
# The two-view DiRA pipeline of luna16_dira_views.py at demo size (our choices):
#   - 32x32x32 cubes (the 3-D ResNet U-Net needs multiples of 32 per axis), no air filter
#     (the phantoms are small, as in the Genesis demo), native spacing as Models Genesis;
#   - the phantoms windowed as CT ([-1000, 1000] HU -> [0, 1]), the MRI by its own range
#     ([0, 1], already normalised), concatenated: 4 cubes per phantom + 8 from the MRI, i.e.
#     48 cubes (6 batches of 8) per epoch;
#   - validation: the 4 val.txt phantoms, 2 cubes each, fixed by seed.
_base_ = ['./luna16_dira_views.py']

data_root = 'data/demo3d/'
cube_size = (32, 32, 32)
cubes = dict(_base_.cubes, size=cube_size, border=(4, 4, 2), air_filter=False)
_crop = dict(
    type='MONAITransforms',
    keys=('img', ),
    transforms=[
        dict(monai='RandScaleCropd', keys=['img'], roi_scale=0.6, max_roi_scale=1.0,
             random_size=True),
        dict(monai='Resized', keys=['img'], spatial_size=cube_size, mode='trilinear'),
    ])
views = dict(_base_.views, crop=_crop)
pack = _base_.train_pipeline[-1]
ct_pipeline = [dict(type='LoadVolume', window=(-1000, 1000)), cubes, views, pack]
mri_pipeline = [dict(type='LoadVolume', window=(0, 1)), cubes, views, pack]
val_pipeline = [ct_pipeline[0], cubes, dict(views, keep_clean=True), pack]

_folder = dict(type='VolumeFolderDataset', data_root=data_root, on_error='skip',
               fixed_cubes=False)
ct_dataset = dict(_folder, data_prefix=dict(img_path='ct/'), ann_file='train.txt',
                  cubes_per_volume=4, pipeline=ct_pipeline, seed=0)
mri_dataset = dict(_folder, data_prefix=dict(img_path='mri/'), ann_file='', cubes_per_volume=8,
                   pipeline=mri_pipeline, seed=1)
_loader = dict(batch_size=8, num_workers=2, pin_memory=False, persistent_workers=False)
train_dataloader = dict(_loader, drop_last=True,
                        dataset=dict(_delete_=True, type='ConcatDataset',
                                     datasets=[ct_dataset, mri_dataset]))
val_dataloader = dict(
    _loader, drop_last=False,
    dataset=dict(_delete_=True, **dict(_folder, data_prefix=dict(img_path='ct/'),
                                       ann_file='val.txt', cubes_per_volume=2,
                                       pipeline=val_pipeline, seed=2022)))
test_dataloader = val_dataloader
