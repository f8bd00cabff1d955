# ChestX-ray14 with the official DiRA two-view pipeline at 224 x 224.
# data_root holds the images folder and the official lists (Xray14_{train,val}_official.txt).
dataset_type = 'ChestXray14Dataset'
data_root = 'data/chestxray14/'

# per view, after the crop: the official MoCo-v2-style augmentation (no grayscale, no
# normalisation); saturation and hue are no-ops on gray images, as they are officially.
view_pipeline = [
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, prob=0.8),
    dict(type='GaussianBlur', sigma=(0.1, 2.0), prob=0.5),
    dict(type='RandomFlip', prob=0.5),
]
train_pipeline = [
    # LoadMedicalImage(cache_dir='/fast/disk/cxr14_decoded') decodes each PNG once and reads raw
    # pixels afterwards (identical outputs, ~7x faster pipeline; ~1 MB of disk per image)
    dict(type='LoadMedicalImage'),
    dict(
        type='DiRAViews',
        num_views=2,
        crop=dict(type='RandomResizedCrop', size=224, scale=(0.2, 1.0)),
        view_pipeline=view_pipeline,
        # in-paint 0.30 / out-paint 0.05 / block swap 0.30 / none 0.35 on both views
        distortion=dict(type='DiRADistortion', official_overlap_check=False),
        distort_views=(0, 1),
        with_target=True,
        target_view=0,
        # fix: the target is flipped with its view (False = the official behaviour)
        flip_target=True),
    dict(type='PackDiRAInputs'),
]
# validation also keeps view 0 before distortion, the `input` column of the restoration grids
val_pipeline = [train_pipeline[0], dict(train_pipeline[1], keep_clean=True), train_pipeline[2]]

train_dataloader = dict(
    batch_size=64,  # per GPU: 4 x 64 = the official 256
    num_workers=4,
    persistent_workers=False,  # per-epoch augmentation seeds (DatasetEpochHook)
    pin_memory=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='Xray14_train_official.txt',
        data_prefix=dict(img_path='images/'),
        pipeline=train_pipeline,
        seed=0,
        on_error='skip'))

# Deterministic validation: same augmentation family, fixed per-sample seeds, no state
# updates. The official behaviour: dataset seed=None and model.official_val=True.
val_dataloader = dict(
    train_dataloader,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(train_dataloader['dataset'], ann_file='Xray14_val_official.txt', seed=2022,
                 pipeline=val_pipeline))
val_evaluator = dict(type='SSLLossMetric')
test_dataloader = val_dataloader
test_evaluator = val_evaluator
