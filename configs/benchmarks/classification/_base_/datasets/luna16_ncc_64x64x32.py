# LUNA16 false-positive reduction as Models Genesis' NCC task: 64x64x32 cubes centred on the
# candidates of candidates.csv (class 1 = nodule), HU [-1000, 1000] -> [0, 1], padded with air
# outside the volume; the Genesis fold split (subsets 0-4 train, 5-6 val, 7-9 test). data_root
# holds LUNA16 as published (subset0/ .. subset9/ with .mhd/.raw, candidates.csv) and the
# split as lists of the series in folds/ (the CSV rows of every series are read, so the
# split must be a list, not the folders):
#   mkdir -p data/luna16/folds && cd data/luna16 && ls subset[0-4]/*.mhd > folds/train.txt \
#     && ls subset[56]/*.mhd > folds/val.txt && ls subset[7-9]/*.mhd > folds/test.txt
# candidates.csv has ~551k rows (1.3k positives); Genesis used a pre-extracted set
# (LUNA16_FPR_32x32x32); subsample the negatives in a CSV of your own for a practical run.
dataset_type = 'NoduleClassificationDataset'
data_root = 'data/luna16/'
cube_size = (64, 64, 32)

pipeline = [dict(type='PackVolumeClsInputs')]
_dataset = dict(type=dataset_type, data_root=data_root, ann_file='candidates.csv',
                label_column='class', cube_size=cube_size, window=(-1000, 1000),
                volume_ext='.mhd', coord_frame='LPS', pipeline=pipeline,
                data_prefix=dict(img_path=[f'subset{i}' for i in range(10)]))
_loader = dict(num_workers=4, persistent_workers=False, pin_memory=False,
               collate_fn=dict(type='default_collate'))
train_dataloader = dict(
    _loader,
    batch_size=24,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='LabelFractionDataset', fraction=1.0, seed=99,
                 dataset=dict(_dataset, seed=0, split_file='folds/train.txt')))
val_dataloader = dict(
    _loader,
    batch_size=24,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_dataset, split_file='folds/val.txt'))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(_dataset, split_file='folds/test.txt'))
val_evaluator = dict(type='MultiLabelAUC', class_names=('nodule', ))
test_evaluator = val_evaluator
