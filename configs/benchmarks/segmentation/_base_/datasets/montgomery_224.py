# Montgomery County chest X-ray set (NLM), lung segmentation, at 224 x 224.
# data_root holds CXR_png/ and ManualMask/{leftMask,rightMask}/ as published; the left and
# right lung masks are merged into one lung mask. The set has no official split: write
# train.txt / val.txt / test.txt (one image name per line) beside them
# (docs/tutorials/downstream_segmentation.md).
dataset_type = 'ImageMaskDataset'
data_root = 'data/montgomery/'
img_size = 224

train_pipeline = [
    dict(type='LoadMedicalImage'),
    dict(type='LoadSegMask'),
    # official: cv2 nearest-neighbour resize to 224
    dict(type='SegResize', size=img_size, interpolation='nearest'),
    # official OneOf(RandomBrightnessContrast, RandomGamma), p=0.3 (approximated)
    dict(type='ColorJitter', brightness=0.2, contrast=0.2, saturation=0.0, hue=0.0, prob=0.3),
    # official RandomSizedCrop((156, 224) -> 224), p=0.25
    dict(type='SegRandomResizedCrop', size=img_size, scale=((156 / 224)**2, 1.0),
         ratio=(1.0, 1.0), prob=0.25, interpolation='bilinear'),
    dict(type='PackSegInputs'),
]
val_pipeline = [train_pipeline[0], train_pipeline[1], train_pipeline[2], train_pipeline[-1]]

_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    data_prefix=dict(img_path='CXR_png',
                     seg_map_path=['ManualMask/leftMask', 'ManualMask/rightMask']),
    on_error='raise')
train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=False,  # per-epoch augmentation seeds (DatasetEpochHook)
    pin_memory=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    # the label fractions of the benchmark: train_dataloader.dataset.fraction=0.25 (seed 99)
    dataset=dict(type='LabelFractionDataset', fraction=1.0, seed=99,
                 dataset=dict(_dataset, ann_file='train.txt', pipeline=train_pipeline, seed=0)))
val_dataloader = dict(
    train_dataloader,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_dataset, ann_file='val.txt', pipeline=val_pipeline))
test_dataloader = dict(val_dataloader, dataset=dict(val_dataloader['dataset'], ann_file='test.txt'))
# mean Dice over images (%) at threshold 0.5; dice_global pools all pixels
val_evaluator = dict(type='DiceMetric', threshold=0.5, empty_score=1.0)
test_evaluator = val_evaluator
