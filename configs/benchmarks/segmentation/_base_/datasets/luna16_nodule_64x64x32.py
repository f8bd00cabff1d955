# LUNA16-style nodule segmentation (Models Genesis' NCS task: 64x64x32 inputs, HU
# [-1000, 1000] -> [0, 1]). LUNA16 ships candidates and annotations, not masks: data_root
# holds the volumes and a nodule mask per volume on its grid (e.g. rasterised from the
# LIDC-IDRI readings), NIfTI or MetaImage, `<name>_mask<ext>` beside `<name><ext>` in ct/, and
# list files with the Genesis fold split (subsets 0-4 train, 5-6 val, 7-9 test).
# Training: one 64x64x32 crop per volume per epoch, centred on a nodule voxel with probability
# 1/2, else on a voxel above -900 HU (image_threshold=0.05 of the [0, 1] window: lung, ~-860 HU,
# passes; noisy air, which reads above 0, does not), MONAI's RandCropByPosNegLabeld seeded per
# sample. Validation and
# test: whole volumes (batch 1) through the model's sliding window; Dice per volume.
dataset_type = 'NoduleSegmentationDataset'
data_root = 'data/luna16_seg/'
crop_size = (64, 64, 32)

train_pipeline = [
    dict(type='RandPosNegCrop', size=crop_size, pos=1, neg=1, image_threshold=0.05),
    dict(type='PackVolumeSegInputs'),
]
val_pipeline = [dict(type='PackVolumeSegInputs')]

_dataset = dict(type=dataset_type, data_root=data_root, data_prefix=dict(img_path='ct/'),
                window=(-1000, 1000))
train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=False,  # per-epoch crop seeds (DatasetEpochHook)
    pin_memory=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    # label fractions as the 2-D benchmarks: train_dataloader.dataset.fraction=0.25 (seed 99)
    dataset=dict(type='LabelFractionDataset', fraction=1.0, seed=99,
                 dataset=dict(_dataset, ann_file='train.txt', pipeline=train_pipeline, seed=0)))
val_dataloader = dict(
    batch_size=1,  # whole volumes differ in size
    num_workers=2,
    persistent_workers=False,
    pin_memory=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(_dataset, ann_file='val.txt', pipeline=val_pipeline))
test_dataloader = dict(val_dataloader, dataset=dict(_dataset, ann_file='test.txt',
                                                    pipeline=val_pipeline))
# Dice per volume at 0.5 (mean over volumes: `dice`; pooled voxels: `dice_global`), per class
val_evaluator = dict(type='DiceMetric', threshold=0.5, empty_score=1.0, classes=('nodule', ))
test_evaluator = val_evaluator
