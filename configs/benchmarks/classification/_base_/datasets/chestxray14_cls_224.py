# ChestX-ray14 classification as the DiRA transfer benchmark (BenchmarkTransferLearning):
# train RandomResizedCrop(224) + flip + rotation(7), validate Resize(256) + CenterCrop(224),
# test Resize(256) + TenCrop(224) with the scores averaged over the ten crops.
# data_root holds images/ and the official lists Xray14_{train,val,test}_official.txt.
dataset_type = 'ChestXray14Dataset'
data_root = 'data/chestxray14/'

train_pipeline = [
    dict(type='LoadMedicalImage'),
    dict(type='RandomResizedCrop', size=224, scale=(0.08, 1.0)),  # torchvision's default
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomRotation', degrees=7),
    dict(type='PackClsInputs'),
]
val_pipeline = [
    dict(type='LoadMedicalImage'),
    dict(type='Resize', size=256),
    dict(type='CenterCrop', size=224),
    dict(type='PackClsInputs'),
]
test_pipeline = [
    dict(type='LoadMedicalImage'),
    dict(type='Resize', size=256),
    dict(type='TenCrop', size=224),
    dict(type='PackClsInputs'),
]

_dataset = dict(type=dataset_type, data_root=data_root, data_prefix=dict(img_path='images/'))
train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=False,  # per-epoch augmentation seeds (DatasetEpochHook)
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    # the label-efficiency runs keep a fixed fraction of the training labels:
    # --cfg-options train_dataloader.dataset.fraction=0.01 (0.25, 0.5); seed 99 as the benchmark
    dataset=dict(
        type='LabelFractionDataset',
        fraction=1.0,
        seed=99,
        dataset=dict(_dataset, ann_file='Xray14_train_official.txt', pipeline=train_pipeline,
                     seed=0)))
val_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=False,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(_dataset, ann_file='Xray14_val_official.txt', pipeline=val_pipeline))
# ten crops per image: 8 images are 80 crops per forward pass
test_dataloader = dict(
    val_dataloader, batch_size=8,
    dataset=dict(_dataset, ann_file='Xray14_test_official.txt', pipeline=test_pipeline))
val_evaluator = dict(type='MultiLabelAUC')
test_evaluator = val_evaluator
