# LUNA16 for 3-D DiRA with a two-view method (DiRA-MoCo-v2 on 3-D crops; our design, DiRA has
# no released 3-D code). Per sample: one Genesis cube (64x64x32, HU [-1000, 1000] -> [0, 1],
# air/lung filter) -> two views, each a random crop of the cube (per-axis scale 0.6-1, i.e.
# 22-100 % of the volume, the 3-D analogue of RandomResizedCrop(scale=(0.2, 1))) resized back to
# 64x64x32 (trilinear) -> left-right flip (p 0.5, the target flipped with view 0: the 3-D
# flip_target=True), brightness and contrast jitter (p 0.8 each), Gaussian blur (p 0.5), clip to
# [0, 1] -> Models Genesis distortion without its flip on both views. The restoration target is
# view 0's crop before jitter, blur and distortion, as in 2-D DiRA. All MONAI transforms are
# seeded from the per-sample generator (MONAITransforms).
_base_ = ['./luna16_genesis.py']

cube_size = (64, 64, 32)
_crop = dict(
    type='MONAITransforms',
    keys=('img', ),
    transforms=[
        dict(monai='RandScaleCropd', keys=['img'], roi_scale=0.6, max_roi_scale=1.0,
             random_size=True),
        dict(monai='Resized', keys=['img'], spatial_size=cube_size, mode='trilinear'),
    ])
view_pipeline = [
    dict(
        type='MONAITransforms',
        keys=('img', 'target'),
        transforms=[
            # remove 'target' from these keys for the official never-flipped target
            dict(monai='RandFlipd', keys=['img', 'target'], prob=0.5, spatial_axis=0),
            dict(monai='RandScaleIntensityd', keys=['img'], factors=0.4, prob=0.8),
            dict(monai='RandScaleIntensityFixedMeand', keys=['img'], factors=0.4, prob=0.8),
            dict(monai='RandGaussianSmoothd', keys=['img'], sigma_x=(0.1, 2.0),
                 sigma_y=(0.1, 2.0), sigma_z=(0.1, 2.0), prob=0.5),
            dict(monai='ScaleIntensityRanged', keys=['img'], a_min=0.0, a_max=1.0, b_min=0.0,
                 b_max=1.0, clip=True),
        ])
]
views = dict(
    type='DiRAViews',
    spatial_dims=3,
    num_views=2,
    crop=_crop,
    view_pipeline=view_pipeline,
    distortion=dict(type='GenesisDistortion', flip_prob=0.0),
    distort_views=(0, 1),
    with_target=True,
    target_view=0)
train_pipeline = [
    _base_.load, _base_.cubes, views,
    dict(type='PackDiRAInputs', spatial_dims=3,
         meta_keys=('img_path', 'sample_idx', 'skipped', 'distortion', 'cube_origins'))
]
val_pipeline = [train_pipeline[0], train_pipeline[1], dict(views, keep_clean=True),
                train_pipeline[3]]
train_dataloader = dict(batch_size=32, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=32, dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(batch_size=32, dataset=dict(pipeline=val_pipeline))
