# The 3-D demo data (no download): 10 procedural chest-CT phantoms in HU (96x96x48 voxels of
# 1x1x2.5 mm) + nilearn's MNI152 T1 template (a real volume: a brain MRI, intensities 0..1,
# 2 mm), written by `tools/misc/make_ct_demo_data.py --out data/demo3d` (docs/demo3d_data.md).
# The two-view DiRA pipeline of luna16_dira_views.py (the same view transforms and Genesis
# distortion) at demo size; our choices:
#   - 32x32x32 cubes (the 3-D ResNet U-Net needs multiples of 32 per axis), no air filter
#     (the phantoms are small, as in the Genesis demo), native spacing as Models Genesis;
#   - the phantoms windowed as CT ([-1000, 1000] HU -> [0, 1]), the MRI by its own range
#     ([0, 1], already normalised), concatenated: 4 cubes per phantom + 8 from the MRI, i.e.
#     48 cubes (6 batches of 8) per epoch;
#   - validation: the 4 val.txt phantoms, 2 cubes each, fixed by seed.
# Written out in full (not inherited from luna16_dira_views.py) and with its helper names
# deleted at the end: every name left in a config is printed into the log, the config dump
# and every checkpoint, and mmengine formats that text with yapf, whose time grows quickly
# with its length (the inherited version cost ~50 s per demo run).
data_root = 'data/demo3d/'
cube_size = (32, 32, 32)

_cubes = dict(type='RandomCubes', size=cube_size, border=(4, 4, 2), extra_depth=3,
              air_filter=False, air_hu=-150.0, max_air_fraction=0.15, max_tries=50)
_views = dict(
    type='DiRAViews',
    spatial_dims=3,
    num_views=2,
    # 3-D random resized crop: per-axis scale 0.6-1, resized back to the cube (trilinear)
    crop=dict(
        type='MONAITransforms',
        keys=('img', ),
        transforms=[
            dict(monai='RandScaleCropd', keys=['img'], roi_scale=0.6, max_roi_scale=1.0,
                 random_size=True),
            dict(monai='Resized', keys=['img'], spatial_size=cube_size, mode='trilinear'),
        ]),
    view_pipeline=[
        dict(
            type='MONAITransforms',
            keys=('img', 'target'),
            transforms=[
                # the target flips with view 0 (remove 'target' for the official behaviour)
                dict(monai='RandFlipd', keys=['img', 'target'], prob=0.5, spatial_axis=0),
                dict(monai='RandScaleIntensityd', keys=['img'], factors=0.4, prob=0.8),
                dict(monai='RandScaleIntensityFixedMeand', keys=['img'], factors=0.4,
                     prob=0.8),
                dict(monai='RandGaussianSmoothd', keys=['img'], sigma_x=(0.1, 2.0),
                     sigma_y=(0.1, 2.0), sigma_z=(0.1, 2.0), prob=0.5),
                dict(monai='ScaleIntensityRanged', keys=['img'], a_min=0.0, a_max=1.0,
                     b_min=0.0, b_max=1.0, clip=True),
            ])
    ],
    # Models Genesis' distortions without their flip (the views are flipped above)
    distortion=dict(type='GenesisDistortion', flip_prob=0.0),
    distort_views=(0, 1),
    with_target=True,
    target_view=0)
_pack = dict(type='PackDiRAInputs', spatial_dims=3,
             meta_keys=('img_path', 'sample_idx', 'skipped', 'distortion', 'cube_origins'))
_ct_load = dict(type='LoadVolume', window=(-1000, 1000))
_mri_load = dict(type='LoadVolume', window=(0, 1))

_folder = dict(type='VolumeFolderDataset', data_root=data_root, on_error='skip',
               fixed_cubes=False)
_loader = dict(batch_size=8, num_workers=2, pin_memory=False, persistent_workers=False,
               sampler=dict(type='DefaultSampler', shuffle=True),
               collate_fn=dict(type='default_collate'))
train_dataloader = dict(
    _loader,
    drop_last=True,
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            dict(_folder, data_prefix=dict(img_path='ct/'), ann_file='train.txt',
                 cubes_per_volume=4, seed=0, pipeline=[_ct_load, _cubes, _views, _pack]),
            dict(_folder, data_prefix=dict(img_path='mri/'), ann_file='',
                 cubes_per_volume=8, seed=1, pipeline=[_mri_load, _cubes, _views, _pack]),
        ]))
# validation also keeps view 0 before its distortion (the `input` column of the grids)
val_dataloader = dict(
    _loader,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_folder, data_prefix=dict(img_path='ct/'), ann_file='val.txt',
                 cubes_per_volume=2, seed=2022,
                 pipeline=[_ct_load, _cubes, dict(_views, keep_clean=True), _pack]))
test_dataloader = val_dataloader
val_evaluator = dict(type='SSLLossMetric')
test_evaluator = val_evaluator
del _cubes, _views, _pack, _ct_load, _mri_load, _folder, _loader
