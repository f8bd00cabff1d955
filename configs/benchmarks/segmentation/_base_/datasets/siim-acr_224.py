# SIIM-ACR Pneumothorax Segmentation at 224 x 224: DICOM images and train-rle.csv as
# published on Kaggle (dicom-images-train/<study>/<series>/<ImageId>.dcm). There is no
# public validation split: list the image IDs of each split in train.txt / val.txt /
# test.txt (docs/tutorials/downstream_segmentation.md).
_base_ = ['./montgomery_224.py']
dataset_type = 'SIIMPneumothoraxDataset'
data_root = 'data/siim-acr/'
_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file='train-rle.csv',
    data_prefix=dict(img_path='dicom-images-train'),
    on_error='raise')
train_dataloader = dict(dataset=dict(
    _delete_=True, type='LabelFractionDataset', fraction=1.0, seed=99,
    dataset=dict(**_dataset, split_file='train.txt', pipeline=_base_.train_pipeline, seed=0)))
val_dataloader = dict(dataset=dict(_delete_=True, **_dataset, split_file='val.txt',
                                   pipeline=_base_.val_pipeline))
test_dataloader = dict(dataset=dict(_delete_=True, **_dataset, split_file='test.txt',
                                    pipeline=_base_.val_pipeline))
# an image without pneumothorax predicted empty scores 1 (the challenge's convention)
val_evaluator = dict(type='DiceMetric', threshold=0.5, empty_score=1.0)
test_evaluator = val_evaluator
