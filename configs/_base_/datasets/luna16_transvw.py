# TransVW on LUNA16: the data differs from Models Genesis. Samples are the visual-word instances
# (64x64x32 cubes with a class) discovered from the training scans by
# `tools/misc/transvw_discover.py data/luna16/train_list.txt --val ... --out data/luna16_transvw`
# (folds as Genesis: volumes of subsets 0-4 for training, 5-6 for validation), which writes the
# cubes already windowed to [0, 1] (HU [-1000, 1000]) and the indexes train.csv / val.csv.
# Per sample: TransVWPerturbation (elastic deformation, then exactly one of shuffle (5 windows) /
# non-linear / in-paint (1 block) / out-paint (1 window), p 0.25 each); the target is the cube
# before the elastic step, gt_label the visual-word class. Batch 64 as TransVW's command line.
dataset_type = 'TransVWDataset'
data_root = 'data/luna16_transvw/'  # the --out folder of transvw_discover.py
num_classes = 44  # --num-classes of the discovery (TransVW's training config)

pack = dict(type='PackDiRAInputs', spatial_dims=3,
            meta_keys=('img_path', 'sample_idx', 'gt_label', 'skipped', 'distortion'))
train_pipeline = [dict(type='TransVWPerturbation', elastic=True), pack]
val_pipeline = train_pipeline

train_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=False,
    pin_memory=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='train.csv',
        num_classes=num_classes,
        pipeline=train_pipeline,
        seed=0,
        on_error='skip'))
val_dataloader = dict(
    train_dataloader,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(train_dataloader['dataset'], ann_file='val.csv', seed=2022,
                 pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='SSLLossMetric')
test_evaluator = val_evaluator
